"""VGG-19 layer names (pure Python: readable without torch, e.g. by study-file validation).

``convX_Y`` is the convolution output *before* its ReLU, ``reluX_Y`` after it, ``poolX`` the
pooling output.  The paper ran Keras, whose ``blockX_convY`` already includes the ReLU, so the
paper's "Conv4_2" is our ``relu4_2``.
"""

from __future__ import annotations

from collections.abc import Iterable

from stylestudy.engine.study.errors import StyleStudyError

# Convolutions per block of VGG-19.
_BLOCK_CONVS = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(_BLOCK_CONVS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))

PAPER_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
PAPER_STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


class UnknownLayerError(StyleStudyError):
    """A requested layer name is not a VGG-19 layer."""


def min_image_side(layers: Iterable[str]) -> int:
    """Fewest pixels an input side needs so the deepest of ``layers`` still has one position:
    2 to the number of poolings before it (16 for relu5_x)."""
    deepest = max(LAYER_NAMES.index(name) for name in layers)
    return 2 ** sum(1 for name in LAYER_NAMES[:deepest] if name.startswith("pool"))


def validate_layers(layers: Iterable[str]) -> list[str]:
    """Return the layers as a list, or raise with the list of valid names."""
    layers = list(layers)
    unknown = [name for name in layers if name not in LAYER_NAMES]
    if unknown:
        raise UnknownLayerError(
            f"unknown VGG-19 layer(s) {', '.join(unknown)}; valid names: {', '.join(LAYER_NAMES)}"
        )
    if not layers:
        raise UnknownLayerError("no layers requested; give at least one VGG-19 layer name")
    return layers
