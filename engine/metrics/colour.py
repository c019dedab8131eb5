"""Colour-distribution distance: the sliced Wasserstein-1 distance between two images' pixels in
CIELAB (scikit-image's conversion), in Lab units (a ΔE*ab-like scale; 0 = the same palette).

Each of ``DIRECTIONS`` fixed random unit directions projects both pixel sets to a line, where the
Wasserstein-1 distance is the mean gap between their quantile functions (``QUANTILES`` levels, so
images of different sizes compare); the distance is the mean over directions.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab

DIRECTIONS = 64
QUANTILES = 256
SEED = 0


def _directions() -> np.ndarray:
    d = np.random.default_rng(SEED).normal(size=(DIRECTIONS, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def lab_quantiles(rgb01: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (DIRECTIONS, QUANTILES) quantiles of its Lab pixels' projections."""
    projected = np.sort(rgb2lab(rgb01).reshape(-1, 3) @ _directions().T, axis=0)
    ranks = ((np.arange(QUANTILES) + 0.5) / QUANTILES * len(projected)).astype(int)  # nearest-rank quantiles
    return projected[ranks].T


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two images' ``lab_quantiles``."""
    return float(np.abs(a - b).mean())
