"""``stylestudy import`` shows participants what the image's maker saw (issue 20, finding 6):
16-bit scaled, EXIF orientation and ICC profiles applied (and recorded), nothing read from
outside DIR, names matched whole, a pixel limit.  Every file is made here, by the test."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stylestudy.engine.study.manifest import StudyManifest
from tests.conftest import _pattern

SRGB_D50 = {"red": (0.4361, 0.2225, 0.0139), "green": (0.3851, 0.7169, 0.0971), "blue": (0.1431, 0.0606, 0.7141)}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylestudy", *args], capture_output=True, text=True, timeout=120)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def rgb_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with the given colorants (D50 XYZ)."""
    text = name.encode() + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz(*red)), (b"gXYZ", _xyz(*green)),
            (b"bXYZ", _xyz(*blue)), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        data += b"\0" * (-(offset + len(data)) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (struct.pack(">I", 128 + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + body


@pytest.fixture()
def source(tmp_path):
    """Two methods x two items of plain 8-bit PNGs, to which each test adds its case."""
    root = tmp_path / "src"
    for m, method in enumerate(("one", "two")):
        (root / method).mkdir(parents=True)
        for i, item in enumerate(("a", "b")):
            _pattern(24, 20, 10 * m + i).save(root / method / f"{item}.png")
    return root


def _served(run, condition_id: str) -> tuple[Image.Image, list[str]]:
    m = StudyManifest.load(run, check_files=True)
    c = m.by_id[condition_id]
    with Image.open(run / c.path) as im:
        im.load()
        return im.copy(), c.get("conversions")


def test_16_bit_grey_is_scaled_not_clipped(source, tmp_path):
    for method, value in (("one", 20000), ("two", 40000)):
        Image.fromarray(np.full((20, 24), value, dtype=np.uint16)).save(source / method / "a.png")
        with Image.open(source / method / "a.png") as check:
            assert check.mode == "I;16"  # a real 16-bit PNG
    result = _cli("import", str(source), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    for method, value in (("one", 20000), ("two", 40000)):
        image, conversions = _served(tmp_path / "run", f"a:{method}")
        assert set(image.convert("RGB").tobytes()) == {round(value / 65535 * 255)}  # 78 and 156, not white
        assert conversions == ["I;16 scaled to 8 bits"]


def test_exif_orientation_is_applied(source, tmp_path):
    landscape = Image.new("RGB", (40, 20), (0, 0, 255))
    landscape.paste((255, 0, 0), (0, 0, 10, 10))  # a red corner at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": shown as a 20x40 portrait
    landscape.save(source / "one" / "b.png", exif=exif)
    result = _cli("import", str(source), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    image, conversions = _served(tmp_path / "run", "b:one")
    assert image.size == (20, 40) and conversions == ["EXIF orientation 6 applied"]
    assert image.getpixel((15, 5))[:3] == (255, 0, 0) and image.getpixel((5, 5))[:3] == (0, 0, 255)  # top-right
    assert _served(tmp_path / "run", "b:two")[1] == []


def test_an_icc_profile_is_converted_to_srgb_and_recorded(source, tmp_path):
    swapped = rgb_profile("red-green swapped", SRGB_D50["green"], SRGB_D50["red"], SRGB_D50["blue"])
    Image.new("RGB", (24, 20), (200, 30, 30)).save(source / "one" / "a.png", icc_profile=swapped)
    Image.new("RGB", (24, 20), (200, 30, 30)).save(source / "two" / "a.jpg", icc_profile=swapped, quality=100)
    (source / "two" / "a.png").unlink()
    result = _cli("import", str(source), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    for condition in ("a:one", "a:two"):
        image, conversions = _served(tmp_path / "run", condition)
        r, g, b = image.convert("RGB").getpixel((12, 10))
        assert g > 180 and r < 60 and b < 60, (r, g, b)  # the profile's "red" is sRGB green
        assert conversions == ["ICC profile 'red-green swapped' converted to sRGB"]
        assert b"iCCP" not in (tmp_path / "run" / StudyManifest.load(tmp_path / "run").by_id[condition].path).read_bytes()


def _refused(result, tmp_path, *expected: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for text in expected:
        assert text in message, (text, message)
    assert not (tmp_path / "run").exists()
    return message


def test_links_and_csv_paths_leaving_dir_are_refused(source, tmp_path):
    outside = tmp_path / "secret.png"
    _pattern(24, 20, 99).save(outside)
    (source / "one" / "b.png").unlink()
    (source / "one" / "b.png").symlink_to(outside)
    _refused(_cli("import", str(source), "--out", str(tmp_path / "run")), tmp_path, "one/b.png is a link leaving")
    (source / "one" / "b.png").unlink()
    shutil.copy(outside, source / "one" / "b.png")
    (source / "list.csv").write_text("method,item,path\none,a,one/a.png\ntwo,a,../secret.png\n"
                                     f"one,b,{outside}\ntwo,b,two/b.png\n")
    _refused(_cli("import", str(source / "list.csv"), "--out", str(tmp_path / "run")), tmp_path,
             "list.csv:3: ../secret.png is outside", f"list.csv:4: {outside} is outside")
    (source / "list.csv").write_text("method,item,path\none,a,one/a.png\ntwo,a,two/a.png\n"
                                     f"one,b,{source / 'one' / 'b.png'}\ntwo,b,two/b.png\n")
    assert _cli("import", str(source / "list.csv"), "--out", str(tmp_path / "run")).returncode == 0


def test_names_are_matched_whole(source, tmp_path):
    for method in ("one", "two"):
        (source / method / "b.png").rename(source / method / "b\n.png")
    _refused(_cli("import", str(source), "--out", str(tmp_path / "run")), tmp_path, "item name 'b\\n'")


def test_a_pixel_limit_with_a_one_line_error(source, tmp_path):
    _refused(_cli("import", str(source), "--out", str(tmp_path / "run"), "--max-pixels", "400"), tmp_path,
             "24x20 = 0.0 Mpx, more than --max-pixels 400")
    Image.new("L", (4100, 4100)).save(source / "two" / "b.png")  # 16.8 Mpx: over the default
    message = _refused(_cli("import", str(source), "--out", str(tmp_path / "run")), tmp_path,
                       "two/b.png: 4100x4100 = 16.8 Mpx, more than --max-pixels 16000000")
    assert "one/a.png" not in message
    assert _cli("import", str(source), "--out", str(tmp_path / "run"), "--max-pixels", "17000000").returncode == 0
    assert _cli("import", str(source), "--out", str(tmp_path / "r2"), "--max-pixels", "0").returncode == 2


def test_stimuli_and_manifest_are_world_readable(source, tmp_path):
    assert _cli("import", str(source), "--out", str(tmp_path / "run")).returncode == 0
    m = StudyManifest.load(tmp_path / "run")
    for path in [tmp_path / "run" / "manifest.json"] + [tmp_path / "run" / c.path for c in m.conditions]:
        assert path.stat().st_mode & 0o777 == 0o644, path
