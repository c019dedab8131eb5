"""``stylestudy metrics``: hand values of each metric, and the command on real tiny runs."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import torch

from stylestudy.cli import main
from stylestudy.engine.metrics import colour, features
from stylestudy.engine.neural.device import get_extractor
from stylestudy.engine.neural.tensors import to_tensor
from tests.conftest import IMPORT_ITEMS, _pattern, import_or_missing, import_run


@pytest.fixture(autouse=True)
def needs_piq():
    """SSIM and MS-SSIM come from piq, a dependency (pip install -e . installs it)."""
    import_or_missing("piq", "pip install piq")



def test_ssim_and_ms_ssim_of_an_image_with_itself_are_one_and_fall_with_noise():
    from stylestudy.engine.metrics import structural

    x = to_tensor(_pattern(64, 64, 5))
    noisy = (x + 0.2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert structural.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert structural.ms_ssim(x, x, structural.ms_ssim_scales(64)).item() == pytest.approx(1.0, abs=1e-6)
    assert structural.ssim(noisy, x).item() < 0.9
    assert structural.ms_ssim(noisy, x, 3).item() < structural.ms_ssim(x, x, 3).item()


def test_ms_ssim_scales_follow_the_window_and_the_halvings():
    from stylestudy.engine.metrics import structural

    # 10 * 2**(s-1) + 1 px for s scales: 21, 41, 81, 161
    assert [structural.ms_ssim_scales(n) for n in (20, 21, 40, 41, 160, 161, 512)] == [1, 2, 2, 3, 4, 5, 5]
    assert np.isnan(structural.ms_ssim(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20), 1).item())


def test_gram_and_content_distances_match_a_float64_hand_computation():
    extractor = get_extractor("caffe", torch.device("cpu"))
    x, o, s = (to_tensor(_pattern(32, 32, seed)) for seed in (7, 8, 9))
    got = features.style_distances(extractor, features.image_features(extractor, x), [s])[0]
    content = features.content_distances(extractor, features.image_features(extractor, x), o)[0]
    with torch.no_grad():
        fx = {k: v.double()[0] for k, v in extractor(x, features.STYLE_LAYERS + ("relu4_2",)).items()}
        fs = {k: v.double()[0] for k, v in extractor(s, features.STYLE_LAYERS).items()}
        fo = extractor(o, ["relu4_2"])["relu4_2"].double()[0]
    total = {"gatys": 0.0, "normalized": 0.0}
    for j in features.STYLE_LAYERS:
        c, h, w = fx[j].shape
        gx = fx[j].reshape(c, -1) @ fx[j].reshape(c, -1).T
        gs = fs[j].reshape(c, -1) @ fs[j].reshape(c, -1).T
        gatys = float(((gx - gs) ** 2).sum() / (2 * h * w * c) ** 2)
        normalized = float(((gx - gs) ** 2).sum() / (gs**2).sum())
        assert got[f"style_gatys_{j}"] == pytest.approx(gatys, rel=1e-4)
        assert got[f"style_normalized_{j}"] == pytest.approx(normalized, rel=1e-4)
        total["gatys"] += gatys
        total["normalized"] += normalized
    assert got["style_gatys_total"] == pytest.approx(total["gatys"], rel=1e-4)
    assert got["style_normalized_total"] == pytest.approx(total["normalized"], rel=1e-4)
    assert content == pytest.approx(float(((fx["relu4_2"] - fo) ** 2).sum() / (fo**2).sum()), rel=1e-4)
    same = features.style_distances(extractor, features.image_features(extractor, s), [s])[0]
    assert same["style_normalized_total"] == pytest.approx(0, abs=1e-9)


def test_colour_distance_is_zero_for_one_palette_and_the_projected_lab_gap_for_two_flat_colours():
    from skimage.color import rgb2lab

    a = np.asarray(_pattern(20, 16, 3), np.float64) / 255
    assert colour.sliced_wasserstein(colour.lab_quantiles(a), colour.lab_quantiles(a[::-1])) == pytest.approx(0)
    red, teal = np.full((8, 8, 3), (0.8, 0.2, 0.1)), np.full((12, 6, 3), (0.1, 0.5, 0.6))
    gap = rgb2lab(red)[0, 0] - rgb2lab(teal)[0, 0]
    hand = np.abs(colour._directions() @ gap).mean()
    assert colour.sliced_wasserstein(colour.lab_quantiles(red), colour.lab_quantiles(teal)) == pytest.approx(hand)


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_metrics_command_round_trip_on_a_generated_run(run_copy, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["metrics", str(run_copy), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "MS-SSIM not computed" in printed and "LPIPS" in printed  # 24 px stimuli: one-line notes
    rows = _read(out)
    from stylestudy.engine.study.manifest import StudyManifest

    manifest = StudyManifest.load(run_copy)
    assert [r["condition_id"] for r in rows] == [c.id for c in manifest.conditions]
    assert list(rows[0])[:4] == ["image_id", "condition_id", "method", "item"]
    assert {"ssim", "content_vgg", "style_gatys_total", "style_normalized_relu1_2", "colour_swd_lab"} <= set(rows[0])
    assert all(0 < float(r["ssim"]) <= 1 and float(r["style_normalized_total"]) > 0 for r in rows)
    assert {r["item"] for r in rows} == {c.row_label for c in manifest.conditions}
    by_image = {}
    for r in rows:  # conditions showing one image get one set of values
        by_image.setdefault(r["image_id"], {k: v for k, v in r.items() if k not in ("condition_id",)})
        assert by_image[r["image_id"]] == {k: v for k, v in r.items() if k not in ("condition_id",)}
    assert re.search(r"\((\d+) of \1 images computed now", printed)  # identical pixels are measured once
    assert main(["metrics", str(run_copy), "--device", "cpu", "--quiet"]) == 0  # default path, from the cache
    assert "(0 of" in capsys.readouterr().out
    assert _read(run_copy / "metrics.csv") == rows


def test_an_out_that_is_a_folder_is_a_one_line_error(study_run, tmp_path, capsys):
    assert main(["metrics", str(study_run), "--out", str(tmp_path), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a folder; give a file name" in err


def test_imported_run_without_references_is_a_one_line_error(import_source, tmp_path, capsys):
    run = import_run(import_source, tmp_path / "run", "acr")
    assert main(["metrics", str(run), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "_content/<item>.png" in err and "Traceback" not in err
    assert not (run / "metrics.csv").exists()


def test_imported_run_with_style_references_only_gets_the_style_metrics(import_source, tmp_path, capsys):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    (source / "_style").mkdir()
    for i, item in enumerate(IMPORT_ITEMS):
        _pattern(40, 36, 300 + i).save(source / "_style" / f"{item}.png")
    run = import_run(source, tmp_path / "run", "acr")
    assert main(["metrics", str(run), "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "need each item's content image" in printed
    rows = _read(run / "metrics.csv")
    assert "ssim" not in rows[0] and "style_gatys_total" in rows[0] and len(rows) == 12
    assert {r["item"] for r in rows} == set(IMPORT_ITEMS)


def test_a_missing_reference_file_names_itself(run_copy, tmp_path, capsys):
    manifest = json.loads((run_copy / "manifest.json").read_text())
    study = tmp_path / "study"
    shutil.copytree(manifest["study"]["folder"], study)
    manifest["study"]["folder"] = str(study)
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    (study / manifest["study"]["images"]["paint"]["path"]).unlink()
    assert main(["metrics", str(run_copy), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "style image" in err and "paint.png is missing" in err
    assert not (run_copy / "metrics.csv").exists()


def test_imported_run_with_both_references_measures_the_photo_against_itself(import_source, tmp_path, capsys):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    (source / "_content").mkdir()
    (source / "_style").mkdir()
    for i, item in enumerate(IMPORT_ITEMS):  # the "photo" method's image is the content reference itself
        shutil.copy(source / "photo" / f"{item}.png", source / "_content" / f"{item}.png")
        _pattern(40, 36, 300 + i).save(source / "_style" / f"{item}.png")
    run = import_run(source, tmp_path / "run", "pairwise")
    assert main(["metrics", str(run), "--device", "cpu", "--quiet"]) == 0
    rows = _read(run / "metrics.csv")
    photo = [r for r in rows if r["method"] == "photo"]
    assert len(photo) == 4 and all(float(r["ssim"]) == pytest.approx(1.0, abs=1e-6) for r in photo)
    assert all(float(r["content_vgg"]) == pytest.approx(0.0, abs=1e-9) for r in photo)
    assert all(float(r["ssim"]) < 0.99 and float(r["content_vgg"]) > 0 for r in rows if r["method"] != "photo")
