"""The flags a stored rating can carry (the export's ``flags`` column, ``;``-separated), named
once: the server sets them, the analysis counts and excludes by them, the page script raises
the viewing ones (``PAGE_FLAGS``: answer keys of the same name, whose names the page is given)."""

from __future__ import annotations

from enum import Enum


class Flag(str, Enum):
    TIMEOUT = "timeout"  # no answer in time
    ATTENTION_FAILED = "attention_failed"  # an attention check answered wrongly
    GOLD_FAILED = "gold_failed"  # a gold item rated outside its accepted ratings
    SHORT_DISPLAY = "short_display"  # the image was on screen for less than the study's time
    TOO_FAST = "too_fast"  # the server saw less time than the displays need
    REPEAT = "repeat"  # a hidden repeat of a condition (acr)
    RESIZED = "resized"  # the window or zoom changed during the trial (raised by the page)
    FULLSCREEN_EXIT = "fullscreen_exit"  # full screen was left (raised by the page)
    NO_PREFERENCE = "no_preference"  # older exports: an attention check answered "No preference"
    LATE = "late"  # answered later than the displays and the rating time allow (server's clock, with slack)
    CLOCK_MISMATCH = "clock_mismatch"  # the page's times add up to more than the server saw
    BLUR = "blur"  # the page lost focus during the trial (raised by the page)
    RESTARTED = "restarted"  # the trial was served again (a reload or a resume)
    EXCLUDED = "excluded"  # the admin excluded the participant (export only; nothing is deleted)

    __str__ = str.__str__  # the plain name in f-strings, joins and CSV on every Python version
    __format__ = str.__format__
    __hash__ = str.__hash__  # equal to the plain name in sets and dicts (rows hold plain strings)


# what the page script raises, each as a true answer key named as the flag; the trial page hands the
# script these names (data-flags on #trial), so page and server cannot drift apart
PAGE_FLAGS = (Flag.RESIZED, Flag.FULLSCREEN_EXIT, Flag.BLUR)


def page_flag_names() -> dict[str, str]:
    """The page flags for the trial page's script: member name -> answer key."""
    return {f.name: f.value for f in PAGE_FLAGS}


# what `analyze` leaves out unless told otherwise: no answer, a display the page did not show for its
# time, an answer sooner than the displays take, a participant the admin excluded
EXCLUDED_BY_DEFAULT = (Flag.TIMEOUT, Flag.SHORT_DISPLAY, Flag.TOO_FAST, Flag.EXCLUDED)
