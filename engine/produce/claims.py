"""``stylestudy claims``: the paper's three claims measured objectively on a generated run.

The paper argues from pictures (its Fig. 2 and Fig. 6). Here each claim gets a number per method,
from the stimuli themselves, so a run can be checked before anyone rates it:

* **style strength** of an image x, in decades: ``mean_j log10(d_j(o) / d_j(x))`` over the run's
  style layers j, where ``d_j = ||G_j(.) - G_j(s)||^2 / ||G_j(s)||^2`` is the normalized partial
  style distance with unit weights (the manifest's ``objective.style``) and o is the object
  photograph at the same size (``objective.object_style``). 0 = as far from the style as the
  photo; 1 = ten times closer to the style's Gram matrices, on (geometric) average over layers.
  Per-layer ratios, so no single layer's scale dominates; the same yardstick for both methods.
* **image change**: root-mean-square difference of two images' pixels in [0, 1].

Claims:

(a) *One λos fits every style, and no saturation* (block with ``sweep = "lambda_os"``). For each
    method, the λos at which each style reaches the same strength T (T = the middle of the range
    every style spans; log-linear interpolation between columns); the claim's number is their
    spread across styles in decades (max - min of log10 λos). Saturation: the image change between
    the last two columns. Reproduced when the normalized spread is smaller *and* the normalized
    images still change more between the last two columns.
(b) *Every layer's emphasis matters* (``sweep = "layer_boost"``). For each boosted layer, the
    image change from the same row's unboosted image (the run's condition with equal weights and
    otherwise the same parameters). The claim's number is the participation ratio of those changes,
    (Σ r)² / Σ r², from 1 (one layer moves the image) to the number of layers (all move it
    equally). Reproduced when the normalized ratio is larger.
(c) *Stable across resolution* (``sweep = "size"``). For each method, the range (max - min) of
    style strength across the sizes (decades), averaged over rows. Reproduced when the normalized range is
    smaller.

The reference distances d(o) need VGG-19 (torch, imported only then); everything else reads the
manifest and the PNGs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from stylestudy.engine.study.claims_text import format_claims  # noqa: F401 - the text of a result
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.manifest import Condition, StudyManifest

METHODS = ("baseline", "normalized")
CLAIMS = {
    "a": ("One λos fits every style, and no saturation",
          "spread across styles (decades) of the λos reaching a common style strength ('> sweep': no λos of the "
          "sweep gives the styles a common strength); image change (RMS) between the last two columns"),
    "b": ("Every layer's emphasis matters",
          "participation ratio (Σr)²/Σr² of the image changes (RMS) each 100x layer boost causes, 1..number of layers"),
    "c": ("Stable across resolution",
          "range (max - min) of style strength (decades) across the sizes, mean over rows"),
}


def rms(a: Condition, b: Condition, manifest: StudyManifest) -> float:
    x = np.asarray(Image.open(manifest.image_file(a)).convert("RGB"), np.float64) / 255
    y = np.asarray(Image.open(manifest.image_file(b)).convert("RGB"), np.float64) / 255
    if x.shape != y.shape:
        raise StyleStudyError(f"{a.id} and {b.id} differ in size ({x.shape[:2]} vs {y.shape[:2]}); cannot compare")
    return float(np.sqrt(((x - y) ** 2).mean()))


def input_path(manifest: StudyManifest, name: str) -> Path:
    source = manifest.study["images"][name]["path"]
    if source.startswith("skimage:"):
        return manifest.run_dir / "inputs" / f"{name}.png"
    return Path(manifest.study["folder"]) / source


def _reference_key(c: Condition) -> tuple:
    params = c.get("params")
    return (c.row_label, params["size"], params.get("style_size"), tuple(params["style_layers"]), params["weights"],
            params["pooling"])


def reference_distances(manifest: StudyManifest, conditions: list[Condition], device: str = "auto") -> dict:
    """d_j(o) per style layer for each (style, size, layers) of ``conditions``: the photograph's
    own normalized style distances, the reference of style strength.  Recorded by generation
    (``objective.object_style``); computed with VGG-19 for runs made before it was."""
    recorded = {_reference_key(c): c.get("objective").get("object_style") for c in conditions}
    if all(v is not None for v in recorded.values()):
        return recorded
    import torch

    from stylestudy.engine.neural.config import TransferConfig
    from stylestudy.engine.neural.device import get_extractor, resolve_device
    from stylestudy.engine.neural.measures import objective_measures
    from stylestudy.engine.neural.problem import Problem

    dev = resolve_device(device)
    out: dict[tuple, dict] = {}
    for c in conditions:
        params, key = c.get("params"), _reference_key(c)
        if key in out:
            continue
        problem = Problem.from_files(input_path(manifest, manifest.study["object_image"]),
                                     input_path(manifest, c.row_label), params["size"], params.get("style_size"), dev)
        cfg = TransferConfig(**{k: v for k, v in params.items() if k in TransferConfig.__dataclass_fields__})
        extractor = get_extractor(params["weights"], dev, params["pooling"])
        with torch.no_grad():
            out[key] = objective_measures(extractor, [problem], [cfg], problem.content)[0]["style"]
    return out


def strength(c: Condition, references: dict) -> float:
    """mean_j log10(d_j(o) / d_j(x)): decades closer to the style than the photograph."""
    reference, distances = references[_reference_key(c)], c.get("objective")["style"]
    logs = [math.log10(reference[j] / distances[j]) for j in distances if reference[j] > 0 and distances[j] > 0]
    return float(np.mean(logs)) if logs else math.nan


def _block(manifest: StudyManifest, sweep: str) -> str | None:
    return next((name for name, spec in manifest.study.get("blocks", {}).items() if spec.get("sweep") == sweep), None)


def _cells(manifest: StudyManifest, block: str, method: str) -> dict[int, list[Condition]]:
    """row -> the rated conditions of one block and method, by column."""
    rows: dict[int, list[Condition]] = {}
    for c in manifest.rated:
        if c.block == block and c.method == method:
            rows.setdefault(c.row, []).append(c)
    return {r: sorted(cs, key=lambda c: c.column) for r, cs in sorted(rows.items())}


def crossing(log_lambdas: list[float], strengths: list[float], target: float) -> float:
    """log10 λos at which strength first reaches ``target``, walking columns from least to most
    style (linear in log10 λos between neighbouring columns); NaN if never."""
    points = sorted(zip(log_lambdas, strengths), reverse=True)  # large λos (little style) first
    for (l0, s0), (l1, s1) in zip(points, points[1:]):
        if (s0 - target) * (s1 - target) <= 0 and s0 != s1:
            return l0 + (target - s0) * (l1 - l0) / (s1 - s0)
        if s0 == target:
            return l0
    return math.nan


def _claim(cid: str, baseline: float | None, normalized: float | None, reproduced: bool | None, details: dict) -> dict:
    claim, measure = CLAIMS[cid]
    return {"id": cid, "claim": claim, "measure": measure, "baseline": baseline, "normalized": normalized,
            "reproduced": reproduced, "details": details}


def claim_a(manifest: StudyManifest, refs: dict) -> dict:
    block = _block(manifest, "lambda_os")
    if block is None:
        return _claim("a", None, None, None, {"reason": "the run has no lambda_os block"})
    spread, last_step, details = {}, {}, {"block": block}
    for method in METHODS:
        rows = _cells(manifest, block, method)
        curves = {cs[0].row_label: ([math.log10(c.get("params")["lambda_os"]) for c in cs],
                                    [strength(c, refs) for c in cs]) for cs in rows.values()}
        low = max(min(s) for _, s in curves.values())
        high = min(max(s) for _, s in curves.values())
        common = low <= high  # else no λos of the sweep gives the styles the same strength
        target = (low + high) / 2 if common else math.nan
        at = {style: crossing(ls, ss, target) for style, (ls, ss) in curves.items()}
        finite = [v for v in at.values() if math.isfinite(v)]
        if len(curves) < 2:
            spread[method] = math.nan  # one style: nothing to compare
        elif not common:
            spread[method] = math.inf  # more than the sweep spans (reported as null, with the reason)
        else:
            spread[method] = max(finite) - min(finite) if len(finite) == len(at) else math.nan
        last_step[method] = float(np.mean([rms(cs[-2], cs[-1], manifest) for cs in rows.values()]))
        details[method] = {"common_strength": common, "target_strength": target, "log10_lambda_at_target": at,
                           "strength": {style: ss for style, (_, ss) in curves.items()},
                           "lambda_os": {style: [10 ** v for v in ls] for style, (ls, _) in curves.items()},
                           "last_step_rms": last_step[method]}
    one_fits = (spread["normalized"] < spread["baseline"]
                if not any(math.isnan(v) for v in spread.values()) and math.isfinite(spread["normalized"]) else None)
    no_saturation = last_step["normalized"] > last_step["baseline"]
    details["one_lambda_fits_every_style"] = one_fits
    details["no_saturation"] = no_saturation
    reproduced = None if one_fits is None else bool(one_fits and no_saturation)
    return _claim("a", spread["baseline"], spread["normalized"], reproduced, details)


def _unboosted(manifest: StudyManifest, boosted: Condition) -> Condition | None:
    """The run's condition with the same parameters but equal style weights."""
    want = {k: v for k, v in boosted.get("params").items() if k != "style_weights"}
    for c in manifest.conditions:
        params = c.get("params")
        if (c.method == boosted.method and c.row_label == boosted.row_label and len(set(params["style_weights"])) == 1
                and {k: v for k, v in params.items() if k != "style_weights"} == want):
            return c
    return None


def claim_b(manifest: StudyManifest) -> dict:
    block = _block(manifest, "layer_boost")
    if block is None:
        return _claim("b", None, None, None, {"reason": "the run has no layer_boost block"})
    ratio, details = {}, {"block": block}
    for method in METHODS:
        per_row, changes = [], {}
        for cs in _cells(manifest, block, method).values():
            reference = _unboosted(manifest, cs[0])
            if reference is None:
                return _claim("b", None, None, None, {"reason": f"no unboosted image of {cs[0].row_label} ({method}) "
                                                                "with the same parameters in the run"})
            r = np.array([rms(c, reference, manifest) for c in cs])
            per_row.append(float(r.sum() ** 2 / (r**2).sum()) if r.any() else math.nan)
            for c, value in zip(cs, r):
                changes.setdefault(c.column_label, []).append(float(value))
        ratio[method] = float(np.mean(per_row))
        mean_change = {label: float(np.mean(v)) for label, v in changes.items()}
        details[method] = {"rms_by_boost": mean_change, "largest": max(mean_change, key=mean_change.get),
                           "participation_ratio_by_row": per_row}
    reproduced = ratio["normalized"] > ratio["baseline"] if all(map(math.isfinite, ratio.values())) else None
    return _claim("b", ratio["baseline"], ratio["normalized"], reproduced, details)


def claim_c(manifest: StudyManifest, refs: dict) -> dict:
    block = _block(manifest, "size")
    if block is None:
        return _claim("c", None, None, None, {"reason": "the run has no size block"})
    spread, details = {}, {"block": block}
    for method in METHODS:
        rows = _cells(manifest, block, method)
        strengths = {cs[0].row_label: {c.get("params")["size"]: strength(c, refs) for c in cs} for cs in rows.values()}
        ranges = [max(s.values()) - min(s.values()) for s in strengths.values()]
        spread[method] = float(np.mean(ranges))
        details[method] = {"strength_by_size": strengths, "range_by_row": ranges}
    return _claim("c", spread["baseline"], spread["normalized"], spread["normalized"] < spread["baseline"], details)


def measure_claims(run_dir: str | Path, device: str = "auto") -> dict:
    manifest = StudyManifest.load(run_dir, check_files=True)
    measured = [c for c in manifest.rated if c.get("objective") and c.get("params")]
    if len(measured) != len(manifest.rated):
        raise StyleStudyError(f"{manifest.source} lacks objective measures or parameters for some conditions; "
                              "re-run stylestudy generate")
    refs = reference_distances(manifest, measured, device)
    layers = measured[0].get("params")["style_layers"] if measured else []
    return _finite({"run": str(manifest.run_dir), "study": manifest.study.get("name"), "style_layers": layers,
                    "strength": "mean over style layers j of log10(d_j(o) / d_j(x)), d_j = normalized partial style "
                                "distance, o = the photograph (decades)",
                    "claims": [claim_a(manifest, refs), claim_b(manifest), claim_c(manifest, refs)]})


def claims_figure(result: dict, out: Path) -> Path:
    """Style strength against λos (a), image change per boosted layer (b), strength against size (c)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    claims = {c["id"]: c for c in result["claims"]}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    palette = dict(zip(METHODS, sns.color_palette("colorblind", 2)))
    for method in METHODS:
        a = claims["a"]["details"].get(method)
        if a:
            for style, values in a["strength"].items():
                axes[0].plot(a["lambda_os"][style], values, marker="o", color=palette[method],
                             linestyle="-" if style == next(iter(a["strength"])) else "--", label=f"{method}: {style}")
        b = claims["b"]["details"].get(method)
        if b:
            labels = list(b["rms_by_boost"])
            offset = -0.2 if method == "baseline" else 0.2
            axes[1].bar(np.arange(len(labels)) + offset, list(b["rms_by_boost"].values()), 0.4, color=palette[method],
                        label=method)
            axes[1].set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        c = claims["c"]["details"].get(method)
        if c:
            for style, by_size in c["strength_by_size"].items():
                sizes = sorted(by_size, key=int)
                axes[2].plot([int(s) for s in sizes], [by_size[s] for s in sizes], marker="o", color=palette[method],
                             linestyle="-" if style == next(iter(c["strength_by_size"])) else "--",
                             label=f"{method}: {style}")
    axes[0].set(xscale="log", xlabel="λos", ylabel="style strength (decades)", title="(a) λos sweep")
    axes[1].set(ylabel="RMS change from the unboosted image", title="(b) one layer boosted 100x")
    axes[2].set(xscale="log", xlabel="object size (px)", ylabel="style strength (decades)", title="(c) resolution")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle(f"The paper's claims on {result['study']} (style layers {', '.join(result['style_layers'])})", fontsize=9)
    fig.tight_layout()
    path = out / "claims.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _finite(value):
    """JSON has no NaN: non-finite numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_claims(result: dict, out: str | Path, json_file: str | Path | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False).encode()
    atomic_write_bytes(out / "claims.json", text)
    atomic_write_bytes(out / "claims.md", format_claims(result).encode())
    written = [out / "claims.json", out / "claims.md", claims_figure(result, out)]
    if json_file:
        atomic_write_bytes(json_file, text)
        written.append(Path(json_file))
    return written
