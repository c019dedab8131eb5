"""VGG-19 feature extractor returning a dict of named layer outputs.

Layer names follow the Caffe/Keras convention in lower case: ``convX_Y`` is the convolution
output *before* its ReLU, ``reluX_Y`` after it, ``poolX`` the pooling output.  The paper ran
Keras, whose ``blockX_convY`` already includes the ReLU, so the paper's "Conv4_2" is our
``relu4_2`` (see ``PAPER_CONTENT_LAYERS`` / ``PAPER_STYLE_LAYERS``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from stylestudy.engine.neural.weights import VGGWeights
from stylestudy.engine.study.layer_names import LAYER_NAMES, validate_layers


class VGG19Features(nn.Module):
    """VGG-19 convolutional trunk with bound preprocessing.

    ``forward`` takes RGB images in [0, 1] shaped (B, 3, H, W), applies the preprocessing that
    belongs to the weights (Caffe: BGR, 0..255, mean-subtracted; torchvision: ImageNet mean/std)
    and runs only up to the deepest requested layer.
    """

    def __init__(self, weights: VGGWeights, pooling: str = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'max' (the paper) or 'avg'")
        self.weights_name = weights.name
        self.weights_sha256 = weights.sha256
        self.preprocessing = weights.preprocessing
        self.pooling = pooling
        layers: dict[str, nn.Module] = {}
        in_channels = 3
        for name in LAYER_NAMES:
            if name.startswith("conv"):
                kernel, bias = weights.convs[name]
                conv = nn.Conv2d(in_channels, kernel.shape[0], kernel_size=3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(kernel)
                    conv.bias.copy_(bias)
                layers[name] = conv
                in_channels = kernel.shape[0]
            elif name.startswith("relu"):
                layers[name] = nn.ReLU(inplace=False)
            else:
                layers[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        self.layers = nn.ModuleDict(layers)
        mean, scale = self.preprocessing.affine()
        self.register_buffer("_mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_scale", scale.view(1, 3, 1, 1), persistent=False)
        self._channel_index = self.preprocessing.channel_index()
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, rgb01: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's input space."""
        x = rgb01[:, self._channel_index] if self._channel_index is not None else rgb01
        return (x - self._mean) * self._scale

    def forward(self, rgb01: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(validate_layers(layers))
        last = max(LAYER_NAMES.index(name) for name in wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb01)
        for name in LAYER_NAMES[: last + 1]:
            x = self.layers[name](x)
            if name in wanted:
                out[name] = x
        return out
