"""Participants' language: participant pages come from translation catalogs (Flask-Babel).

``[protocol] language`` (``en`` or ``ko``) picks the catalog for the whole study; the admin pages
stay in English.  Texts the researcher writes in the study file (title, question, scale labels,
consent text, codes) are shown as written; only the defaults stylestudy supplies for them are
translated (``default_text``).  The catalogs are ``evalserver/translations/<lang>/LC_MESSAGES/
messages.po``, compiled to ``messages.mo`` next to them and shipped in the wheel; ``babel.cfg``
says where the messages are extracted from (templates and the participant modules).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from flask_babel import Babel, gettext

from stylestudy.engine.study.schema import (
    ACR_QUESTION,
    P910_ACR_SCALE,
    PAIRWISE_QUESTION,
    PAPER_SCALE,
    PARTICIPANT_TITLE,
)

TRANSLATIONS = Path(__file__).parent / "translations"
# the texts stylestudy writes when a study file does not: translated like the page itself
DEFAULT_TEXTS = frozenset([PARTICIPANT_TITLE, PAIRWISE_QUESTION, ACR_QUESTION, *PAPER_SCALE, *P910_ACR_SCALE])


def init_i18n(app: Flask, language: str) -> None:
    """Every request of ``app`` is rendered in ``language``."""
    Babel(app, default_locale="en", default_translation_directories=str(TRANSLATIONS),
          locale_selector=lambda: current_app.config.get("PARTICIPANT_LANGUAGE", "en"))
    app.config["PARTICIPANT_LANGUAGE"] = language
    app.jinja_env.globals.update(default_text=default_text, page_language=language)


def default_text(text: str) -> str:
    """``text`` in the participant's language when it is one of stylestudy's defaults; a text the
    researcher wrote, as written."""
    return gettext(text) if text in DEFAULT_TEXTS else text  # the defaults are in the catalog (i18n_defaults)


def i18n_defaults() -> list[str]:
    """Marks the default texts for extraction (pybabel reads the gettext calls below)."""
    return [
        gettext("Image rating study"),
        gettext("Which image transfers the style better?"),
        gettext("How good is the quality of this image?"),
        gettext("Style not transferred"), gettext("Transferred excessively or very weakly"),
        gettext("Somewhat weak or slightly exaggerated"), gettext("Transferred well"),
        gettext("Transferred very well"),
        gettext("Bad"), gettext("Poor"), gettext("Fair"), gettext("Good"), gettext("Excellent"),
    ]
