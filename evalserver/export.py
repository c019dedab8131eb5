"""Ratings as CSV: one row per rated (or missed) image, in the columns the analysis reads.

``condition_id`` is the cell condition that was rated (its block, row, column and method follow);
``image_id`` is the picture it showed, which other conditions may share.  ``protocol`` is the
trial's protocol (paired, acr, pairwise) and ``role`` what the trial was for: ``rated``,
``attention`` (a check with a known answer) or ``repeat`` (an acr hidden repeat).  On pairwise
trials ``rating`` is 1 for the preferred image and 0 for the other (both 0, flag
``no_preference``, when the participant had none).  ``role`` ``practice``: a practice trial
(never analysed).  Text cells that a spreadsheet would run as a formula start with an apostrophe
(``evalserver.spreadsheet_cells``); the analysis removes it.  Every row of a participant the admin
excluded carries the flag ``excluded``.  The viewing columns say at which size each image was shown;
the last, ``display``, the study's ``[protocol] display`` mode (so the analysis need not guess it).

``export_participants_csv``: one row per participant (who started, finished, or was screened out
by a gate and why), for the participant flow.
"""

from __future__ import annotations

import csv
import io
from datetime import timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from stylestudy.evalserver.db import Participant, Rating
from stylestudy.evalserver.flags import Flag
from stylestudy.evalserver.spreadsheet_cells import neutralise

COLUMNS = ["participant_id", "external_id", "trial", "pair_id", "condition_id", "block", "row", "column",
           "column_label", "method", "image_id", "position", "rating", "response_ms", "shown_ms", "flags", "rated_at"]
EXTRA_COLUMNS = ["row_label", "attention", "served_at", "external_study_id", "external_session_id", "protocol", "role"]
# viewing (evalserver.viewing): per image the picture's rendered size (CSS px), the device pixel
# ratio and its own size (px); per participant the viewport and screen (CSS px, "WxH"), pointer,
# user agent; the scale it was shown at (CSS px per image pixel: shown_width / image_width); last the
# study's display mode (the manifest's protocol.display, the same on every row)
VIEWING_SIZE_COLUMNS = ["shown_width", "shown_height", "device_pixel_ratio", "image_width", "image_height"]
VIEWING_COLUMNS = VIEWING_SIZE_COLUMNS + ["viewport", "screen", "pointer", "user_agent", "shown_scale", "display"]
NUMERIC_COLUMNS = {"trial", "row", "column", "position", "rating", "response_ms", "shown_ms", "attention"}


def _iso(dt) -> str:
    if dt is None:
        return ""
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _num(value) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:.1f}")


def export_rows(session: Session, display: str = "") -> list[dict]:
    """The rows of every rating; ``display`` is the study's display mode ("" when not known)."""
    rows = session.execute(
        select(Rating, Participant).join(Participant, Rating.participant_id == Participant.id)
        .order_by(Participant.id, Rating.trial, Rating.position)
    ).all()
    out = []
    for r, participant in rows:
        plan = participant.order[r.trial - 1] if 0 < r.trial <= len(participant.order) else {}
        role = "attention" if r.attention else plan.get("role", "rated")
        out.append({
            "participant_id": participant.public_id, "external_id": participant.external_id or "", "trial": r.trial,
            "pair_id": r.pair_id, "condition_id": r.condition_id, "block": r.block, "row": r.row, "column": r.column,
            "column_label": r.column_label, "method": r.method, "image_id": r.image_id,
            "position": r.position, "rating": "" if r.rating is None else r.rating,
            "response_ms": _num(r.response_ms), "shown_ms": _num(r.shown_ms),
            "flags": ";".join(sorted({*filter(None, r.flags.split(";")), Flag.EXCLUDED.value})) if participant.excluded_at else r.flags,
            "rated_at": _iso(r.rated_at), "row_label": r.row_label, "attention": int(r.attention),
            "served_at": _iso(r.served_at), "external_study_id": participant.external_study_id or "",
            "external_session_id": participant.external_session_id or "", "protocol": plan.get("protocol", "paired"),
            "role": role, "shown_width": _num(r.shown_width), "shown_height": _num(r.shown_height),
            "device_pixel_ratio": "" if r.device_pixel_ratio is None else f"{r.device_pixel_ratio:g}",
            "image_width": _num(r.image_width), "image_height": _num(r.image_height),
            "viewport": participant.viewport or "", "screen": participant.screen or "",
            "pointer": participant.pointer or "", "user_agent": participant.user_agent or "",
            "shown_scale": f"{r.shown_width / r.image_width:.4g}" if r.shown_width is not None and r.image_width else "",
            "display": display,
        })
    return out


def export_csv(session: Session, display: str = "") -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS + EXTRA_COLUMNS + VIEWING_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in export_rows(session, display):  # text cells neutralised against spreadsheet formulas (restorable)
        writer.writerow({k: v if k in NUMERIC_COLUMNS or not isinstance(v, str) else neutralise(v)
                         for k, v in row.items()})
    return buf.getvalue()


PARTICIPANT_COLUMNS = ["participant_id", "external_id", "consented_at", "briefing_done_at", "completed_at",
                       "trials", "trials_done", "screened_out", "screened_out_at", "viewport", "screen", "pointer",
                       "user_agent"]


def export_participants_csv(session: Session) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PARTICIPANT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for p in session.scalars(select(Participant).order_by(Participant.id)):
        writer.writerow({k: neutralise(v) if isinstance(v, str) else v for k, v in {
            "participant_id": p.public_id, "external_id": p.external_id or "", "consented_at": _iso(p.consented_at),
            "briefing_done_at": _iso(p.briefing_done_at), "completed_at": _iso(p.completed_at),
            "trials": len(p.order), "trials_done": min(p.current_trial - 1, len(p.order)),
            "screened_out": p.screened_out or "", "screened_out_at": _iso(p.screened_out_at),
            "viewport": p.viewport or "", "screen": p.screen or "", "pointer": p.pointer or "",
            "user_agent": p.user_agent or "",
        }.items()})  # a user agent or id is the participant's text: no formula reaches a spreadsheet
    return buf.getvalue()
