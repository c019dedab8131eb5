"""Controlled viewing: at which scale stimuli are shown, what the window must hold, who is screened out.

``[protocol] display`` says how many screen pixels one image pixel takes: ``native`` one CSS
pixel (what a web page calls a pixel; at 100% zoom on a standard screen one device pixel),
``device`` one device pixel (``devicePixelRatio`` device pixels per CSS pixel, so a 96 px
image is 48 CSS px at DPR 2), ``fit`` one on-screen height for every stimulus (70% of the
window, the behaviour before this setting existed).  The page computes, from the largest
stimulus of the study and the display mode, the window it needs (``view_settings`` gives it
the numbers) and starts no trial until the window holds it.

What the browser reports is validated here: per shown image its rendered CSS size and the
device pixel ratio (stored with the rating), per participant the viewport, the screen, the
pointer and whether it is a phone or tablet (stored with the participant).  The gates
(``allow_mobile``, ``min_viewport`` against the screen) decide a screen-out and its reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stylestudy.engine.study.manifest import Condition, StudyManifest
from stylestudy.evalserver.flags import Flag

MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)
SCREEN_CHROME = (40, 220)  # CSS px a page needs besides the images (padding, progress, answer controls) at least
MAX_CSS = 100_000.0


@lru_cache(maxsize=4096)
def _file_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def image_size(manifest: StudyManifest, condition: Condition) -> tuple[int, int]:
    """The stimulus's pixel size (width, height): from the manifest where the importer wrote it,
    else read from the file's header."""
    w, h = condition.get("width"), condition.get("height")
    if isinstance(w, int) and isinstance(h, int):
        return w, h
    return _file_size(str(Path(manifest.image_file(condition))))


def reference_file(manifest: StudyManifest, condition: Condition, kind: str) -> str | None:
    """The file (relative to the run directory, or absolute) of ``condition``'s reference image of
    ``kind`` (``style``: the painting, ``content``: the photo), or None: an import's
    ``<kind>_image``; for a generated run its input image: ``inputs/<name>.png`` (scikit-image
    samples) or the study folder's file, while that folder is where generation saw it."""
    if manifest.imported:
        return condition.get(f"{kind}_image") or None
    name = condition.row_label if kind == "style" else manifest.study.get("object_image", "")
    if not name:
        return None
    if (manifest.run_dir / "inputs" / f"{name}.png").is_file():
        return f"inputs/{name}.png"
    source = manifest.study.get("images", {}).get(name, {}).get("path", "")
    path = Path(manifest.study.get("folder", "")) / source
    return str(path) if source and not source.startswith("skimage:") and path.is_file() else None


def slots(manifest: StudyManifest) -> tuple[int, int]:
    """How many stimuli are on screen together (display phase, answer phase)."""
    p = manifest.protocol
    together = 1 if p.kind == "acr" else 2
    display = 2 if p.kind == "pairwise" and p.layout == "side_by_side" else 1
    return display, (together if p.answer_with_images else 0)


def view_settings(manifest: StudyManifest) -> dict:
    """What the trial page needs to lay out and check the window: the display mode, the largest
    stimulus (image pixels) and how many stimuli share the screen in each phase."""
    p = manifest.protocol
    sizes = [image_size(manifest, c) for c in manifest.conditions]
    display, answer = slots(manifest)
    refs = {kind: [_file_size(str(manifest.run_dir / f)) for c in manifest.conditions
                   if (f := reference_file(manifest, c, kind))] for kind in p.references}
    return {
        "display": p.display, "width": max(w for w, _ in sizes), "height": max(h for _, h in sizes),
        "display_slots": display, "answer_slots": answer, "min_viewport": list(p.min_viewport),
        "fullscreen": p.fullscreen,
        # the references shown beside the stimuli: the widest of each kind, side by side
        "reference_widths": [max(w for w, _ in r) for r in refs.values() if r],
        "reference_height": max((h for r in refs.values() for _, h in r), default=0),
    }


def least_screen(view: dict, dpr: float) -> tuple[int, int]:
    """The smallest screen (CSS px) on which the study can fit at all: the image area of the
    widest phase plus a minimal allowance for the page around it (``SCREEN_CHROME``).  A screen
    smaller than this is screened out; a window smaller than what the page measures waits."""
    if view["display"] == "fit":
        return tuple(view["min_viewport"]) if view["min_viewport"] else (0, 0)  # type: ignore[return-value]
    scale = 1.0 / dpr if view["display"] == "device" and dpr > 0 else 1.0
    n = max(view["display_slots"], view["answer_slots"])
    w = (n * view["width"] + sum(view["reference_widths"])) * scale + SCREEN_CHROME[0]
    h = max(view["height"], view["reference_height"]) * scale + SCREEN_CHROME[1]
    least = (math.ceil(w), math.ceil(h))
    if view["min_viewport"]:
        least = (max(least[0], view["min_viewport"][0]), max(least[1], view["min_viewport"][1]))
    return least


@dataclass
class Environment:
    """What the browser said about itself (CSS px)."""

    viewport: tuple[int, int] | None = None
    screen: tuple[int, int] | None = None
    dpr: float | None = None
    pointer: str = ""  # fine | coarse | none
    mobile: bool = False

    def size_text(self, which: str) -> str:
        value = getattr(self, which)
        return f"{value[0]}x{value[1]}" if value else ""


def _pair(value) -> tuple[int, int] | None:
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < MAX_CSS for v in value)):
        return round(value[0]), round(value[1])
    return None


def parse_environment(text: str | dict | None, user_agent: str) -> Environment:
    """The environment the page posted (JSON); anything malformed is left unknown, not trusted."""
    data = text
    if isinstance(text, str):
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
    if not isinstance(data, dict):
        data = {}
    dpr = data.get("dpr")
    pointer = data.get("pointer")
    return Environment(
        viewport=_pair(data.get("viewport")), screen=_pair(data.get("screen")),
        dpr=float(dpr) if isinstance(dpr, (int, float)) and not isinstance(dpr, bool) and 0 < dpr < 16 else None,
        pointer=pointer if pointer in ("fine", "coarse", "none") else "",
        mobile=data.get("mobile") is True or bool(MOBILE_UA.search(user_agent or "")),
    )


def screen_out_reason(manifest: StudyManifest, env: Environment) -> str | None:
    """Why this environment cannot take the study (``mobile``, ``screen_too_small``), or None."""
    p = manifest.protocol
    if not p.allow_mobile and env.mobile:
        return "mobile"
    if env.screen:
        least = least_screen(view_settings(manifest), env.dpr or 1.0)
        if env.screen[0] < least[0] or env.screen[1] < least[1]:
            return "screen_too_small"
    return None


class BadViewing(ValueError):
    pass


def parse_shown_sizes(body: dict, images: int) -> tuple[list, float | None]:
    """``sizes``: per shown image [css width, css height] as rendered (or null); ``dpr``."""
    sizes = body.get("sizes", [None] * images)
    if not isinstance(sizes, list) or len(sizes) != images:
        raise BadViewing(f"sizes must be a list of {images} [width, height] pairs or nulls")
    out = []
    for s in sizes:
        if s is None:
            out.append(None)
            continue
        if not (isinstance(s, list) and len(s) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < MAX_CSS for v in s)):
            raise BadViewing("each size must be [width, height] in CSS pixels")
        out.append((float(s[0]), float(s[1])))
    dpr = body.get("dpr")
    if dpr is not None and (isinstance(dpr, bool) or not isinstance(dpr, (int, float)) or not 0 < dpr < 16):
        raise BadViewing("dpr must be the device pixel ratio (a number between 0 and 16) or null")
    return out, (float(dpr) if dpr is not None else None)


def viewing_flags(body: dict) -> list[str]:
    """Flags the page raised about the viewing: the window or zoom changed during the trial,
    full screen was left."""
    flags = []
    if body.get("resized") is True:
        flags.append(Flag.RESIZED)
    if body.get("fullscreen_exit") is True:
        flags.append(Flag.FULLSCREEN_EXIT)
    return flags


VIEWING_KEYS = {"sizes", "dpr", "resized", "fullscreen_exit"}
