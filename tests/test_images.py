"""Every image Pillow reads becomes RGB; bad files give one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylestudy.engine.neural.tensors import to_pil, to_tensor
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.images import (
    ImageError,
    load_rgb,
    resize_longer_side,
    resize_to_area,
)


def _check_rgb(img, size):
    assert img.mode == "RGB" and img.size == size


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "CMYK"])
def test_modes_become_rgb(tmp_path, mode):
    src = Image.new("RGB", (9, 7), (200, 30, 60)).convert(mode)
    ext = "jpg" if mode == "CMYK" else "png"
    src.save(tmp_path / f"x.{ext}")
    _check_rgb(load_rgb(tmp_path / f"x.{ext}"), (9, 7))


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


def test_exif_rotation_applied(tmp_path):
    img = Image.new("RGB", (10, 4), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    _check_rgb(load_rgb(tmp_path / "r.jpg"), (4, 10))


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
