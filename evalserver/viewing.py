"""Controlled viewing: at which scale stimuli are shown, what the window must hold, who is screened out.

``[protocol] display`` says how many screen pixels one image pixel takes: ``native`` one CSS
pixel (what a web page calls a pixel; at 100% zoom on a standard screen one device pixel),
``device`` one device pixel (``devicePixelRatio`` device pixels per CSS pixel, so a 96 px
image is 48 CSS px at DPR 2), ``fit`` one on-screen height for every stimulus (70% of the
window, the behaviour before this setting existed), ``scale_down`` one CSS pixel where the
window holds the study, else one scale for every stimulus and reference that fits it (never
enlarged).  The page computes, from the largest
stimulus of the study and the display mode, the window it needs (``view_settings`` gives it
the numbers) and starts no trial until the window holds it.

What the browser reports is validated here: per shown image its rendered CSS size and the
device pixel ratio (stored with the rating), per participant the viewport, the screen, the
pointer and whether it is a phone or tablet (stored with the participant).  The gates
(``allow_mobile``, ``min_viewport`` against the screen) decide a screen-out and its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.screens import (  # the geometry is engine.study.screens' (import reports it too)
    image_size,  # noqa: F401
    least_screen,
    reference_file,  # noqa: F401
    view_settings,
)
from stylestudy.evalserver.flags import Flag

MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)
MAX_CSS = 100_000.0


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
    """The environment the page posted (JSON); anything malformed is left unknown, not trusted.
    BadViewing for JSON nested too deeply to parse (thousands of brackets)."""
    data = text
    if isinstance(text, str):
        try:
            data = json.loads(text) if text else {}
        except RecursionError:
            raise BadViewing("environment must be a JSON object, not deeply nested lists") from None
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
    protocol = manifest.protocol
    if not protocol.allow_mobile and env.mobile:
        return "mobile"
    if env.screen:
        least = least_screen(view_settings(manifest), env.dpr or 1.0, env.screen[0])
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
    if body.get(Flag.RESIZED) is True:
        flags.append(Flag.RESIZED)
    if body.get(Flag.FULLSCREEN_EXIT) is True:
        flags.append(Flag.FULLSCREEN_EXIT)
    return flags


VIEWING_KEYS = {"sizes", "dpr", Flag.RESIZED, Flag.FULLSCREEN_EXIT}
