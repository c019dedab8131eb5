"""The one manifest schema: conditions keyed by their own ids, images shared, bad fields named."""

from __future__ import annotations

import json

import pytest

from stylestudy.engine.study.manifest import ManifestError, StudyManifest, condition_id, write_manifest


def _entry(block="a", row=1, column=1, method="baseline", image="img1", **extra) -> dict:
    return {"id": condition_id(block, row, column, method), "image_id": image, "path": f"stimuli/{image}.png",
            "sha256": "0" * 64, "block": block, "row": row, "row_label": "paint", "column": column,
            "column_label": "c", "method": method, "pair_id": f"{block}{row}{column}", "briefing": False, **extra}


def _write(tmp_path, entries, **document) -> StudyManifest:
    doc = {"schema": 2, "study": {"name": "t", "blocks": {"a": {"threshold": 4.0}}}, "stimuli": entries, **document}
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    return StudyManifest.load(tmp_path)


def test_conditions_pairs_and_shared_images(tmp_path):
    entries = [_entry(method="baseline", image="x"), _entry(method="normalized", image="y"),
               _entry(block="c", column=2, method="baseline", image="x", seconds=1.5),
               _entry(block="c", column=2, method="normalized", image="z"),
               _entry(row=2, method="baseline", image="w", briefing=True)]
    m = _write(tmp_path, entries)
    assert [c.id for c in m.conditions] == ["a-r1-c1-baseline", "a-r1-c1-normalized", "c-r1-c2-baseline",
                                            "c-r1-c2-normalized", "a-r2-c1-baseline"]
    assert m.by_id["a-r1-c1-baseline"].shared_with == ("c-r1-c2-baseline",)
    assert m.by_id["c-r1-c2-baseline"].shared_with == ("a-r1-c1-baseline",) and m.by_id["c-r1-c2-baseline"].get("seconds") == 1.5
    assert sorted(m.pairs) == ["a11", "c12"] and [c.method for c in m.pairs["a11"]] == ["baseline", "normalized"]
    assert [c.id for c in m.briefing] == ["a-r2-c1-baseline"] and len(m.rated) == 4
    assert {k: len(v) for k, v in m.images.items()} == {"x": 2, "y": 1, "z": 1, "w": 1}
    assert m.thresholds == {"a": 4.0} and m.protocol.title == "Image rating study"
    # Written back, the document carries the sharing both ways.
    path = write_manifest(tmp_path, m.study, [c.record for c in m.conditions], None, True)
    doc = json.loads(path.read_text())
    assert doc["images"]["x"]["conditions"] == ["a-r1-c1-baseline", "c-r1-c2-baseline"]
    assert doc["stimuli"][2]["shared_with"] == ["a-r1-c1-baseline"]


@pytest.mark.parametrize("change,message", [
    (lambda e: e.pop("method"), r"stimuli\[1\]\.method is missing"),
    (lambda e: e.update(row="1"), r"stimuli\[1\]\.row must be an integer"),
    (lambda e: e.update(briefing="no"), r"stimuli\[1\]\.briefing must be true or false"),
    (lambda e: e.update(id="a-r1-c1-baseline"), r"stimuli\[1\]\.id 'a-r1-c1-baseline' repeats stimuli\[0\]"),
    (lambda e: e.update(path="../../etc/passwd"), r"stimuli\[1\]\.path must be relative"),
    (lambda e: e.update(image_id="img1", sha256="1" * 64), r"stimuli\[1\]\.image_id 'img1' has two different files"),
])
def test_a_bad_field_is_named(tmp_path, change, message):
    second = _entry(method="normalized", image="img2")
    change(second)
    with pytest.raises(ManifestError, match=message):
        _write(tmp_path, [_entry(), second])


def test_missing_unreadable_and_future_manifests(tmp_path):
    with pytest.raises(ManifestError, match="no manifest at .*run: stylestudy generate"):
        StudyManifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        StudyManifest.load(tmp_path)
    with pytest.raises(ManifestError, match="schema is 3"):
        _write(tmp_path, [], schema=3)
    with pytest.raises(ManifestError, match=r"stimuli\[0\]\.path stimuli/img1.png does not exist"):
        StudyManifest(tmp_path, {"schema": 2, "study": {}, "stimuli": [_entry()]}, check_files=True)
    before = (tmp_path / "manifest.json").read_text()
    with pytest.raises(ManifestError, match="repeats stimuli"):  # never written
        write_manifest(tmp_path, {}, [_entry(), _entry()], None, True)
    assert (tmp_path / "manifest.json").read_text() == before


def test_a_version_0_1_manifest_is_upgraded(tmp_path):
    """0.1 keyed entries by image hash; two cells with one image had the same id."""
    old = [dict(_entry(block=b, column=c, image="same"), id="same") for b, c in (("a", 4), ("c", 2))]
    for e in old:
        e.pop("image_id")
    (tmp_path / "manifest.json").write_text(json.dumps({"study": {}, "stimuli": old}))
    m = StudyManifest.load(tmp_path)
    assert [c.id for c in m.conditions] == ["a-r1-c4-baseline", "c-r1-c2-baseline"]
    assert {c.image_id for c in m.conditions} == {"same"} and m.conditions[0].shared_with == ("c-r1-c2-baseline",)
