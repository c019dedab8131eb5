"""Image loading, resizing and atomic saving (Pillow only: the torch-free wing reads images too).

Any file Pillow reads becomes 8-bit RGB: EXIF orientation is applied, transparency is composited
onto white (what a participant would see in a browser), 16-bit and float images are rescaled
rather than clipped, CMYK and palette images are converted.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes

MAX_PIXELS = 40_000_000


class ImageError(StyleStudyError):
    """An input image cannot be used; the message is one line that says what to do."""


def load_rgb(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}; check the path")
    if path.stat().st_size == 0:
        raise ImageError(f"image file is empty: {path}; re-download or re-export it")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(
                    f"image too large: {path} is {img.width}x{img.height} (> {MAX_PIXELS // 1_000_000} MP); "
                    "downscale it first"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"cannot read image {path} ({reason}); use a valid PNG/JPEG/TIFF file") from None


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey images scaled (not clipped) to 8-bit ``L``; others as they are."""
    if img.mode not in WIDE_MODES:
        return img
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        top = 65535.0
    elif img.mode == "I":  # 32-bit int: 16-bit data unless it fits in 8 bits
        top = 65535.0 if arr.max() > 255 else 255.0
    else:  # float: either [0, 1] or [0, 255]
        top = 1.0 if arr.max() <= 1.0 else 255.0
    arr = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(arr, "L")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in WIDE_MODES:
        return to_8bit(img).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def resize_longer_side(img: Image.Image, size: int | None) -> Image.Image:
    """Scale so the longer side is ``size`` (Lanczos); untouched when it already is, or size is None."""
    if size is None or max(img.size) == size:
        return img
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS)


def resize_to_area(img: Image.Image, area: int) -> Image.Image:
    """Scale keeping the aspect ratio so that width*height is about ``area`` (Lanczos).

    Used for the style image: Grams are not divided by the number of positions, so the style
    image must cover about as many pixels as the object image for G_s and G_x to be comparable.
    """
    scale = math.sqrt(area / (img.width * img.height))
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if new == img.size:
        return img
    return img.resize(new, Image.Resampling.LANCZOS)


def save_png(img: Image.Image, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue(), mode=0o644)  # a stimulus: readable by a server under another account
