"""What screen a study needs: the window each display mode asks for, and which common screens it admits.

The server's gate (``evalserver.viewing``) and the ``import``/``serve`` messages use the same
geometry, so what the researcher is told at import is what participants meet.  The geometry
mirrors the trial page (evalserver/static/study.js and style.css): stimuli in a row, the
references after them (on a phone, at most 600 CSS px wide, in a row of their own below), every
image captioned, and an allowance for the page around the images and the answer controls.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stylestudy.engine.study.manifest import Condition, StudyManifest

GAP = 16  # CSS px between images of a row (#stage gap)
GROUP_GAP = (32, 8)  # between the stimuli and the references: desktop (beside), phone (below)
CAPTION = 24  # figcaption height
PAD = 16  # the stage's padding, both sides
SCREEN_CHROME = (40, 220)  # CSS px a page needs besides the images (padding, progress, answer controls) at least
PHONE_WIDTH = 600  # CSS px: at most this wide the page lays the references out below the stimuli
FIT_HEIGHT = 0.7  # display = "fit": stimuli 70% of the window's height


@dataclass(frozen=True)
class Screen:
    """A common screen, CSS px, and its device pixel ratio."""

    name: str
    width: int
    height: int
    dpr: float
    mobile: bool = False


COMMON_SCREENS = (Screen("1366x768 laptop", 1366, 768, 1.0), Screen("1920x1080 desktop", 1920, 1080, 1.0),
                  Screen("390x844 phone", 390, 844, 3.0, mobile=True))


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
        # the references shown beside the stimuli: the widest of each kind
        "reference_widths": [max(w for w, _ in r) for r in refs.values() if r],
        "reference_height": max((h for r in refs.values() for _, h in r), default=0),
    }


def _constraints(view: dict, phone: bool) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The screen's width and height as ``a * scale + b`` per row/column the page lays out:
    (widths, heights), each a list of (a, b); the screen must hold the largest of each."""
    n = max(view["display_slots"], view["answer_slots"], 1)
    refs, ref_h = view["reference_widths"], view["reference_height"]
    k = len(refs)
    stim_w, stim_b = n * view["width"], (n - 1) * GAP + PAD + SCREEN_CHROME[0]
    ref_b = (k - 1) * GAP + PAD + SCREEN_CHROME[0]
    if not k:
        return [(stim_w, stim_b)], [(view["height"], CAPTION + PAD + SCREEN_CHROME[1])]
    if phone:  # the references in a row of their own, below
        return ([(stim_w, stim_b), (sum(refs), ref_b)],
                [(view["height"] + ref_h, 2 * CAPTION + GROUP_GAP[1] + PAD + SCREEN_CHROME[1])])
    return ([(stim_w + sum(refs), stim_b + k * GAP - GAP + GROUP_GAP[0])],
            [(max(view["height"], ref_h), CAPTION + PAD + SCREEN_CHROME[1])])


def _need(view: dict, scale: float, phone: bool) -> tuple[int, int]:
    widths, heights = _constraints(view, phone)
    return (math.ceil(max(a * scale + b for a, b in widths)), math.ceil(max(a * scale + b for a, b in heights)))


def _largest_scale(view: dict, width: float, height: float, phone: bool) -> float:
    """The largest scale at which the images fit a ``width`` x ``height`` window (0 when none)."""
    widths, heights = _constraints(view, phone)
    limits = [(width - b) / a for a, b in widths if a] + [(height - b) / a for a, b in heights if a]
    return max(0.0, min(limits, default=1.0))


def native_scale(view: dict, dpr: float) -> float | None:
    """CSS px per image pixel of a fixed-scale mode (None: the scale follows the window)."""
    if view["display"] == "native":
        return 1.0
    if view["display"] == "device":
        return 1.0 / dpr if dpr > 0 else 1.0
    return None


def least_screen(view: dict, dpr: float, screen_width: int | None = None) -> tuple[int, int]:
    """The smallest screen (CSS px) on which the study can fit at all: the image area of the
    widest phase plus a minimal allowance for the page around it (``SCREEN_CHROME``).  A screen
    smaller than this is screened out; a window smaller than what the page measures waits.
    ``fit`` and ``scale_down`` shrink the images to the window, so only ``min_viewport`` counts."""
    scale = native_scale(view, dpr)
    least = (0, 0) if scale is None else _need(view, scale, screen_width is not None and screen_width <= PHONE_WIDTH)
    if view["min_viewport"]:
        least = (max(least[0], view["min_viewport"][0]), max(least[1], view["min_viewport"][1]))
    return least


def shown_scale(view: dict, screen: Screen) -> float:
    """The scale (CSS px per image pixel) the largest stimulus gets on a window the size of ``screen``."""
    phone = screen.width <= PHONE_WIDTH
    fixed = native_scale(view, screen.dpr)
    if fixed is not None:
        return fixed
    fits = _largest_scale(view, screen.width, screen.height, phone)
    if view["display"] == "scale_down":
        return min(1.0, fits)
    return min(FIT_HEIGHT * screen.height / view["height"], fits)


def admits(view: dict, screen: Screen, allow_mobile: bool) -> bool:
    """Whether the server's gate lets a participant on ``screen`` take the study."""
    if screen.mobile and not allow_mobile:
        return False
    least = least_screen(view, screen.dpr, screen.width)
    return screen.width >= least[0] and screen.height >= least[1]


DISPLAY_WORDS = {
    "native": "one image pixel per CSS pixel",
    "device": "one image pixel per device pixel",
    "fit": "70% of the window's height, enlarged or reduced",
    "scale_down": "1:1 where it fits, reduced (never enlarged) where it does not",
}


def display_report(manifest: StudyManifest, modes: tuple[str, ...] = ("native", "device", "fit", "scale_down")
                   ) -> tuple[list[str], list[str]]:
    """Lines for the researcher (what each display mode needs and which common screens it admits)
    and warnings (the chosen mode refuses most laptops)."""
    p = manifest.protocol
    view = view_settings(manifest)
    refs = f" + {len(view['reference_widths'])} reference(s)" if view["reference_widths"] else ""
    n = max(view["display_slots"], view["answer_slots"], 1)
    lines = [f"display: largest stimulus {view['width']}x{view['height']} px, {n} on screen together{refs}; "
             f"this study: display = \"{p.display}\"" + ("" if p.allow_mobile else ", phones refused (allow_mobile)")]
    for mode in modes:
        v = dict(view, display=mode)
        parts = []
        for s in COMMON_SCREENS:
            if not admits(v, s, p.allow_mobile):
                parts.append(f"{s.name} refused")
            else:
                parts.append(f"{s.name} at {shown_scale(v, s):.2f}x")
        least = least_screen(v, 1.0)
        need = f"screen at least {least[0]}x{least[1]} CSS px" if least != (0, 0) else "any screen"
        mark = "*" if mode == p.display else " "
        lines.append(f" {mark} {mode:10s} ({DISPLAY_WORDS[mode]}): {need}; " + ", ".join(parts))
    warnings = []
    laptop = COMMON_SCREENS[0]
    if not admits(view, laptop, True):
        least = least_screen(view, laptop.dpr)
        refused = [s.name for s in COMMON_SCREENS if not admits(view, s, p.allow_mobile)]
        warnings.append(f"display = \"{p.display}\" needs a screen of at least {least[0]}x{least[1]} CSS px, so "
                        f"participants on a {' or a '.join(refused)} are screened out (most laptops are "
                        f"{laptop.width}x{laptop.height}); set display = \"scale_down\" under [protocol] to show "
                        "the images 1:1 where they fit and smaller where they do not")
    return lines, warnings


def print_display_report(manifest: StudyManifest) -> None:
    """Told at import and at serve, before any participant is screened out (warnings on standard error)."""
    lines, warnings = display_report(manifest)
    print("\n".join(lines), flush=True)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
