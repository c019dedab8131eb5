"""Pillow images <-> torch tensors (the network's side of ``engine.study.images``)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """PIL RGB -> (1, 3, H, W) float32 in [0, 1]."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB, clamped to the valid range."""
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    arr = (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")
