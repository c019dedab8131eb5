"""``stylestudy claims`` on a run whose effects are planted by construction (strengths, image
changes), checked against hand values; the distance to the paper's ratios on a constructed case."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from stylestudy.engine.produce.claims import crossing, format_claims, measure_claims, write_claims
from stylestudy.engine.produce.inspect_losses import PAPER_RATIOS, compare_with_paper
from stylestudy.engine.study.manifest import condition_id, write_manifest

LAYERS = ["relu1_1", "relu2_1", "relu3_1"]
LAMBDAS = {"baseline": [1e-2, 1e-3, 1e-4, 1e-5], "normalized": [1.0, 1e-1, 1e-2, 1e-3]}
# Block (a) strengths (decades) per method and style: the baseline's two styles reach strength 1 a
# decade apart and saturate, the normalized ones reach 1.5 at the same λos and keep changing.
STRENGTH_A = {"baseline": {"starry": [0, 1, 2, 2], "wreck": [0, 0, 1, 2]},
              "normalized": {"starry": [0, 1, 2, 3], "wreck": [0, 1, 2, 3]}}
# Block (b): RMS change each boosted layer causes: one layer (baseline) or all alike (normalized).
BOOST_RMS = {"baseline": [0.0, 0.0, 0.3], "normalized": [0.1, 0.1, 0.1]}
# Block (c): strength at 16, 32, 64 px.
STRENGTH_C = {"baseline": [0.0, 1.0, 2.0], "normalized": [1.0, 1.2, 1.1]}


def _planted_run(root):
    """A run directory by construction: uniform grey images whose grey level encodes the planted
    change, and objective distances 10^-strength of a photograph at distance 1 on every layer."""
    entries = []

    def add(block, row, style, column, method, params, strength, grey, size=8):
        image_id = f"{block}{row}{column}{method}"
        path = root / "stimuli" / f"{image_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size, size, 3), round(grey * 255), np.uint8)).save(path)
        entries.append({
            "id": condition_id(block, row, column, method), "image_id": image_id, "path": f"stimuli/{image_id}.png",
            "sha256": "0" * 64, "block": block, "row": row, "row_label": style, "column": column,
            "column_label": f"c{column}", "method": method, "pair_id": f"{block}{row}{column}", "briefing": False,
            "params": params, "objective": {"style": {j: 10.0 ** -strength for j in LAYERS},
                                            "object_style": {j: 1.0 for j in LAYERS}}})

    def params(method, lam, size=32, weights=(1.0, 1.0, 1.0)):
        return {"method": method, "lambda_os": lam, "size": size, "style_size": None, "style_layers": LAYERS,
                "style_weights": list(weights), "weights": "caffe", "pooling": "max"}

    for method in ("baseline", "normalized"):
        for row, style in ((1, "starry"), (2, "wreck")):
            for column, (lam, s) in enumerate(zip(LAMBDAS[method], STRENGTH_A[method][style]), start=1):
                add("a", row, style, column, method, params(method, lam), s, 0.1 * s)
            reference_lambda = 3e-3  # in no λos sweep column: block (c) column 2 is the only unboosted twin
            for column, size in enumerate((16, 32, 64), start=1):  # column 2 is the unboosted reference of (b)
                add("c", row, style, column, method, params(method, reference_lambda, size), STRENGTH_C[method][column - 1],
                    0.5)
            for column, change in enumerate(BOOST_RMS[method], start=1):
                weights = [100.0 if k == column - 1 else 1.0 for k in range(3)]
                add("b", row, style, column, method, params(method, reference_lambda, weights=weights), 0.0,
                    0.5 + change)
    study = {"name": "planted", "object_image": "photo", "blocks": {
        "a": {"sweep": "lambda_os"}, "b": {"sweep": "layer_boost"}, "c": {"sweep": "size"}}}
    write_manifest(root, study, entries, None, True)
    return root


def test_planted_effects_are_measured_to_hand_values(tmp_path):
    result = measure_claims(_planted_run(tmp_path))  # object_style recorded: no VGG-19 needed
    claims = {c["id"]: c for c in result["claims"]}
    a, b, c = claims["a"], claims["b"], claims["c"]
    # (a): baseline styles reach the common strength 1 at log10 λos -3 and -4; normalized both 1.5 at -2.5.
    assert a["baseline"] == pytest.approx(1.0) and a["normalized"] == pytest.approx(0.0)
    assert a["details"]["baseline"]["target_strength"] == pytest.approx(1.0)
    assert a["details"]["normalized"]["log10_lambda_at_target"] == pytest.approx({"starry": -1.5, "wreck": -1.5})
    # Saturation: baseline's last step changes one style by 0.0 and the other by 0.1 (grey levels): mean 0.05.
    assert a["details"]["baseline"]["last_step_rms"] == pytest.approx(0.05, abs=0.003)
    assert a["details"]["normalized"]["last_step_rms"] == pytest.approx(0.1, abs=0.003)
    assert a["reproduced"] is True
    # (b): participation ratio 1 (one layer) vs 3 (all three alike).
    assert b["baseline"] == pytest.approx(1.0) and b["normalized"] == pytest.approx(3.0, abs=0.05)
    assert b["details"]["baseline"]["largest"] == "c3" and b["reproduced"] is True
    # (c): range 2 decades vs 0.2.
    assert c["baseline"] == pytest.approx(2.0) and c["normalized"] == pytest.approx(0.2) and c["reproduced"] is True
    written = write_claims(result, tmp_path / "claims", tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text()) == json.loads((tmp_path / "claims" / "claims.json").read_text())
    assert {p.name for p in written} >= {"claims.json", "claims.md", "claims.png"}
    assert "| (b) Every layer's emphasis matters |" in format_claims(result) and "| reproduced |" in format_claims(result)


def test_the_reverse_effects_are_not_reproduced(tmp_path):
    """Swap the methods' images: every claim must then come out 'not reproduced'."""
    _planted_run(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    swap = {"baseline": "normalized", "normalized": "baseline"}
    for e in manifest["stimuli"]:
        e["method"] = swap[e["method"]]
        e["id"] = condition_id(e["block"], e["row"], e["column"], e["method"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    claims = measure_claims(tmp_path)["claims"]
    assert [c["reproduced"] for c in claims] == [False, False, False]


def test_no_common_strength_is_more_than_the_sweep(tmp_path):
    assert crossing([-2, -3, -4], [0.0, 1.0, 2.0], 1.5) == pytest.approx(-3.5)
    assert math.isnan(crossing([-2, -3], [0.0, 0.5], 1.0))
    _planted_run(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for e in manifest["stimuli"]:  # the baseline's second style never gets near the first
        if e["block"] == "a" and e["method"] == "baseline" and e["row"] == 2:
            e["objective"]["style"] = {j: 10.0 ** -(5 + e["column"]) for j in LAYERS}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    result = measure_claims(tmp_path)
    a = result["claims"][0]
    assert a["baseline"] is None and a["details"]["baseline"]["common_strength"] is False
    assert a["details"]["one_lambda_fits_every_style"] is True and "> sweep" in format_claims(result)


def test_distance_to_the_papers_ratios_on_a_constructed_case():
    layers = ["l1", "l2", "l3", "l4", "l5"]
    # Ours: the paper's ratios, off by 10x on l2 and 1/100 on l4, scaled by an arbitrary first partial.
    factors = [1, 10, 1, 0.01, 1]
    report = {"style_layers": layers,
              "baseline": {"style": {j: 7.0 * r * f for j, r, f in zip(layers, PAPER_RATIOS, factors)}}}
    cmp = compare_with_paper(report)
    assert cmp["log10_distance"] == pytest.approx(1 + 2)
    assert cmp["ours"]["l2"] == pytest.approx(2459.0) and cmp["paper"]["l4"] == 381620.0
    assert cmp["dominant"] == "l4"
    with pytest.raises(Exception, match="needs five style layers"):
        compare_with_paper({"style_layers": layers[:3], "baseline": report["baseline"]})


def test_inspect_compare_paper_json_and_table(content_path, style_path, capsys):
    from stylestudy.cli import main

    assert main(["inspect", str(content_path), str(style_path), "--size", "32", "--device", "cpu", "--json", "-",
                 "--compare-paper"]) == 0
    report = json.loads(capsys.readouterr().out)
    cmp = report["compare_paper"]
    assert set(cmp) == {"ours", "paper", "log10_distance", "dominant"}
    assert list(cmp["ours"]) == list(cmp["paper"]) == report["style_layers"]
    first = report["style_layers"][0]
    for j in report["style_layers"]:  # ours = the report's own baseline partials over the first layer's
        assert cmp["ours"][j] == pytest.approx(report["baseline"]["style"][j] / report["baseline"]["style"][first])
    assert cmp["log10_distance"] == pytest.approx(sum(abs(math.log10(cmp["ours"][j] / cmp["paper"][j]))
                                                      for j in report["style_layers"][1:]))
    assert main(["inspect", str(content_path), str(style_path), "--size", "32", "--device", "cpu",
                 "--compare-paper"]) == 0
    assert "distance sum |log10(ours/paper)|" in capsys.readouterr().out
    assert main(["inspect", str(content_path), str(style_path), "--size", "32", "--device", "cpu", "--compare-paper",
                 "--style-layers", "relu1_1,relu2_1"]) == 2
    assert "needs five style layers" in capsys.readouterr().err
