"""Every image Pillow reads becomes RGB; bad files give one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylestudy.engine.neural.tensors import to_pil, to_tensor
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.images import ImageError, load_rgb, resize_longer_side, resize_to_area


def _check_rgb(img, size):
    assert img.mode == "RGB" and img.size == size


COLOUR = (200, 30, 60)
GREY = round(0.299 * 200 + 0.587 * 30 + 0.114 * 60)  # ITU-R 601 luma, Pillow's RGB -> L: 84


def _palette_image() -> Image.Image:
    """A palette image whose index 0 is COLOUR and index 1 is blue (one blue pixel at (8, 6))."""
    img = Image.new("P", (9, 7), 0)
    img.putpalette(list(COLOUR) + [0, 0, 255] + [0, 0, 0] * 254)
    img.putpixel((8, 6), 1)
    return img


@pytest.mark.parametrize("mode,expected,tolerance", [
    ("RGB", COLOUR, 0), ("L", (GREY,) * 3, 0), ("P", COLOUR, 0), ("CMYK", COLOUR, 2)])
def test_modes_become_rgb(tmp_path, mode, expected, tolerance):
    """Each mode decodes to the colour it holds (CMYK through JPEG: within 2 levels)."""
    src = _palette_image() if mode == "P" else Image.new("RGB", (9, 7), COLOUR).convert(mode)
    ext = "jpg" if mode == "CMYK" else "png"
    src.save(tmp_path / f"x.{ext}", **({"quality": 100} if ext == "jpg" else {}))
    img = load_rgb(tmp_path / f"x.{ext}")
    _check_rgb(img, (9, 7))
    arr = np.asarray(img).astype(int)
    assert np.abs(arr[3, 4] - expected).max() <= tolerance, arr[3, 4]
    if mode == "P":  # the palette is looked up per pixel, not taken as grey indices
        assert arr[6, 8].tolist() == [0, 0, 255] and arr[0, 0].tolist() == list(COLOUR)


def test_alpha_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255
    arr[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(load_rgb(tmp_path / "a.png"))
    assert out[0, 0].tolist() == [255, 0, 0] and out[3, 3].tolist() == [255, 255, 255]


def test_16_bit_greyscale_is_rescaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = np.asarray(load_rgb(tmp_path / "g16.png"))[0, :, 0]
    assert out.tolist() == [0, 128, 255]


def _mean(arr, x0, y0, x1, y1):
    return arr[y0:y1, x0:x1].reshape(-1, 3).mean(0)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotation_applied(tmp_path, orientation):
    """As stored: 40x16, black, a red 8x8 block at the top-left corner and a green one at the
    top-right.  Orientation 6 (turn 90 degrees clockwise to display) puts red top-right and green
    bottom-right of the 16x40 result; 8 (counter-clockwise) red bottom-left, green top-left; 3 (180)
    red bottom-right, green bottom-left.  Two markers also tell a mirror from a turn."""
    arr = np.zeros((16, 40, 3), np.uint8)
    arr[:8, :8] = (255, 0, 0)
    arr[:8, -8:] = (0, 255, 0)
    img = Image.fromarray(arr, "RGB")
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_rgb(tmp_path / "r.jpg")
    w, h = (40, 16) if orientation == 3 else (16, 40)
    _check_rgb(out, (w, h))
    shown = np.asarray(out).astype(float)
    corners = {"top-left": _mean(shown, 1, 1, 7, 7), "top-right": _mean(shown, w - 7, 1, w - 1, 7),
               "bottom-left": _mean(shown, 1, h - 7, 7, h - 1), "bottom-right": _mean(shown, w - 7, h - 7, w - 1, h - 1)}
    red, green = {3: ("bottom-right", "bottom-left"), 6: ("top-right", "bottom-right"),
                  8: ("bottom-left", "top-left")}[orientation]
    for name, mean in corners.items():
        want = (255, 0, 0) if name == red else (0, 255, 0) if name == green else (0, 0, 0)
        assert np.abs(mean - want).max() < 20, (orientation, name, mean.round())


def test_bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    for name, match in (("missing.png", "not found"), ("empty.png", "empty"), ("junk.png", "cannot read"),
                        ("trunc.png", "cannot read")):
        with pytest.raises(ImageError, match=match) as err:
            load_rgb(tmp_path / name)
        assert "\n" not in str(err.value)


def test_absurdly_large_rejected_before_decoding(tmp_path):
    Image.new("1", (8000, 6000)).save(tmp_path / "huge.png")  # 48 MP, tiny file
    with pytest.raises(ImageError, match="too large"):
        load_rgb(tmp_path / "huge.png")


def test_resizing_rules():
    img = Image.new("RGB", (300, 200))
    assert resize_longer_side(img, 300) is img  # already that size: no resampling
    assert resize_longer_side(img, 96).size == (96, 64)
    style = resize_to_area(Image.new("RGB", (100, 400)), 96 * 64)
    assert abs(style.width * style.height - 96 * 64) < 100 and abs(style.height / style.width - 4) < 0.05


def test_tensor_round_trip_clamps():
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5, "RGB")
    t = to_tensor(img)
    assert t.shape == (1, 3, 4, 4) and float(t.max()) <= 1.0
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(img))
    assert np.asarray(to_pil(t * 4 - 1)).max() == 255 and np.asarray(to_pil(t - 2)).max() == 0


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
