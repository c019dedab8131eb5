"""Study files: parsing, errors that name the key and line, and the paper's grid."""

from __future__ import annotations

import pytest

from stylestudy.engine.study.errors import StudyError
from stylestudy.engine.study.jobs import expand_jobs, filter_jobs
from stylestudy.engine.study.studyfile import load_study

MINIMAL = """
[study]
name = "t"

[images]
object = "photo"

[images.files.photo]
path = "photo.png"
[images.files.paint]
path = "paint.png"

[styles]
rows = ["paint"]

[methods.baseline]
lambda_os = {{ paint = 1e-4 }}

[blocks.a]
sweep = "lambda_os"
baseline = [1e-2, 1e-4]
normalized = [1.0, 1e-2]
{extra}
"""


def _write(tmp_path, extra="", text=None):
    (tmp_path / "study.toml").write_text(text if text is not None else MINIMAL.format(extra=extra))
    return tmp_path


def test_minimal_study_defaults_are_the_papers(tmp_path):
    study = load_study(_write(tmp_path))
    assert study.engine.iterations == 600 and study.engine.style_weight == 0.2
    assert study.engine.style_layers == ["relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"]
    assert study.protocol.image_seconds == 5.0 and study.protocol.rating_seconds == 5.0
    assert study.protocol.scale[0] == "Style not transferred" and len(study.protocol.scale) == 5
    assert study.normalized_lambda_os == 1e-3


@pytest.mark.parametrize("extra,expect", [
    ("iteratons = 3", "study.toml:23: blocks.a.iteratons: unknown key"),
    ('threshold = "high"', "study.toml:23: blocks.a.threshold: must be a number"),
    ('[engine]\nsize = -5', "study.toml:24: engine.size: must be > 0"),
    ('[engine]\nstyle_layers = ["relu9_1"]', "study.toml:24: engine.style_layers: unknown VGG-19 layer 'relu9_1'"),
    ('[protocol]\nrating_seconds = 0', "study.toml:24: protocol.rating_seconds: must be > 0"),
    ('[blocks.b]\nsweep = "layer_boost"\nlayers = ["relu2_1"]', "blocks.b.layers: 'relu2_1' is not one of"),
    ('[blocks.c]\nsweep = "size"', "blocks.c.sizes: a size sweep needs"),
    ('[blocks.d]\nsweep = "colour"', "blocks.d.sweep: must be one of lambda_os, layer_boost, size"),
    ('[engine]\nsize = 8', "study.toml:24: engine.size: must be ≥ 16 (VGG-19 pools 4 times before relu5_x), got 8"),
    ('[blocks.c]\nsweep = "size"\nsizes = [8, 512]', "blocks.c.sizes: every size must be ≥ 16"),
    ('[protocol]\nattention_checks = -1', "protocol.attention_checks: must be ≥ 0, got -1"),
    ('[protocol]\ntitle = "Baseline or normalized?"', "protocol.title: is shown to participants and names the "
                                                     "method 'baseline'; use neutral words"),
    ('[engine]\ncontent_weight = nan', "engine.content_weight: must be a number"),
])
def test_errors_name_key_and_line(tmp_path, extra, expect):
    with pytest.raises(StudyError) as err:
        load_study(_write(tmp_path, extra))
    assert expect in str(err.value) and "\n" not in str(err.value)


def test_unknown_row_and_missing_file(tmp_path):
    text = MINIMAL.format(extra="").replace('rows = ["paint"]', 'rows = ["paint", "nope"]')
    with pytest.raises(StudyError, match=r"study.toml:\d+: styles.rows: 'nope' names no entry"):
        load_study(_write(tmp_path, text=text))
    with pytest.raises(StudyError, match="study file not found"):
        load_study(tmp_path / "missing")


def test_table1_expands_to_the_papers_grid():
    study = load_study("studies/table1")
    jobs = expand_jobs(study)
    rated = [j for j in jobs if not j.briefing]
    assert len(rated) == 52 and len({j.pair_id for j in rated}) == 26  # 26 pairs = 52 rated images
    assert len([j for j in jobs if j.briefing]) == 10  # Fig. 2 (baseline) a+b with the briefing style
    assert {j.config["iterations"] for j in jobs} == {600}
    a_base = sorted(j.config["lambda_os"] for j in rated if j.block == "a" and j.method == "baseline" and j.row == "starry_night")
    a_norm = sorted(j.config["lambda_os"] for j in rated if j.block == "a" and j.method == "normalized" and j.row == "starry_night")
    assert a_base == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2] and a_norm == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    for j in (j for j in jobs if j.block == "a"):
        assert j.config["style_weights"] == [0.2] * 5 and j.config["size"] == 512
    b = [j for j in rated if j.block == "b"]
    assert len(b) == 20
    for j in b:
        weights = j.config["style_weights"]
        assert weights[j.column - 1] == pytest.approx(20.0) and sorted(weights)[:4] == [0.2] * 4
        expected = {"starry_night": 1e-5, "shipwreck": 1e-4}[j.row] if j.method == "baseline" else 1e-3
        assert j.config["lambda_os"] == expected
    c = [j for j in rated if j.block == "c"]
    assert sorted({j.config["size"] for j in c}) == [256, 512, 1024] and len(c) == 12
    assert all(j.config["style_weights"] == [0.2] * 5 for j in c)
    # Pairs: the two methods of one cell, nothing else.
    for pair in {j.pair_id for j in rated}:
        members = [j for j in rated if j.pair_id == pair]
        assert sorted(m.method for m in members) == ["baseline", "normalized"]
        assert len({(m.block, m.row, m.column) for m in members}) == 1
    assert len(filter_jobs(jobs, "block=b,method=normalized")) == 10


def test_bad_jobs_filter():
    from stylestudy.engine.study.errors import StyleStudyError

    with pytest.raises(StyleStudyError, match="bad --jobs-filter"):
        filter_jobs([], "colour=red")
