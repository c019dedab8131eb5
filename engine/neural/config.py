"""What determines the pixels of one transfer: the ``TransferConfig`` and its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stylestudy.engine.neural.losses import LossWeights
from stylestudy.engine.neural.vgg import validate_layers
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.layer_names import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS

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
