"""``stylestudy import``: images made anywhere become a run directory; bad input is listed at once."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image, PngImagePlugin

from stylestudy.cli import main
from stylestudy.engine.study.manifest import StudyManifest
from tests.conftest import IMPORT_ITEMS, IMPORT_METHODS, _pattern


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylestudy", *args], capture_output=True, text=True, timeout=120)


def test_folder_import_makes_a_run_with_provenance_and_blind_files(import_source, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    # metadata that names the method: a PNG text chunk and a JPEG's EXIF
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "adain-v2 by someone")
    _pattern(24, 20, 7).save(source / "adain" / "bridge.png", pnginfo=info)
    exif = Image.Exif()
    exif[0x0131] = "ours-method-0.3"  # Software
    (source / "ours" / "lake.png").unlink()
    _pattern(24, 20, 8).save(source / "ours" / "lake.jpg", quality=95, exif=exif)

    result = _cli("import", str(source), "--out", str(tmp_path / "run"), "--protocol", "acr")
    assert result.returncode == 0, result.stderr
    assert "3 methods (adain, ours, photo) x 4 items = 12 conditions" in result.stdout

    m = StudyManifest.load(tmp_path / "run", check_files=True)
    assert m.imported and m.protocol.kind == "acr" and m.methods == list(IMPORT_METHODS)
    assert sorted(c.id for c in m.rated) == sorted(f"{i}:{meth}" for i in IMPORT_ITEMS for meth in IMPORT_METHODS)
    assert set(m.cells) == set(IMPORT_ITEMS) and all(len(v) == 3 for v in m.cells.values())
    for c in m.rated:
        src = source / c.get("source")
        assert c.get("source") == f"{c.method}/{c.row_label}{src.suffix}"
        assert c.get("source_sha256") == hashlib.sha256(src.read_bytes()).hexdigest()
        served = (tmp_path / "run" / c.path).read_bytes()
        assert hashlib.sha256(served).hexdigest() == c.sha256 and c.path.endswith(".png")
        assert c.method.encode() not in served and b"Software" not in served  # no metadata reaches the browser
        with Image.open(tmp_path / "run" / c.path) as shown, Image.open(src) as original:
            assert shown.size == original.size == (24, 20)
            if src.suffix == ".png":  # lossless: the same pixels
                assert shown.convert("RGB").tobytes() == original.convert("RGB").tobytes()


def test_csv_import_with_content_and_style(import_source, tmp_path):
    source = tmp_path / "src"  # the images in the CSV's folder (paths leaving it are refused)
    shutil.copytree(import_source, source)
    rows = ["method,item,path,content,style"]
    for method in ("adain", "ours"):
        for item in IMPORT_ITEMS[:2]:
            rows.append(f"{method},{item},{source / method / item}.png,photo-{item},starry")
    (source / "list.csv").write_text("\n".join(rows) + "\n")
    assert main(["import", str(source / "list.csv"), "--out", str(tmp_path / "run"), "--protocol", "pairwise"]) == 0
    m = StudyManifest.load(tmp_path / "run")
    assert len(m.rated) == 4 and m.protocol.kind == "pairwise"
    c = m.by_id["bridge:ours"]
    assert (c.get("content"), c.get("style")) == ("photo-bridge", "starry")
    assert m.study["import"]["layout"] == "csv"


def test_every_problem_is_listed_in_one_line_and_nothing_is_written(import_source, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    (source / "ours" / "tower.png").unlink()  # a missing item
    (source / "photo" / "lake.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # unreadable
    _pattern(24, 20, 9).save(source / "adain" / "bridge.jpg")  # a second file for adain/bridge
    (source / "bad name").mkdir()
    _pattern(24, 20, 9).save(source / "bad name" / "bridge.png")
    result = _cli("import", str(source), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for expected in ("method 'ours' lacks 1 of 4 items: tower", "photo/lake.png: not a readable image",
                     "two images for method 'adain', item 'bridge'", "method name 'bad name'",
                     "method 'bad name' lacks 3 of 4 items"):
        assert expected in message, (expected, message)
    assert not (tmp_path / "run").exists()


def test_mixed_sizes_and_identical_pictures_warn_and_strict_refuses(import_source, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(import_source, source)
    _pattern(48, 40, 3).save(source / "ours" / "harbour.png")  # another size than the other methods' harbour
    shutil.copy(source / "adain" / "lake.png", source / "photo" / "lake.png")  # the same picture twice
    result = _cli("import", str(source), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "item 'harbour': sizes differ across methods (adain 24x20, ours 48x40, photo 24x20)" in result.stderr
    assert "the same picture is adain/lake.png and photo/lake.png" in result.stderr
    m = StudyManifest.load(tmp_path / "run")
    assert m.by_id["lake:adain"].shared_with == ("lake:photo",)  # one image, two conditions
    strict = _cli("import", str(source), "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 2 and "(strict) item 'harbour'" in strict.stderr
    assert not (tmp_path / "strict").exists()


def test_reimport_is_a_no_op_and_another_study_is_refused(import_source, tmp_path):
    run = tmp_path / "run"
    assert main(["import", str(import_source), "--out", str(run), "--protocol", "acr"]) == 0
    before = (run / "manifest.json").read_bytes()
    assert main(["import", str(import_source), "--out", str(run), "--protocol", "acr"]) == 0
    assert (run / "manifest.json").read_bytes() == before
    result = _cli("import", str(import_source), "--out", str(run), "--protocol", "pairwise")
    assert result.returncode == 2 and "already holds a different study" in result.stderr
    assert (run / "manifest.json").read_bytes() == before


def test_study_file_sets_the_protocol_and_may_not_name_a_method(import_source, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[study]\nname = "mine"\ntitle = "AdaIN vs ours"\n[protocol]\nkind = "pairwise"\n'
                    'layout = "sequential"\nno_preference = true\npairs_per_participant = 6\n')
    assert main(["import", str(import_source), "--out", str(tmp_path / "run"), "--study-file", str(good)]) == 0
    m = StudyManifest.load(tmp_path / "run")
    assert (m.protocol.kind, m.protocol.layout, m.protocol.no_preference, m.protocol.pairs_per_participant) == \
        ("pairwise", "sequential", True, 6)
    assert m.title == "AdaIN vs ours" and json.loads((tmp_path / "run" / "manifest.json").read_text())["study"]["name"] == "mine"
    bad = tmp_path / "bad.toml"
    bad.write_text('[protocol]\nkind = "acr"\nquestion = "Is ours better?"\n')
    result = _cli("import", str(import_source), "--out", str(tmp_path / "bad"), "--study-file", str(bad))
    assert result.returncode == 2 and "protocol.question: is shown to participants and names the method 'ours'" \
        in result.stderr
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[protocol]\nkind = "acr"\ngold_method = "photo"\ngold_ratings = [0, 1]\n')
    result = _cli("import", str(import_source), "--out", str(tmp_path / "wrong"), "--study-file", str(wrong))
    assert result.returncode == 2 and "gold_ratings: must be ratings 1..5, got 0" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--reference", "wct"], "reference 'wct' is not one of the imported methods"),
    (["--protocol", "ranking"], "invalid choice: 'ranking'"),
])
def test_bad_options(import_source, tmp_path, args, message):
    result = _cli("import", str(import_source), "--out", str(tmp_path / "run"), *args)
    assert result.returncode == 2 and message in result.stderr


def test_briefing_items_are_shown_as_examples_and_not_rated(import_source, tmp_path):
    from stylestudy.evalserver.app import create_app

    run = tmp_path / "run"
    assert main(["import", str(import_source), "--out", str(run), "--protocol", "acr", "--briefing", "lake"]) == 0
    m = StudyManifest.load(run)
    assert [c.id for c in m.briefing] == ["lake:adain", "lake:ours", "lake:photo"]
    assert "lake" not in m.cells and len(m.rated) == 9
    c = create_app(run, admin_token="t" * 16).test_client()
    c.post("/start", data={"consent": "yes"})
    page = c.get("/briefing").get_data(as_text=True)
    assert page.count('alt="Example') == 3 and "lake" not in page and "adain" not in page
    for url in re.findall(r'src="(/s/[0-9a-f]+)"', page):
        assert c.get(url).status_code == 200
    result = _cli("import", str(import_source), "--out", str(tmp_path / "bad"), "--briefing", "lake,moon")
    assert result.returncode == 2 and "briefing item(s) moon are not among the items" in result.stderr
    every = ",".join(IMPORT_ITEMS)
    result = _cli("import", str(import_source), "--out", str(tmp_path / "bad"), "--briefing", every)
    assert result.returncode == 2 and "leave at least one item to rate" in result.stderr
