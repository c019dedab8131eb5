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
    from stylestudy.engine.produce.plan import (
        auto_batch_size,
        free_memory,
        problem_bytes,
    )

    free = free_memory(torch.device("cuda"))
    batch = auto_batch_size(512, 512, free, cap=64)
    assert batch * problem_bytes(512, 512) <= 0.75 * free or batch == 1
