"""Switches for the fast GPU path, each measurable on its own (``stylestudy bench``).

Defaults: on CUDA, channels_last + cudnn.benchmark + TF32 (Grams and losses stay float32);
bf16 autocast of the feature extractor only when asked (``bf16=True``), since it changes the
images more than TF32 does.  On CPU everything is off: the plain float32 path.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FastPath:
    channels_last: bool = False
    cudnn_benchmark: bool = False
    tf32: bool = False
    bf16: bool = False  # autocast the VGG-19 forward/backward to bfloat16

    @classmethod
    def for_device(cls, device: torch.device, bf16: bool = False) -> "FastPath":
        if device.type == "cuda":
            return cls(channels_last=True, cudnn_benchmark=True, tf32=True, bf16=bf16)
        return cls(bf16=bf16)

    def apply_global(self, device: torch.device) -> None:
        """Process-wide backend switches (they only matter on CUDA)."""
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self, device: torch.device):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def describe(self) -> str:
        on = [name for name in ("channels_last", "cudnn_benchmark", "tf32", "bf16") if getattr(self, name)]
        return ", ".join(on) or "plain float32"
