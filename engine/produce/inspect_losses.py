"""Partial losses and layer output power of one image (the paper's Fig. 3 at t=0 and Fig. 4).

The JSON shape is a public interface (``stylestudy inspect --json``):
``{"size", "weights", "content_layers", "style_layers", "power": {"content", "style"},
"baseline": {"content", "style"}, "normalized": {"content", "style"}}`` with unweighted
partials (no lambda, no w); with ``--compare-paper`` also ``"compare_paper": {"ours", "paper",
"log10_distance", "dominant"}``.
"""

from __future__ import annotations

import math

import torch
from PIL import Image

from stylestudy.engine.neural.losses import BaselineLoss, LossWeights, NormalizedLoss, Targets
from stylestudy.engine.neural.problem import Problem
from stylestudy.engine.neural.tensors import to_tensor
from stylestudy.engine.neural.vgg import VGG19Features
from stylestudy.engine.study.images import load_rgb


def inspect_problem(extractor: VGG19Features, problem: Problem, content_layers: list[str], style_layers: list[str],
                    image: torch.Tensor | None = None) -> dict:
    """Partials of ``image`` (default: the object image, the optimisation's start) and powers."""
    layers = list(dict.fromkeys(content_layers + style_layers))
    with torch.no_grad():
        feats_o = extractor(problem.content, layers)
        feats_s = extractor(problem.style, layers)
        feats_x = feats_o if image is None else extractor(image, layers)
        targets = Targets.from_features({j: feats_o[j] for j in content_layers},
                                        {j: feats_s[j] for j in style_layers}, problem.size_hw)
        unit = LossWeights(1.0, {j: 1.0 for j in content_layers}, {j: 1.0 for j in style_layers})
        result = {
            "size": list(problem.size_hw),
            "weights": extractor.weights_name,
            "weights_sha256": extractor.weights_sha256,
            "content_layers": content_layers,
            "style_layers": style_layers,
            "power": {
                "content": {j: float(feats_o[j].double().pow(2).mean()) for j in layers},
                "style": {j: float(feats_s[j].double().pow(2).mean()) for j in layers},
            },
        }
        for name, cls in (("baseline", BaselineLoss), ("normalized", NormalizedLoss)):
            partials = cls(targets, unit).partials(feats_x).detached()
            result[name] = {group: {j: v[0] for j, v in partials[group].items()} for group in ("content", "style")}
    return result


# The paper's initial baseline partial style losses relative to Conv1_2 (Sec. III.1, Fig. 3):
# Conv1_2, Conv2_2, Conv3_4, Conv4_4, Conv5_4, for its own images at 512 px.
PAPER_RATIOS = (1.0, 245.9, 1317.6, 381620.0, 77.33)


def compare_with_paper(report: dict) -> dict:
    """Our initial baseline partial style losses relative to the first style layer, beside the
    paper's, and their distance sum |log10(ours / paper)| over the four other layers.  Defined for
    any five style layers, matched to the paper's in order."""
    layers = report["style_layers"]
    if len(layers) != len(PAPER_RATIOS):
        from stylestudy.engine.study.errors import StyleStudyError

        raise StyleStudyError(f"--compare-paper needs five style layers (the paper's five, in order); got "
                              f"{len(layers)}: {', '.join(layers)}")
    partials = report["baseline"]["style"]
    first = partials[layers[0]]
    ours = {j: (partials[j] / first if first > 0 else math.nan) for j in layers}
    paper = dict(zip(layers, PAPER_RATIOS))
    distance = sum(abs(math.log10(ours[j] / paper[j])) if ours[j] > 0 else math.inf for j in layers[1:])
    return {"ours": ours, "paper": paper, "log10_distance": distance, "dominant": max(layers, key=lambda j: ours[j])}


def format_comparison(comparison: dict) -> str:
    lines = ["initial baseline partial style loss relative to the first style layer: ours vs the paper "
             "(Conv1_2, Conv2_2, Conv3_4, Conv4_4, Conv5_4 in order)",
             f"{'layer':<9}{'ours':>13}{'paper':>13}{'|log10 ratio|':>15}"]
    for j, ours in comparison["ours"].items():
        paper = comparison["paper"][j]
        gap = abs(math.log10(ours / paper)) if ours > 0 else math.inf
        lines.append(f"{j:<9}{ours:13.4g}{paper:13.4g}{gap:15.2f}")
    lines.append(f"distance sum |log10(ours/paper)| over the four non-reference layers = "
                 f"{comparison['log10_distance']:.2f}; dominant layer: {comparison['dominant']}")
    return "\n".join(lines)


def image_for(problem: Problem, path) -> torch.Tensor:
    """Load ``--image`` at the object image's size (it is compared position by position)."""
    img = load_rgb(path)
    h, w = problem.size_hw
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.LANCZOS)
    return to_tensor(img, problem.content.device)


def format_table(report: dict) -> str:
    """A readable table of the report, one row per layer."""
    layers = list(dict.fromkeys(report["content_layers"] + report["style_layers"]))
    lines = [
        f"object size {report['size'][0]}x{report['size'][1]}, weights {report['weights']}",
        f"{'layer':<9}{'role':<7}{'power(o)':>12}{'power(s)':>12}{'baseline':>13}{'normalized':>13}{'rel. base':>11}",
    ]
    first_style = report["baseline"]["style"].get(report["style_layers"][0])
    for j in layers:
        for role, group in (("content", "content"), ("style", "style")):
            if j not in report["baseline"][group]:
                continue
            base = report["baseline"][group][j]
            rel = f"{base / first_style:11.4g}" if role == "style" and first_style else f"{'':>11}"
            lines.append(
                f"{j:<9}{role:<7}{report['power']['content'][j]:12.4g}{report['power']['style'][j]:12.4g}"
                f"{base:13.4g}{report['normalized'][group][j]:13.4g}{rel}"
            )
    lines.append("partials are unweighted (no lambda, no w); 'rel. base' = style partial / first style layer's")
    return "\n".join(lines)
