"""The participant flow, as reviewers ask for it (a CONSORT-style diagram): how many arrived,
consented, were refused or screened out (by reason), started, completed.

Participants who consented are rows of ``participants``; what happened to the others is a
``FlowEvent`` row without any id: ``arrived`` (a browser's first view of the welcome page, once
per browser; the welcome page writes nothing, so it stays as cheap as before: each server
process counts arrivals in memory and stores them with its next write — a join, a refusal, an
admin page view — so a killed process loses the arrivals it had not stored yet),
``no_consent`` (Start without the consent box), ``refused`` (reason: ``study_closed``,
``invalid_id``) and ``screened_out`` (reason: what the screen found).  A refused takeover of a
started id stores nothing at all.  Screen-outs recorded on the participant row
(``Participant.screened_out``: environment gates at start, failed attention checks later) are
counted by reason too.  The admin page shows these counts live;
``stylestudy analyze`` adds the exclusions and the analysed participants (``analysis.sources.flow``).
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from stylestudy.evalserver.db import FlowEvent, Participant

ARRIVED, NO_CONSENT, REFUSED, SCREENED_OUT = "arrived", "no_consent", "refused", "screened_out"


def record(session, event: str, reason: str = "") -> None:
    """Add one flow event to ``session`` (the caller commits)."""
    session.add(FlowEvent(event=event, reason=reason[:64]))


class ArrivalCounter:
    """Arrivals seen by this server process (one per app) and not yet stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = 0

    def note(self) -> None:
        with self._lock:
            self._pending += 1

    def store(self, session) -> None:
        """Add the pending arrivals to ``session`` as one event (the caller commits)."""
        with self._lock:
            pending, self._pending = self._pending, 0
        if pending:
            session.add(FlowEvent(event=ARRIVED, count=pending))


def flow_counts(session) -> dict:
    """{"arrived", "no_consent", "consented", "refused": {reason: n}, "screened_out": {reason: n},
    "started", "completed"} from the database."""
    events = session.execute(select(FlowEvent.event, FlowEvent.reason, func.sum(FlowEvent.count))
                             .group_by(FlowEvent.event, FlowEvent.reason)).all()
    by_reason: dict[str, dict[str, int]] = {REFUSED: {}, SCREENED_OUT: {}}
    totals: dict[str, int] = {}
    for event, reason, n in events:
        n = int(n or 0)
        totals[event] = totals.get(event, 0) + n
        if event in by_reason:
            by_reason[event][reason or "unspecified"] = n
    column = Participant.screened_out  # screen-outs kept on the participant row, by reason
    for reason, n in session.execute(select(column, func.count()).where(column.is_not(None), column != "")
                                     .group_by(column)).all():
        by_reason[SCREENED_OUT][reason] = by_reason[SCREENED_OUT].get(reason, 0) + n

    def count(*conditions) -> int:
        return int(session.scalar(select(func.count()).select_from(Participant).where(*conditions)) or 0)

    return {"arrived": totals.get(ARRIVED, 0), "no_consent": totals.get(NO_CONSENT, 0),
            "consented": count() + totals.get(REFUSED, 0), "refused": by_reason[REFUSED],
            "screened_out": by_reason[SCREENED_OUT], "started": count(Participant.briefing_done_at.is_not(None)),
            "completed": count(Participant.completed_at.is_not(None))}
