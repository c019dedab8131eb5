"""Device choice and the per-process cache of VGG-19 extractors."""

from __future__ import annotations

import torch

from stylestudy.engine.neural.vgg import VGG19Features
from stylestudy.engine.neural.weights import load_weights
from stylestudy.engine.study.errors import StyleStudyError


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
