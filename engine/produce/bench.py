"""``stylestudy bench``: the generation path against a plain PyTorch reference, same process.

The same problems (one block-(a) row: the study's λos values for both methods on one object
and one style image) run twice:

* reference: one problem at a time, ``torch.optim.LBFGS`` called once for all iterations,
  float32, contiguous tensors, no batching;
* engine: ``run_transfers`` as ``stylestudy generate`` runs it (batched, each problem with its
  own L-BFGS, plus the device's fast path).

Fairness: both paths are warmed up first (one untimed forward/backward each, so CUDA context,
cuBLAS/cuDNN handles and the allocator are not charged to whichever runs first), and the order
alternates: the baseline problems run reference-then-engine, the normalized ones
engine-then-reference; each path's time is the sum of its own segments.

Reported: seconds per image for each and their ratio, evaluations per second, achieved TFLOP/s
(analytic VGG-19 FLOPs of the evaluations) and the fraction of the device's peak, peak memory
per problem (CUDA), and parity both ways: engine/reference final loss (min and max) and PSNR
between their images.  ``executor="ray"`` also runs the engine's batches as Ray tasks (a local
Ray unless an address is given): seconds per image through Ray against local in the same
process, i.e. what the cluster machinery costs per image.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.device import get_extractor, resolve_device
from stylestudy.engine.neural.fastpath import FastPath
from stylestudy.engine.neural.optimise import run_transfers
from stylestudy.engine.neural.problem import Problem, build_loss, initial_image
from stylestudy.engine.neural.tensors import to_pil, to_tensor
from stylestudy.engine.produce.plan import auto_batch_size, free_memory
from stylestudy.engine.study.images import save_png
from stylestudy.engine.study.layer_names import LAYER_NAMES, PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS

BASELINE_LAMBDAS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]  # studies/table1 block (a)
NORMALIZED_LAMBDAS = [1.0, 1e-1, 1e-2, 1e-3, 1e-4]
# Dense tensor-core peaks (TFLOP/s) by device name fragment, for the fraction-of-peak column.
PEAK_TFLOPS = {"H100": {"tf32": 494.7, "bf16": 989.4, "fp32": 66.9}, "H200": {"tf32": 494.7, "bf16": 989.4, "fp32": 66.9},
               "A100": {"tf32": 156.0, "bf16": 312.0, "fp32": 19.5}}


def vgg_flops(height: int, width: int, deepest: str = "relu5_4") -> float:
    """FLOPs of one forward plus the input-gradient backward (≈ 2x forward) up to ``deepest``."""
    flops, h, w, cin = 0.0, height, width, 3
    for name in LAYER_NAMES[: LAYER_NAMES.index(deepest) + 1]:
        if name.startswith("conv"):
            cout = 64 * 2 ** min(int(name[4]) - 1, 3)
            flops += 2 * 9 * cin * cout * h * w
            cin = cout
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
    return 2 * flops


@dataclass
class BenchResult:
    device: str
    size: list[int]
    iterations: int
    problems: int
    batch: int
    fast_path: str
    reference_s_per_image: float
    engine_s_per_image: float
    speedup: float
    reference_evals_per_s: float
    engine_evals_per_s: float
    reference_tflops: float
    engine_tflops: float
    engine_peak_fraction: float | None
    min_psnr_db: float
    max_final_loss_ratio: float
    peak_mem_mb_per_problem: float | None
    per_problem: list[dict] = field(default_factory=list)
    min_final_loss_ratio: float = float("nan")
    order: str = "warm-up both; baseline problems reference first, normalized engine first"
    ray_s_per_image: float | None = None  # engine batches as Ray tasks (executor="ray")
    ray_overhead_ratio: float | None = None  # ray_s_per_image / engine_s_per_image
    ray_min_psnr_db: float | None = None  # Ray's images against the local engine's


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_run(extractor, problem: Problem, cfg: TransferConfig) -> tuple[torch.Tensor, float, int]:
    """Plain PyTorch: one LBFGS.step for all iterations, float32, nothing cached between calls."""
    loss = build_loss(extractor, problem, cfg)
    x = initial_image(problem, cfg.init, cfg.seed).requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=cfg.iterations, max_eval=10**9, history_size=cfg.history_size,
                                  tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    evals = 0

    def closure():
        nonlocal evals
        evals += 1
        optimizer.zero_grad()
        value = loss(extractor(x, loss.layers))[0].sum()
        value.backward()
        return value

    optimizer.step(closure)
    return x.detach(), final_loss(extractor, problem, cfg, x.detach()), evals


def final_loss(extractor, problem: Problem, cfg: TransferConfig, image: torch.Tensor) -> float:
    """The method's loss of ``image``, evaluated the same plain float32 way for both runs."""
    loss = build_loss(extractor, problem, cfg)
    with torch.no_grad():
        return float(loss(extractor(image, loss.layers))[0].sum())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.clamp(0, 1) - b.clamp(0, 1)).double().pow(2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def default_images(size: int) -> tuple[Path, Path]:
    """scikit-image samples (always there): astronaut as object, the Hubble deep field as style."""
    import tempfile

    import numpy as np
    import skimage.data
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="stylestudy-bench-"))
    for name, loader in (("object", skimage.data.astronaut), ("style", skimage.data.hubble_deep_field)):
        save_png(Image.fromarray(np.asarray(loader())), folder / f"{name}.png")
    return folder / "object.png", folder / "style.png"


def run_bench(size: int = 512, iterations: int = 600, problems: int = 10, device: str = "auto",
              content: str | None = None, style: str | None = None, batch: str | int = "auto", bf16: bool = False,
              out_dir: str | Path | None = None, progress: bool = True, executor: str = "local",
              ray_address: str | None = None, gpus_per_task: float = 0.0) -> BenchResult:
    dev = resolve_device(device)
    if content is None or style is None:
        content, style = default_images(size)
    cfgs = ([TransferConfig(method="baseline", lambda_os=lam, size=size, iterations=iterations) for lam in BASELINE_LAMBDAS]
            + [TransferConfig(method="normalized", lambda_os=lam, size=size, iterations=iterations)
               for lam in NORMALIZED_LAMBDAS])[:problems]
    problem = Problem.from_files(content, style, size, None, dev)
    h, w = problem.size_hw
    flops_per_eval = vgg_flops(h, w, max(list(PAPER_STYLE_LAYERS) + list(PAPER_CONTENT_LAYERS), key=LAYER_NAMES.index))

    plain, fast = FastPath(), FastPath.for_device(dev, bf16=bf16)
    reference = get_extractor("caffe", dev)
    extractor = get_extractor("caffe", dev, channels_last=fast.channels_last)
    for path, net in ((plain, reference), (fast, extractor)):  # warm-up: nothing is charged to the first path
        path.apply_global(dev)
        warm_up(net, problem, cfgs[0], path, dev)
    size_b = auto_batch_size(h, w, free_memory(dev), cap=32 if dev.type == "cuda" else 8) if batch == "auto" else int(batch)
    ref_images, eng_images, ref_losses = {}, {}, {}
    ref_seconds = eng_seconds = 0.0
    ref_evals = eng_evals = 0
    batch_sizes, peak = [], None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base_mem = torch.cuda.memory_allocated(dev)
    for method, reference_first in (("baseline", True), ("normalized", False)):
        group = [k for k, c in enumerate(cfgs) if c.method == method]
        for path in (("reference", "engine") if reference_first else ("engine", "reference")):
            if path == "reference":
                plain.apply_global(dev)
                t0 = time.perf_counter()
                for k in group:
                    ref_images[k], ref_losses[k], evals = reference_run(reference, problem, cfgs[k])
                    ref_evals += evals
                _sync(dev)
                ref_seconds += time.perf_counter() - t0
            else:
                fast.apply_global(dev)
                t0 = time.perf_counter()
                for i in range(0, len(group), size_b):
                    chunk = group[i : i + size_b]
                    batch_sizes.append(len(chunk))
                    results = run_transfers(extractor, [problem] * len(chunk), [cfgs[k] for k in chunk],
                                            progress=progress, fast=fast)
                    for k, res in zip(chunk, results):
                        eng_images[k] = res.image
                        eng_evals += res.evaluations
                _sync(dev)
                eng_seconds += time.perf_counter() - t0
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(dev) - base_mem) / max(batch_sizes) / 2**20
    ref_images = [ref_images[k] for k in range(len(cfgs))]
    ref_losses = [ref_losses[k] for k in range(len(cfgs))]
    eng_images = [eng_images[k] for k in range(len(cfgs))]
    eng_losses = [final_loss(reference, problem, cfg, image) for cfg, image in zip(cfgs, eng_images)]
    ray = ray_timing(content, style, cfgs, size_b, device, eng_images, ray_address, gpus_per_task) if executor == "ray" \
        else None

    n = len(cfgs)
    per_problem = []
    for cfg, ri, ei, rl, el in zip(cfgs, ref_images, eng_images, ref_losses, eng_losses):
        per_problem.append({"method": cfg.method, "lambda_os": cfg.lambda_os, "reference_final_loss": rl,
                            "engine_final_loss": el, "final_loss_ratio": el / rl if rl else float("nan"),
                            "psnr_db": psnr(ri, ei)})
        if out_dir:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            save_png(to_pil(ei), Path(out_dir) / f"engine_{cfg.method}_{cfg.lambda_os:g}.png")
            save_png(to_pil(ri), Path(out_dir) / f"reference_{cfg.method}_{cfg.lambda_os:g}.png")
    engine_tflops = eng_evals * flops_per_eval / eng_seconds / 1e12
    peak_fraction = None
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        for key, peaks in PEAK_TFLOPS.items():
            if key in name:
                peak_fraction = engine_tflops / peaks["bf16" if bf16 else ("tf32" if fast.tf32 else "fp32")]
    return BenchResult(
        device=str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""), size=[h, w],
        iterations=iterations, problems=n, batch=max(batch_sizes), fast_path=fast.describe(),
        reference_s_per_image=ref_seconds / n, engine_s_per_image=eng_seconds / n, speedup=ref_seconds / eng_seconds,
        reference_evals_per_s=ref_evals / ref_seconds, engine_evals_per_s=eng_evals / eng_seconds,
        reference_tflops=ref_evals * flops_per_eval / ref_seconds / 1e12, engine_tflops=engine_tflops,
        engine_peak_fraction=peak_fraction, min_psnr_db=min(p["psnr_db"] for p in per_problem),
        max_final_loss_ratio=max(p["final_loss_ratio"] for p in per_problem), peak_mem_mb_per_problem=peak,
        per_problem=per_problem, min_final_loss_ratio=min(p["final_loss_ratio"] for p in per_problem),
        ray_s_per_image=ray[0] if ray else None, ray_overhead_ratio=ray[0] / (eng_seconds / n) if ray else None,
        ray_min_psnr_db=ray[1] if ray else None,
    )


def warm_up(extractor, problem: Problem, cfg: TransferConfig, fast: FastPath, dev: torch.device) -> None:
    """One untimed forward/backward through ``extractor`` on this path's settings."""
    loss = build_loss(extractor, problem, cfg)
    x = fast.prepare(initial_image(problem, cfg.init, cfg.seed)).requires_grad_(True)
    with fast.autocast(dev):
        feats = extractor(x, loss.layers)
    loss(feats)[0].sum().backward()
    _sync(dev)


def ray_timing(content, style, cfgs: list[TransferConfig], size_b: int, device: str, local_images: list,
               address: str | None, gpus_per_task: float) -> tuple[float, float]:
    """Seconds per image of the engine's batches as Ray tasks (Ray started before the clock),
    and the min PSNR of their images against the local engine's."""
    import ray
    from PIL import Image

    from stylestudy.engine.produce.executors import run_ray
    from stylestudy.engine.produce.plan import BatchTask

    images = {"object": Path(content).read_bytes(), "style": Path(style).read_bytes()}
    tasks = []
    for method in ("baseline", "normalized"):
        group = [k for k, c in enumerate(cfgs) if c.method == method]
        for i in range(0, len(group), size_b):
            chunk = group[i : i + size_b]
            tasks.append(BatchTask(image_ids=[str(k) for k in chunk], jobs=[{} for _ in chunk],
                                   configs=[asdict(cfgs[k]) for k in chunk], contents=["object"] * len(chunk),
                                   styles=["style"] * len(chunk), image_sha={"object": "", "style": ""},
                                   device=device))
    started_here = not ray.is_initialized()
    if started_here:  # start Ray before the clock (and keep it for both calls below)
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
    try:
        list(run_ray(tasks[:1], images, address, gpus_per_task, progress=False))  # workers up and warm, untimed
        t0 = time.perf_counter()
        outcomes = list(run_ray(tasks, images, address, gpus_per_task, progress=False))
        seconds = time.perf_counter() - t0
    finally:
        if started_here:
            ray.shutdown()
    worst = float("inf")
    for outcome in outcomes:
        if outcome.error:
            raise RuntimeError(f"a Ray bench task failed: {outcome.error}")
        for rendered in outcome.images:
            got = to_tensor(Image.open(io.BytesIO(rendered.png)).convert("RGB"))
            want = to_tensor(to_pil(local_images[int(rendered.image_id)]))
            worst = min(worst, psnr(got, want))
    return seconds / len(cfgs), worst


def format_result(r: BenchResult) -> str:
    lines = [
        f"device {r.device}; {r.problems} problems at {r.size[0]}x{r.size[1]}, {r.iterations} iterations; engine batch "
        f"{r.batch}, fast path: {r.fast_path}",
        f"{'':12}{'s/image':>10}{'evals/s':>10}{'TFLOP/s':>10}",
        f"{'reference':12}{r.reference_s_per_image:10.3f}{r.reference_evals_per_s:10.2f}{r.reference_tflops:10.3f}",
        f"{'engine':12}{r.engine_s_per_image:10.3f}{r.engine_evals_per_s:10.2f}{r.engine_tflops:10.3f}",
        f"speedup (reference / engine): {r.speedup:.2f}x"
        + (f"; engine at {100 * r.engine_peak_fraction:.1f}% of the device's peak" if r.engine_peak_fraction else ""),
        f"parity: min PSNR engine vs reference {r.min_psnr_db:.1f} dB, final-loss ratio engine/reference "
        f"{r.min_final_loss_ratio:.4f}..{r.max_final_loss_ratio:.4f}",
        f"order: {r.order}",
        "peak memory per problem: " + (f"{r.peak_mem_mb_per_problem:.0f} MB" if r.peak_mem_mb_per_problem else
                                       "not measured on this device"),
    ]
    if r.ray_s_per_image is not None:
        lines.append(f"ray executor: {r.ray_s_per_image:.3f} s/image = {r.ray_overhead_ratio:.2f}x the local engine "
                     f"(tasks' images vs local: min PSNR {r.ray_min_psnr_db:.1f} dB)")
    return "\n".join(lines)


def write_json(r: BenchResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(asdict(r), indent=1))
