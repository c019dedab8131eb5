"""Shared fixtures: tiny images the tests make themselves (no network, nothing copied in)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _pattern(width: int, height: int, seed: int) -> Image.Image:
    """A smooth, textured RGB picture: gradients plus sinusoids, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for c in range(3):
        fx, fy, phase = rng.uniform(0.05, 0.4, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.25 * np.sin(fx * xx + fy * yy + phase) + 0.25 * (xx / width - yy / height))
    arr = np.clip(np.stack(channels, -1), 0, 1)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    _pattern(80, 60, 1).save(d / "content.png")
    _pattern(70, 90, 2).save(d / "style.png")
    return d


@pytest.fixture(scope="session")
def content_path(image_dir):
    return image_dir / "content.png"


@pytest.fixture(scope="session")
def style_path(image_dir):
    return image_dir / "style.png"
