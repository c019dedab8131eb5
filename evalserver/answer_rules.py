"""The rules that turn one trial's submission into stored rows: what a submission may hold, what
each shown image's answer is, and which QC flags it gets (timeouts, attention and gold failures,
displays too short, answers sooner than the displays allow).

Plain functions of the submission, the trial's plan and the protocol: no Flask, no database, so
every rule is tested by calling it (``tests/test_answer_rules.py``); ``evalserver.participant``
is the routes that apply them.
"""

from __future__ import annotations

from stylestudy.engine.study.manifest import Condition
from stylestudy.engine.study.schema import Protocol
from stylestudy.evalserver.flags import Flag
from stylestudy.evalserver.viewing import VIEWING_KEYS, BadViewing, parse_shown_sizes, viewing_flags

DISPLAY_TOLERANCE_MS = 50.0
LATE_SLACK_MS = 5000.0  # beyond the displays and the rating time: loading images, the network, a retry
CLOCK_TOLERANCE_MS = 1000.0  # the page may say its times took this much longer than the server saw
SUBMISSION_KEYS = {"ratings", "choice", "shown_ms", "response_ms", Flag.BLUR} | VIEWING_KEYS
NO_PREFERENCE = 0  # the pairwise "choice" value of "No preference"
NOT_KEPT = (Flag.TIMEOUT, Flag.SHORT_DISPLAY, Flag.TOO_FAST)  # answers stored but not counted by the adaptive sampler


class BadSubmission(ValueError):
    """A submission that breaks a rule; the message says which, for a 400."""


def _milliseconds(body: dict, key: str, count: int) -> list:
    values = body.get(key, [None] * count)
    if not isinstance(values, list) or len(values) != count:
        raise BadSubmission(f"{key} must be a list of {count} numbers or nulls")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 3.6e6):
            raise BadSubmission(f"{key} values must be milliseconds (0..3600000) or null")
    return values


def validate(body, kind: str, images: int, scale_points: int, no_preference: bool) -> dict:
    """The submission of one trial: ``ratings`` (one per image, paired and acr) or ``choice``
    (pairwise: 1, 2, 0 = no preference when offered, or null), ``shown_ms`` per image,
    ``response_ms`` per answer, ``blur``."""
    if not isinstance(body, dict):
        raise BadSubmission("body must be a JSON object")
    unknown = set(body) - SUBMISSION_KEYS
    if unknown:
        raise BadSubmission(f"unknown field(s): {', '.join(sorted(unknown))}")
    out = {"blur": body.get(Flag.BLUR, False)}
    if not isinstance(out["blur"], bool):
        raise BadSubmission("blur must be true or false")
    if kind == "pairwise":
        if "ratings" in body:
            raise BadSubmission("this trial takes a choice (1, 2" + (", 0 = no preference" if no_preference else "")
                                + " or null), not ratings")
        choice = body.get("choice")
        allowed = (1, 2, NO_PREFERENCE) if no_preference else (1, 2)
        if choice is not None and (isinstance(choice, bool) or choice not in allowed):
            raise BadSubmission(f"choice must be one of {', '.join(map(str, allowed))} or null")
        out["choice"] = choice
        answers = 1
    else:
        if "choice" in body:
            raise BadSubmission("this trial takes ratings, not a choice")
        ratings = body.get("ratings")
        if not isinstance(ratings, list) or len(ratings) != images:
            raise BadSubmission(f"ratings must be a list of {images} value(s), one per image")
        for r in ratings:
            if r is not None and (isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= scale_points):
                raise BadSubmission(f"each rating must be an integer 1..{scale_points} or null")
        out["ratings"] = ratings
        answers = images
    out["shown_ms"] = _milliseconds(body, "shown_ms", images)
    out["response_ms"] = _milliseconds(body, "response_ms", answers)
    try:
        out["sizes"], out["dpr"] = parse_shown_sizes(body, images)
    except BadViewing as exc:
        raise BadSubmission(str(exc)) from None
    out["viewing_flags"] = viewing_flags(body)
    return out


def attention_failed(plan: dict, answer: int | None) -> bool:
    """One rule for every protocol: an attention check passes only with the answer it asked
    for; a timeout (None) or "No preference" (0) fails it."""
    return bool(plan.get("attention")) and answer != plan["attention"]


def answers(body: dict, plan: dict, kind: str, gold: tuple[str, list[int]], conditions: list[Condition]) -> list:
    """(rating to store, flags) per shown image."""
    if kind == "pairwise":
        choice = body["choice"]
        failed = [Flag.ATTENTION_FAILED] if attention_failed(plan, choice) else []
        if choice is None:
            return [(None, [Flag.TIMEOUT, *failed])] * 2
        if choice == NO_PREFERENCE:
            return [(0, [Flag.NO_PREFERENCE, *failed])] * 2
        return [(int(choice == pos), list(failed)) for pos in (1, 2)]
    out = []
    for rating, c in zip(body["ratings"], conditions):
        flags = [Flag.TIMEOUT] if rating is None else []
        if attention_failed(plan, rating):
            flags.append(Flag.ATTENTION_FAILED)
        if rating is not None and c.method == gold[0] and rating not in gold[1] and not plan.get("attention"):
            flags.append(Flag.GOLD_FAILED)
        out.append((rating, flags))
    return out


def displays(p: Protocol) -> int:
    """How many image displays (of image_seconds each) one trial takes."""
    return 1 if p.kind == "acr" or (p.kind == "pairwise" and p.layout == "side_by_side") else 2


def least_ms(p: Protocol, shown_ms: list) -> float:
    """The least time a trial takes between being served and answered: its displays as the
    protocol sets them, or as the page measured them when it says they took longer."""
    measured = [v for v in shown_ms if v is not None]
    together = displays(p) == 1  # one display of every image at once (acr, side by side)
    said = (max(measured) if together else sum(measured)) if measured else 0.0
    return max(displays(p) * p.image_ms, said)


def trial_flags(body: dict, served_count: int, elapsed_ms: float, protocol: Protocol) -> list[str]:
    """The flags every row of a trial shares, ``elapsed_ms`` being the server's time from serving
    the trial to its answer: ``blur``, ``restarted`` (served more than once), the page's viewing
    flags, ``too_fast`` (less than the displays need, or than the page said they took),
    ``late`` (more than the displays and the rating time plus ``LATE_SLACK_MS``) and
    ``clock_mismatch`` (the page's displays and response time add up to more than the server
    saw, beyond ``CLOCK_TOLERANCE_MS``)."""
    flags = [Flag.BLUR] if body["blur"] else []
    if served_count > 1:
        flags.append(Flag.RESTARTED)
    flags += body["viewing_flags"]
    least = least_ms(protocol, body["shown_ms"])
    if elapsed_ms < least - DISPLAY_TOLERANCE_MS:
        flags.append(Flag.TOO_FAST)
    if elapsed_ms > least + protocol.rating_ms + LATE_SLACK_MS:
        flags.append(Flag.LATE)
    responses = [v for v in body["response_ms"] if v is not None]
    if responses and least + max(responses) > elapsed_ms + CLOCK_TOLERANCE_MS:
        flags.append(Flag.CLOCK_MISMATCH)
    return flags


def image_flags(common: list[str], answer_flags: list[str], shown_ms: float | None, protocol: Protocol,
                role: str) -> str:
    """The stored flags of one shown image: the trial's, its answer's, ``short_display`` (the page
    showed it for other than the protocol's time) and ``repeat`` (a hidden repeat)."""
    flags = common + answer_flags
    if shown_ms is None or abs(shown_ms - protocol.image_ms) > DISPLAY_TOLERANCE_MS:
        flags.append(Flag.SHORT_DISPLAY)
    if role == "repeat":
        flags.append(Flag.REPEAT)
    return ";".join(sorted(set(flags)))


def kept(row_flags: list[str]) -> bool:
    """Whether a trial's answer counts live (adaptive sampling, stop rules): none of its rows has
    a flag in ``NOT_KEPT``."""
    return not any(set(f.split(";")) & set(NOT_KEPT) for f in row_flags)


def mostly_too_fast(too_fast_trials: int, answered_trials: int) -> bool:
    """Whether a participant's answers are mostly ``too_fast`` (more than half of the trials they
    answered): the completion code is then withheld (``incomplete_code`` instead, if set)."""
    return answered_trials > 0 and 2 * too_fast_trials > answered_trials
