"""SSIM and MS-SSIM (piq's implementations) of an image against its content image, both in [0, 1].

MS-SSIM's five scales need a shorter side of at least 161 px (11-px window, four halvings); a run
of smaller images gets as many scales as its smallest image allows, with the standard weights
renormalised, the same number for every image of the run so their values stay comparable.
"""

from __future__ import annotations

import piq
import torch

WINDOW = 11
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


def ms_ssim_scales(shorter_side: int) -> int:
    """Most scales (<= 5) whose coarsest still holds an 11-px window: side >= 10 * 2**(scales-1) + 1."""
    scales = 0
    while scales < len(MS_SSIM_WEIGHTS) and shorter_side >= (WINDOW - 1) * 2 ** scales + 1:
        scales += 1
    return scales


def ssim(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) x2 in [0, 1] -> (B,) SSIM."""
    return piq.ssim(x.float(), reference.float(), data_range=1.0, reduction="none", kernel_size=WINDOW)


def ms_ssim(x: torch.Tensor, reference: torch.Tensor, scales: int) -> torch.Tensor:
    """(B, 3, H, W) x2 in [0, 1] -> (B,) MS-SSIM over ``scales`` scales (NaN when fewer than 2)."""
    if scales < 2:
        return torch.full((x.shape[0],), float("nan"))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float32, device=x.device)
    return piq.multi_scale_ssim(x.float(), reference.float(), data_range=1.0, reduction="none",
                                kernel_size=WINDOW, scale_weights=weights)
