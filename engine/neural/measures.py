"""Method-independent measures of shown images (for the manifest and ``stylestudy claims``)."""

from __future__ import annotations

import torch

from stylestudy.engine.neural.losses import LossWeights, NormalizedLoss, Targets
from stylestudy.engine.neural.problem import build_targets


def objective_measures(extractor, problems, cfgs, images) -> list[dict]:
    """Method-independent yardsticks of the shown (clamped, 8-bit) images: the normalized
    partial content and style distances with unit weights, comparable across methods, and the
    object photograph's own per-layer style distances (``object_style``: where every run starts,
    the reference of ``stylestudy claims``' style strength)."""
    cfg = cfgs[0]
    targets = Targets.stack([build_targets(extractor, p, c) for p, c in zip(problems, cfgs)])
    unit = LossWeights(1.0, {j: 1.0 for j in cfg.content_layers}, {j: 1.0 for j in cfg.style_layers})
    loss = NormalizedLoss(targets, unit)
    with torch.no_grad():
        partials = loss.partials(extractor(images, loss.layers)).detached()
        photo = loss.partials(extractor(torch.cat([p.content for p in problems]), loss.layers)).detached()
    out = []
    for k in range(len(problems)):
        content = {j: v[k] for j, v in partials["content"].items()}
        style = {j: v[k] for j, v in partials["style"].items()}
        out.append({"content_distance": sum(content.values()) / len(content), "style_distance":
                    sum(style.values()) / len(style), "content": content, "style": style,
                    "object_style": {j: v[k] for j, v in photo["style"].items()}})
    return out
