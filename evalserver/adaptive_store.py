"""The adaptive sampler's state in the study database (the one source of truth).

Two tables, written in the same transactions as the participant's plan and ratings:

* ``adaptive_trials``: one row per adaptive trial handed out (participant, trial, item, the two
  methods, when) and, once answered, its outcome.  Unique per (participant, trial), so two
  workers serving the same trial at once cannot both hand out a pair: the loser re-reads the
  winner's.  Unanswered rows younger than ``[protocol] in_flight_seconds`` (a lease, 60 s by
  default) of participants still in the study are the pairs in flight.
* ``adaptive_counts``: per (item, a, b) the answered comparisons (a preferred, b preferred,
  no preference) that the analysis would keep, incremented atomically (``INSERT ... ON
  CONFLICT DO UPDATE``) when the trial's ratings are committed, so no comparison is lost or
  counted twice; the same numbers can be recounted from the ratings (``counts_from_ratings``).

Only kept answers move the sampler and its stop rules: an answer flagged ``too_fast``,
``short_display`` or ``timeout`` is stored but not counted, and a participant who is screened
out (attention) or excluded by the admin has every counted answer taken back out (and back in
when the admin includes them again).  So scripted participants answering instantly cannot
close a study with ``stop_when``, and nothing they sent stays in the live state.

Every worker derives the posterior from these counts on each request (no in-process state), so
any number of gunicorn workers, a restart or a kill -9 give the same posterior.
"""

from __future__ import annotations

import weakref
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import flag_modified

from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.evalserver.adaptive import Design, next_entry, outcome_of, posterior, stop_reasons, summary
from stylestudy.evalserver.answer_rules import NOT_KEPT
from stylestudy.evalserver.db import Base, Participant, Rating, get_setting, set_setting, utcnow
from stylestudy.evalserver.pairwise_posterior import Posterior

STOPPED_SETTING = "adaptive_stopped"  # the stop rules that closed the study (admin page)


class AdaptiveTrial(Base):
    __tablename__ = "adaptive_trials"
    __table_args__ = (UniqueConstraint("participant_id", "trial", name="one_adaptive_pair_per_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    item: Mapped[str] = mapped_column(String(128))
    a: Mapped[str] = mapped_column(String(32))  # a before b in the manifest's method order
    b: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[float | None] = mapped_column(Float, nullable=True)  # 1 a preferred, 0 b, 0.5 no preference
    kept: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # an answer the analysis would keep
    counted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # in adaptive_counts now


class AdaptiveCount(Base):
    __tablename__ = "adaptive_counts"

    item: Mapped[str] = mapped_column(String(128), primary_key=True)
    a: Mapped[str] = mapped_column(String(32), primary_key=True)
    b: Mapped[str] = mapped_column(String(32), primary_key=True)
    a_wins: Mapped[int] = mapped_column(Integer, default=0)
    b_wins: Mapped[int] = mapped_column(Integer, default=0)
    ties: Mapped[int] = mapped_column(Integer, default=0)


_DESIGNS: weakref.WeakKeyDictionary[StudyManifest, Design] = weakref.WeakKeyDictionary()


def design_of(manifest: StudyManifest) -> Design:
    """The manifest's design, made once per manifest object (the app keeps one) and forgotten with
    it; kept beside the manifest, not written into it."""
    design = _DESIGNS.get(manifest)
    if design is None:
        design = _DESIGNS[manifest] = Design.from_manifest(manifest)
    return design


def is_adaptive(entry: dict) -> bool:
    return entry.get("sampling") == "adaptive" and entry.get("role") == "rated"


def counts(session: Session) -> list[tuple]:
    return [tuple(r) for r in session.execute(select(AdaptiveCount.item, AdaptiveCount.a, AdaptiveCount.b,
                                                     AdaptiveCount.a_wins, AdaptiveCount.b_wins, AdaptiveCount.ties))]


def in_flight(session: Session, design: Design, now: datetime, lease_seconds: float,
              exclude_participant: int | None = None) -> Counter:
    """The pairs handed out less than ``lease_seconds`` ago and not answered, of participants
    neither screened out nor excluded."""
    cutoff = now - timedelta(seconds=lease_seconds)
    query = (select(AdaptiveTrial.item, AdaptiveTrial.a, AdaptiveTrial.b)
             .join(Participant, Participant.id == AdaptiveTrial.participant_id)
             .where(AdaptiveTrial.answered_at.is_(None), AdaptiveTrial.assigned_at >= cutoff,
                    Participant.screened_out.is_(None), Participant.excluded_at.is_(None)))
    if exclude_participant is not None:
        query = query.where(AdaptiveTrial.participant_id != exclude_participant)
    out: Counter = Counter()
    for item, a, b in session.execute(query):
        key = design.key(item, a, b)
        if key is not None:
            out[key] += 1
    return out


def current_posterior(session: Session, manifest: StudyManifest) -> Posterior:
    return posterior(design_of(manifest), counts(session))


def assign_current(session: Session, participant: Participant, manifest: StudyManifest) -> None:
    """Give the participant's current trial its pair, if it is adaptive and has none yet (the
    caller commits; an IntegrityError means another worker assigned it first)."""
    if participant.completed_at or not 1 <= participant.current_trial <= len(participant.order):
        return
    entry = participant.order[participant.current_trial - 1]
    if not is_adaptive(entry) or entry.get("conditions"):
        return
    design = design_of(manifest)
    now = utcnow()
    shown = [design.key(item, a, b) for item, a, b in session.execute(
        select(AdaptiveTrial.item, AdaptiveTrial.a, AdaptiveTrial.b)
        .where(AdaptiveTrial.participant_id == participant.id))]
    filled, (k, i, j) = next_entry(manifest, design, current_posterior(session, manifest), [x for x in shown if x],
                                   in_flight(session, design, now, manifest.protocol.in_flight_seconds,
                                             exclude_participant=participant.id), participant.seed,
                                   participant.current_trial, entry)
    item, a, b = design.items[k], design.methods[i], design.methods[j]
    order = list(participant.order)
    order[participant.current_trial - 1] = filled
    participant.order = order
    flag_modified(participant, "order")
    session.add(AdaptiveTrial(participant_id=participant.id, trial=participant.current_trial, item=item, a=a, b=b,
                              assigned_at=now))
    session.flush()


def record_outcome(session: Session, participant: Participant, trial: int, entry: dict, choice: int | None,
                   manifest: StudyManifest, kept: bool) -> None:
    """Store the answer of an adaptive trial (inside the transaction that stores its ratings):
    ``choice`` 1/2 = the image shown first/second, 0 = no preference, None = no answer; ``kept``:
    none of its rows has a flag the analysis excludes.  Counted only when kept, answered and the
    participant is still in the study."""
    if not is_adaptive(entry):
        return
    item, a, b, outcome = outcome_of(manifest, entry, choice)
    kept = kept and outcome is not None
    counted = kept and not participant.screened_out and not participant.excluded_at
    session.execute(update(AdaptiveTrial).where(AdaptiveTrial.participant_id == participant.id,
                                                AdaptiveTrial.trial == trial)
                    .values(answered_at=utcnow(), outcome=outcome, kept=kept, counted=counted))
    if counted:
        _add(session, item, a, b, outcome, 1)


def _add(session: Session, item: str, a: str, b: str, outcome: float, sign: int) -> None:
    """Add (``sign`` 1) or take back (-1) one answered comparison, atomically."""
    add = {"a_wins": sign * int(outcome == 1.0), "b_wins": sign * int(outcome == 0.0),
           "ties": sign * int(outcome == 0.5)}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(AdaptiveCount).values(item=item, a=a, b=b, **add)
    session.execute(statement.on_conflict_do_update(
        index_elements=["item", "a", "b"],
        set_={k: getattr(AdaptiveCount, k) + getattr(statement.excluded, k) for k in add}))


def withdraw(session: Session, participant_id: int) -> int:
    """Take every counted answer of a participant out of the counts (screened out, excluded by
    the admin), inside the caller's transaction; returns how many."""
    rows = session.scalars(select(AdaptiveTrial).where(AdaptiveTrial.participant_id == participant_id,
                                                       AdaptiveTrial.counted.is_(True))).all()
    for t in rows:
        _add(session, t.item, t.a, t.b, t.outcome, -1)
        t.counted = False
    return len(rows)


def reinstate(session: Session, participant_id: int) -> int:
    """Count again the kept answers of a participant the admin includes again (not one screened
    out); returns how many."""
    rows = session.scalars(select(AdaptiveTrial).join(Participant, Participant.id == AdaptiveTrial.participant_id)
                           .where(AdaptiveTrial.participant_id == participant_id, AdaptiveTrial.kept.is_(True),
                                  AdaptiveTrial.counted.is_not(True), Participant.screened_out.is_(None))).all()
    for t in rows:
        _add(session, t.item, t.a, t.b, t.outcome, 1)
        t.counted = True
    return len(rows)


def close_if_done(session: Session, manifest: StudyManifest) -> list[str]:
    """With ``stop_when`` rules: when one holds, close the study to new participants (those
    already in it finish their trials).  Returns the rules that hold."""
    rules = manifest.protocol.stop_when
    if not rules or get_setting(session, "study_open", "1") != "1":
        return []
    met = stop_reasons(rules, design_of(manifest), current_posterior(session, manifest))
    if met:
        set_setting(session, "study_open", "0")
        set_setting(session, STOPPED_SETTING, ", ".join(met))
        session.commit()
    return met


def status(session: Session, manifest: StudyManifest) -> dict:
    """The admin's view (see ``adaptive.summary``) plus what closed the study, if a rule did."""
    design = design_of(manifest)
    out = summary(design, current_posterior(session, manifest),
                  in_flight(session, design, utcnow(), manifest.protocol.in_flight_seconds), manifest.protocol.stop_when)
    out["stopped_by"] = get_setting(session, STOPPED_SETTING, "")
    return out


def counts_from_ratings(session: Session, manifest: StudyManifest) -> list[tuple]:
    """The same counts recounted from the ratings (the adaptive trials' rated rows of participants
    still in the study, none of a trial's rows with a flag the analysis excludes): a check."""
    design = design_of(manifest)
    rows = session.execute(select(Rating.participant_id, Rating.trial, Rating.pair_id, Rating.method, Rating.rating,
                                  Rating.flags)
                           .join(Participant, Participant.id == Rating.participant_id)
                           .where(Rating.attention.is_(False), Rating.pair_id.contains("|"),
                                  Participant.screened_out.is_(None), Participant.excluded_at.is_(None))
                           .order_by(Rating.participant_id, Rating.trial, Rating.position))
    trials: dict[tuple, list] = {}
    for pid, trial, pair_id, method, rating, flags in rows:
        trials.setdefault((pid, trial, pair_id), []).append((method, rating, flags))
    out: dict[tuple, list[int]] = {}
    for (_, _, pair_id), answers in trials.items():
        item, pair = pair_id.rsplit(":", 1)
        a, b = pair.split("|")
        if design.key(item, a, b) is None or len(answers) != 2 or any(r is None for _, r, _ in answers) \
                or any(set(f.split(";")) & set(NOT_KEPT) for _, _, f in answers):
            continue
        row = out.setdefault((item, a, b), [0, 0, 0])
        if "no_preference" in answers[0][2].split(";"):
            row[2] += 1
        else:
            winner = next(m for m, r, _ in answers if r == 1)
            row[0 if winner == a else 1] += 1
    return sorted((*k, *v) for k, v in out.items())


def total_comparisons(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(AdaptiveCount.a_wins + AdaptiveCount.b_wins
                                                            + AdaptiveCount.ties), 0))))
