"""GPU checks (skipped without CUDA): the fast path and batching on the device, memory sizing."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_fast_path_parity_on_cuda():
    from stylestudy.engine.produce.bench import run_bench

    r = run_bench(size=128, iterations=30, problems=4, device="cuda", progress=False)
    assert r.min_psnr_db > 30 and abs(r.max_final_loss_ratio - 1) < 0.05
    assert r.peak_mem_mb_per_problem is not None and r.peak_mem_mb_per_problem > 0


def test_auto_batch_fits_free_memory():
    from stylestudy.engine.produce.plan import auto_batch_size, free_memory, problem_bytes

    free = free_memory(torch.device("cuda"))
    batch = auto_batch_size(512, 512, free, cap=64)
    assert batch * problem_bytes(512, 512) <= 0.75 * free or batch == 1


def _peak_bytes(extractor, problem, cfg, batch: int, device) -> int:
    """Peak CUDA memory allocated while ``batch`` copies of ``problem`` run as one batch, above
    what was allocated before (the extractor's weights, the inputs)."""
    from stylestudy.engine.neural.optimise import run_transfers

    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run_transfers(extractor, [problem] * batch, [cfg] * batch, progress=False)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def test_batch_memory_estimate_against_measured_peak_per_problem(capsys):
    """``--batch auto`` plans with problem_bytes (~6.5 KB/px for the network + 24 B/px per L-BFGS
    history pair).  Measured here: the peak memory one more problem adds to a batch (512 px,
    history 10, 12 iterations so the history is full).  The estimate must not be below it (else
    auto batches run out of memory) nor more than 3x above it (else they waste the card)."""
    from stylestudy.engine.neural.config import TransferConfig
    from stylestudy.engine.neural.device import get_extractor
    from stylestudy.engine.neural.problem import Problem
    from stylestudy.engine.neural.tensors import to_tensor
    from stylestudy.engine.produce.plan import problem_bytes
    from tests.conftest import _pattern

    device = torch.device("cuda")
    extractor = get_extractor("caffe", device)
    problem = Problem(to_tensor(_pattern(512, 384, 1), device), to_tensor(_pattern(448, 448, 2), device))
    cfg = TransferConfig(method="baseline", lambda_os=1e-3, iterations=12, history_size=10)
    one, four = (_peak_bytes(extractor, problem, cfg, b, device) for b in (1, 4))
    per_problem = (four - one) / 3
    estimate = problem_bytes(384, 512, history_size=10)
    with capsys.disabled():
        print(f"\nbatch memory at 512x384, history 10: measured {per_problem / 2**20:.0f} MB per problem "
              f"(batch 1: {one / 2**20:.0f} MB, batch 4: {four / 2**20:.0f} MB), estimate {estimate / 2**20:.0f} MB")
    assert per_problem > 0 and one > 0
    assert per_problem <= estimate <= 3 * per_problem
