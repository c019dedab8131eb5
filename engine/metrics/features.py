"""VGG-19 distances with the engine's own loss code: the content distance at the paper's content
layer and the Gram-matrix style distance per style layer, under both of the paper's definitions.

* ``content_vgg``: ||phi(x) - phi(o)||^2 / ||phi(o)||^2 at relu4_2 (the normalized loss's content
  partial with unit weight: scale-free, 0 = the same features as the content image o).
* ``style_gatys_<layer>``: ||G(x) - G(s)||_F^2 / (2 H W C)^2 (Gatys et al., the baseline partial).
* ``style_normalized_<layer>``: ||G(x) - G(s)||_F^2 / ||G(s)||_F^2 (Choi & Kim's normalized partial).
* ``..._total``: the sum over the style layers with unit weights.
"""

from __future__ import annotations

import torch

from stylestudy.engine.neural.losses import BaselineLoss, Features, LossWeights, NormalizedLoss, Targets, squared_error
from stylestudy.engine.neural.vgg import VGG19Features
from stylestudy.engine.study.layer_names import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS

CONTENT_LAYER = PAPER_CONTENT_LAYERS[0]
STYLE_LAYERS = PAPER_STYLE_LAYERS
DEFINITIONS = {"gatys": BaselineLoss, "normalized": NormalizedLoss}


def feature_names() -> list[str]:
    names = ["content_vgg"]
    for definition in DEFINITIONS:
        names += [f"style_{definition}_{j}" for j in STYLE_LAYERS] + [f"style_{definition}_total"]
    return names


def image_features(extractor: VGG19Features, x: torch.Tensor) -> Features:
    """The stimuli's features at every layer the distances use, in one forward pass."""
    with torch.no_grad():
        return extractor(x, [CONTENT_LAYER, *STYLE_LAYERS])


def content_distances(extractor: VGG19Features, feats: Features, content: torch.Tensor) -> list[float]:
    """The stimuli's ``image_features`` and their content images (B, 3, H, W) -> ``content_vgg`` per image."""
    with torch.no_grad():
        fx = feats[CONTENT_LAYER]
        fo = extractor(content, [CONTENT_LAYER])[CONTENT_LAYER]
        return (squared_error(fx, fo) / squared_error(fo, torch.zeros_like(fo))).double().cpu().tolist()


def style_grams(extractor: VGG19Features, style: list[torch.Tensor]) -> list[Features]:
    """Each style image's (1, 3, Hs, Ws) features at the style layers; same-size images in one pass."""
    out: list[Features | None] = [None] * len(style)
    shapes: dict[tuple, list[int]] = {}
    for k, s in enumerate(style):
        shapes.setdefault(tuple(s.shape), []).append(k)
    with torch.no_grad():
        for members in shapes.values():
            feats = extractor(torch.cat([style[k] for k in members]), STYLE_LAYERS)
            for n, k in enumerate(members):
                out[k] = {j: v[n : n + 1] for j, v in feats.items()}
    return out  # type: ignore[return-value]


def style_distances(extractor: VGG19Features, feats: Features, style: list[torch.Tensor]) -> list[dict[str, float]]:
    """The stimuli's ``image_features`` and one style image (1, 3, Hs, Ws) per stimulus -> the Gram distances."""
    with torch.no_grad():
        own = feats[CONTENT_LAYER]  # the losses want a content target; its partial is not used here
        hw = tuple(own.shape[-2:])
        targets = Targets.stack([Targets.from_features({CONTENT_LAYER: own[k : k + 1]}, s, hw)
                                 for k, s in enumerate(style_grams(extractor, style))])
        unit = LossWeights(1.0, {CONTENT_LAYER: 1.0}, {j: 1.0 for j in STYLE_LAYERS})
        partials = {name: cls(targets, unit).partials(feats).detached()["style"] for name, cls in DEFINITIONS.items()}
    out = []
    for k in range(own.shape[0]):
        row = {}
        for name, p in partials.items():
            layers = {j: p[j][k] for j in STYLE_LAYERS}
            row.update({f"style_{name}_{j}": v for j, v in layers.items()})
            row[f"style_{name}_total"] = sum(layers.values())
        out.append(row)
    return out
