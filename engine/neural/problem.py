"""One transfer problem: the resized images as tensors, their targets, the loss and x's start."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.losses import StyleTransferLoss, Targets, make_loss
from stylestudy.engine.neural.tensors import to_tensor
from stylestudy.engine.neural.vgg import VGG19Features
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.images import load_rgb, resize_longer_side, resize_to_area
from stylestudy.engine.study.layer_names import LAYER_NAMES, min_image_side


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
