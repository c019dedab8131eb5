"""The participant's flow: welcome/consent -> briefing -> timed trials -> done.

Three protocols (``[protocol] kind``; ``evalserver.schedule`` plans them): ``paired`` (two
images one after the other, both rated), ``acr`` (one image, rated), ``pairwise`` (two images
side by side or one after the other, then one choice: "Image 1", "Image 2" or, when offered,
"No preference").

The server owns the state: the trial plan (order of pairs and of the two conditions in each) is
fixed when the participant starts, ``current_trial`` advances only when that trial's ratings
are committed, and a submission for an earlier trial returns what was stored.  Every rating row
names the condition it rated.  Image URLs are opaque per participant and per place shown (an
HMAC of participant, trial and position), so nothing in the URL, the DOM or the headers tells
which method made an image, and an image two conditions share never comes twice under one URL.
Participant pages carry the protocol's participant-facing title, never the study's own title.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from stylestudy.engine.study.manifest import Condition, StudyManifest
from stylestudy.evalserver import adaptive_store, flow_log
from stylestudy.evalserver.db import Participant, Rating, get_setting, utcnow
from stylestudy.evalserver.external_ids import BadExternalId, ids_from, may_resume, participant_id
from stylestudy.evalserver.flags import Flag
from stylestudy.evalserver.i18n import default_text
from stylestudy.evalserver.practice import practice_plan
from stylestudy.evalserver.schedule import seed_for, trial_plan
from stylestudy.evalserver.viewing import (
    VIEWING_KEYS,
    BadViewing,
    image_size,
    parse_environment,
    parse_shown_sizes,
    reference_file,
    screen_out_reason,
    view_settings,
    viewing_flags,
)

participant = Blueprint("participant", __name__)

DISPLAY_TOLERANCE_MS = 50.0
SUBMISSION_KEYS = {"ratings", "choice", "shown_ms", "response_ms", "blur"} | VIEWING_KEYS
NO_PREFERENCE = 0  # the pairwise "choice" value of "No preference"


def _manifest() -> StudyManifest:
    return current_app.config["MANIFEST"]


def _current() -> Participant | None:
    public_id = session.get("participant")
    if not public_id:
        return None
    return g.db.scalar(select(Participant).where(Participant.public_id == public_id))


def _next_page(p: Participant) -> str:
    if p.screened_out:
        return url_for("participant.screened_out")
    if p.completed_at:
        return url_for("participant.done")
    if not p.briefing_done_at:
        return url_for("participant.briefing")
    return url_for("participant.trial_page")


def image_token(public_id: str, place: str) -> str:
    """The opaque URL token of the image shown at ``place`` ("trial:N:P" or "briefing:K")."""
    key = current_app.config["URL_KEY"].encode()
    return hmac.new(key, f"{public_id}:{place}".encode(), hashlib.sha256).hexdigest()[:32]


def _image_url(p: Participant, place: str) -> str:
    return url_for("participant.stimulus", token=image_token(p.public_id, place))


def _shown_now(p: Participant) -> dict[str, Condition]:
    """place -> condition of every image this participant may fetch now: the briefing examples
    and the current trial's two images."""
    m = _manifest()
    places = {f"briefing:{k}": c for k, c in enumerate(m.briefing, start=1)}
    if not p.completed_at:
        plan = p.order[p.current_trial - 1]
        places.update({f"trial:{p.current_trial}:{pos}": m.by_id[cid]
                       for pos, cid in enumerate(plan["conditions"], start=1)})
    return places


def _references_now(p: Participant) -> dict[str, str]:
    """place -> run-relative file of the current trial's reference images (never rated)."""
    m = _manifest()
    if p.completed_at or not p.order or not m.protocol.references:
        return {}
    first = m.by_id[p.order[p.current_trial - 1]["conditions"][0]]
    files = {kind: reference_file(m, first, kind) for kind in m.protocol.references}
    return {f"ref:{p.current_trial}:{kind}": f for kind, f in files.items() if f}


def _title() -> str:
    return default_text(_manifest().protocol.title)


def _is_open() -> bool:
    return get_setting(g.db, "study_open", "1") == "1"


def arrivals() -> flow_log.ArrivalCounter:
    """This app's arrivals not yet stored (``evalserver.flow_log``)."""
    return current_app.extensions.setdefault("stylestudy_arrivals", flow_log.ArrivalCounter())


def _count_arrival() -> None:
    """A browser's first view of the welcome page, for the participant flow; stored with the
    next write, so the welcome page itself writes nothing."""
    if session.get("arrived") or session.get("participant"):
        return
    arrivals().note()
    session["arrived"] = True


@participant.get("/")
def welcome():
    existing = _current()
    if existing and not request.args:
        return redirect(_next_page(existing))
    _count_arrival()
    m = _manifest()
    try:
        ids = {k: v or "" for k, v in ids_from(request.args).items()}
    except BadExternalId as exc:
        return _bad_id(exc)
    trials = current_app.config["TRIALS_PER_PARTICIPANT"]
    minutes = math.ceil(trials * (_displays(m) * m.protocol.image_ms + m.protocol.rating_ms) / 60000) + 2
    return render_template("welcome.html", title=_title(), ids=ids, minutes=minutes, trials=trials,
                           protocol=m.protocol, is_open=_is_open(), question=default_text(m.protocol.question))


def _displays(m: StudyManifest) -> int:
    """How many image displays (of image_seconds each) one trial takes."""
    p = m.protocol
    return 1 if p.kind == "acr" or (p.kind == "pairwise" and p.layout == "side_by_side") else 2


@participant.post("/start")
def start():
    if request.form.get("consent") != "yes":
        _record_refusal(flow_log.NO_CONSENT)
        return render_template("message.html", title=_title(), heading=_("Consent needed"),
                               message=_("Please tick the consent box to take part, then press Start.")), 400
    try:
        ids = ids_from(request.form)  # blank or whitespace-only means "no external id"
    except BadExternalId as exc:
        _record_refusal(flow_log.REFUSED, "invalid_id")
        return _bad_id(exc)
    external_id, source = participant_id(ids)
    p = None
    if external_id:
        p = g.db.scalar(select(Participant).where(Participant.external_id == external_id))
        if p is not None and not _may_resume(p, ids):
            return _taken()
    if p is None:
        if not _is_open():
            _record_refusal(flow_log.REFUSED, "study_closed")
            return render_template("message.html", title=_title(), heading=_("Study closed"),
                                   message=_("This study is not accepting new participants.")), 403
        public_id = secrets.token_hex(16)
        seed = seed_for(external_id or public_id)
        p = Participant(public_id=public_id, external_id=external_id, id_source=source, seed=seed,
                        order=[], current_trial=1,
                        external_study_id=ids["STUDY_ID"], external_session_id=ids["SESSION_ID"],
                        user_agent=request.headers.get("User-Agent", "")[:400])
        env = parse_environment(request.form.get("environment", ""), p.user_agent)
        p.viewport, p.screen, p.pointer = env.size_text("viewport") or None, env.size_text("screen") or None, \
            env.pointer or None
        p.screened_out = screen_out_reason(_manifest(), env)
        g.db.add(p)
        arrivals().store(g.db)
        try:
            g.db.flush()  # the row's id numbers the participant: balanced designs spread items by it
            if p.screened_out:
                p.screened_out_at = utcnow()
            else:
                p.order = practice_plan(_manifest(), seed) + trial_plan(_manifest(), seed, ordinal=p.id - 1)
            g.db.commit()
        except IntegrityError:  # the same external id started twice at once: the winner's, if it may
            g.db.rollback()
            p = g.db.scalar(select(Participant).where(Participant.external_id == external_id))
            if not _may_resume(p, ids):
                return _taken()
    session["participant"] = p.public_id
    session.permanent = True
    return redirect(_next_page(p))


def _record_refusal(event: str, reason: str = "") -> None:
    flow_log.record(g.db, event, reason)
    arrivals().store(g.db)
    g.db.commit()


def _may_resume(p: Participant, ids: dict) -> bool:
    return may_resume(_manifest().protocol.resume, session.get("participant") == p.public_id,
                      p.external_session_id, ids["SESSION_ID"])


def _bad_id(exc: BadExternalId):
    return render_template("message.html", title=_title(), heading=_("This link is not valid"),
                           message=str(exc)), 400


def _taken():
    """A known id from a browser that cannot prove it is that participant's: nothing is stored."""
    return render_template("message.html", title=_title(), heading=_("This id has already started"),
                           message=_("This participant id has already started the study. Please continue in the "
                                     "browser (and window) you started in; if that is not possible, contact the "
                                     "researcher.")), 409


@participant.get("/briefing")
def briefing():
    p = _current()
    if p is None:
        return redirect(url_for("participant.welcome"))
    if p.screened_out:
        return redirect(_next_page(p))
    m = _manifest()
    examples = [{"url": _image_url(p, f"briefing:{k}"), "caption": _("Example %(k)d", k=k)}
                for k in range(1, len(m.briefing) + 1)]
    practice = sum(1 for e in p.order if e.get("role") == "practice")
    return render_template("briefing.html", title=_title(), scale=[default_text(x) for x in m.protocol.scale],
                           examples=examples, protocol=m.protocol, trials=len(p.order) - practice, practice=practice,
                           question=default_text(m.protocol.question))


@participant.post("/briefing")
def briefing_done():
    p = _current()
    if p is None:
        return redirect(url_for("participant.welcome"))
    if not p.briefing_done_at:
        p.briefing_done_at = utcnow()
        g.db.commit()
    return redirect(_next_page(p))


@participant.get("/trial")
def trial_page():
    p = _current()
    if p is None:
        return redirect(url_for("participant.welcome"))
    if p.completed_at or not p.briefing_done_at or p.screened_out:
        return redirect(_next_page(p))
    m = _manifest()
    return render_template("trial.html", title=_title(), protocol=m.protocol, view=view_settings(m),
                           scale=[default_text(x) for x in m.protocol.scale], question=default_text(m.protocol.question))


def _trial_state(p: Participant) -> dict:
    m = _manifest()
    if p.completed_at:
        return {"done": True, "redirect": url_for("participant.done")}
    plan = p.order[p.current_trial - 1]
    kind = plan.get("protocol", "paired")
    state = {
        "done": False, "trial": p.current_trial, "total": len(p.order), "protocol": kind,
        "images": [_image_url(p, f"trial:{p.current_trial}:{pos}") for pos in range(1, len(plan["conditions"]) + 1)],
        "image_ms": m.protocol.image_ms, "rating_ms": m.protocol.rating_ms,
        "scale": [default_text(x) for x in m.protocol.scale], "answer_with_images": m.protocol.answer_with_images,
        "display": m.protocol.display, "practice": plan.get("role") == "practice",
        "practice_total": sum(1 for e in p.order if e.get("role") == "practice"),
        "references": [{"url": _image_url(p, place), "kind": place.rsplit(":", 1)[1]} for place in _references_now(p)],
    }
    if kind == "pairwise":
        state.update(layout=m.protocol.layout, question=default_text(m.protocol.question),
                     no_preference=m.protocol.no_preference)
    if plan.get("attention"):
        n = plan["attention"]
        state["instruction"] = {
            "paired": _("Attention check: please give both images the rating %(n)d.", n=n),
            "acr": _("Attention check: please rate this image %(n)d.", n=n),
            "pairwise": _("Attention check: please choose Image %(n)d.", n=n),
        }[kind]
    return state


@participant.get("/api/state")
def api_state():
    """The current trial; serving it again (a refresh) restarts it and is recorded."""
    p = _current()
    if p is None:
        return jsonify(error="no participant; start from the welcome page"), 401
    if p.screened_out:
        return jsonify(error="screened out", redirect=url_for("participant.screened_out")), 409
    if not p.briefing_done_at:
        return jsonify(error="finish the briefing first", redirect=url_for("participant.briefing")), 409
    if not p.completed_at:  # the serve time belongs to this trial: only while it is still the current one
        try:  # adaptive sampling: the current trial gets its pair when first served
            adaptive_store.assign_current(g.db, p, _manifest())
        except IntegrityError:  # another worker served it at the same moment: use its pair
            g.db.rollback()
            p = _current()
        g.db.execute(update(Participant).where(Participant.id == p.id, Participant.current_trial == p.current_trial)
                     .values(served_count=Participant.served_count + 1, served_at=utcnow()))
        g.db.commit()
    return jsonify(_trial_state(p))


class BadSubmission(ValueError):
    pass


def _milliseconds(body: dict, key: str, count: int) -> list:
    values = body.get(key, [None] * count)
    if not isinstance(values, list) or len(values) != count:
        raise BadSubmission(f"{key} must be a list of {count} numbers or nulls")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 3.6e6):
            raise BadSubmission(f"{key} values must be milliseconds (0..3600000) or null")
    return values


def _validate(body, kind: str, images: int, scale_points: int, no_preference: bool) -> dict:
    """The submission of one trial: ``ratings`` (one per image, paired and acr) or ``choice``
    (pairwise: 1, 2, 0 = no preference when offered, or null), ``shown_ms`` per image,
    ``response_ms`` per answer, ``blur``."""
    if not isinstance(body, dict):
        raise BadSubmission("body must be a JSON object")
    unknown = set(body) - SUBMISSION_KEYS
    if unknown:
        raise BadSubmission(f"unknown field(s): {', '.join(sorted(unknown))}")
    out = {"blur": body.get("blur", False)}
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


def _attention_failed(plan: dict, answer: int | None) -> bool:
    """One rule for every protocol: an attention check passes only with the answer it asked
    for; a timeout (None) or "No preference" (0) fails it."""
    return bool(plan.get("attention")) and answer != plan["attention"]


def _answers(body: dict, plan: dict, kind: str, gold: tuple[str, list[int]], conditions: list[Condition]) -> list:
    """(rating to store, flags) per shown image."""
    if kind == "pairwise":
        choice = body["choice"]
        failed = [Flag.ATTENTION_FAILED] if _attention_failed(plan, choice) else []
        if choice is None:
            return [(None, [Flag.TIMEOUT, *failed])] * 2
        if choice == NO_PREFERENCE:
            return [(0, ["no_preference", *failed])] * 2
        return [(int(choice == pos), list(failed)) for pos in (1, 2)]
    out = []
    for rating, c in zip(body["ratings"], conditions):
        flags = [Flag.TIMEOUT] if rating is None else []
        if _attention_failed(plan, rating):
            flags.append(Flag.ATTENTION_FAILED)
        if rating is not None and c.method == gold[0] and rating not in gold[1] and not plan.get("attention"):
            flags.append(Flag.GOLD_FAILED)
        out.append((rating, flags))
    return out


def _acknowledged(p: Participant, trial: int, duplicate: bool):
    """The participant's receipt: stored (or already stored), and what comes next.  Nothing of
    what was stored (flags, roles, QC state) is in it: a participant must not learn that an
    image was a gold item, a trial a hidden repeat or an answer too fast."""
    return jsonify(ok=True, trial=trial, duplicate=duplicate, **_progress(p))


@participant.post("/api/trials/<int:trial>")
def submit(trial: int):
    p = _current()
    if p is None:
        return jsonify(error="unknown participant; start from the welcome page"), 401
    if p.screened_out:  # told so already by the page they were sent to; nothing more is said
        return jsonify(error="screened out", redirect=url_for("participant.screened_out")), 409
    if not 1 <= trial <= len(p.order):
        return jsonify(error=f"there is no trial {trial} (trials are 1..{len(p.order)})"), 404
    if trial < p.current_trial:
        return _acknowledged(p, trial, duplicate=True)
    if p.completed_at or trial != p.current_trial or not p.briefing_done_at:
        return jsonify(error=f"trial {trial} is not the current trial ({p.current_trial})"), 409
    if p.served_at is None:  # cleared when a trial is answered: this one was never shown
        return jsonify(error=f"trial {trial} has not been shown yet; load it (/api/state) first"), 409
    m = _manifest()
    plan = p.order[trial - 1]
    kind = plan.get("protocol", "paired")
    conditions = [m.by_id[cid] for cid in plan["conditions"]]
    if not conditions:
        return jsonify(error=f"trial {trial} has not been served yet; fetch /api/state first"), 409
    try:
        body = _validate(request.get_json(force=True, silent=True), kind, len(conditions), len(m.protocol.scale),
                         m.protocol.no_preference)
    except BadSubmission as exc:
        return jsonify(error=str(exc)), 400
    except RecursionError:  # thousands of nested brackets: the JSON parser gives up
        return jsonify(error="body must be a JSON object, not deeply nested lists"), 400
    served_at = p.served_at
    now = utcnow()
    common = []
    if body["blur"]:
        common.append("blur")
    if p.served_count > 1:
        common.append("restarted")
    common += body["viewing_flags"]
    served = served_at if served_at.tzinfo else served_at.replace(tzinfo=now.tzinfo)
    if (now - served).total_seconds() * 1000 < _least_ms(m, body["shown_ms"]) - DISPLAY_TOLERANCE_MS:
        common.append(Flag.TOO_FAST)  # the server saw less time than the displays need or were said to take
    answers = _answers(body, plan, kind, (m.protocol.gold_method, m.protocol.gold_ratings), conditions)
    role = plan.get("role", "attention" if plan.get("attention") else "rated")
    block_of = {"attention": "attention", "practice": "practice"}
    for position, (c, (rating, answer_flags)) in enumerate(zip(conditions, answers), start=1):
        shown = body["shown_ms"][position - 1]
        flags = common + answer_flags
        if shown is None or abs(shown - m.protocol.image_ms) > DISPLAY_TOLERANCE_MS:
            flags.append(Flag.SHORT_DISPLAY)
        if role == "repeat":
            flags.append(Flag.REPEAT)
        response_ms = body["response_ms"][min(position, len(body["response_ms"])) - 1]
        size = body["sizes"][position - 1]
        width, height = image_size(m, c)
        g.db.add(Rating(
            participant_id=p.id, trial=trial, position=position, pair_id=plan["pair_id"], condition_id=c.id,
            image_id=c.image_id, method=c.method, block=block_of.get(role, c.block), row=c.row,
            row_label=c.row_label, column=c.column, column_label=c.column_label, rating=rating,
            response_ms=response_ms, shown_ms=shown, flags=";".join(sorted(set(flags))),
            attention=role == "attention", served_at=served_at, rated_at=now,
            shown_width=size[0] if size else None, shown_height=size[1] if size else None,
            device_pixel_ratio=body["dpr"], image_width=width, image_height=height,
        ))
    try:
        ends = _attention_screens_out(p, m, role, answers)
        advanced = g.db.execute(update(Participant).where(Participant.id == p.id, Participant.current_trial == trial)
                                .values(current_trial=trial + 1, served_count=0, served_at=None,
                                        completed_at=now if trial == len(p.order) and not ends else None,
                                        **({"screened_out": "attention", "screened_out_at": now} if ends else {})))
        if advanced.rowcount != 1:
            raise IntegrityError("trial already advanced", None, None)
        adaptive_store.record_outcome(g.db, p, trial, plan, body.get("choice"), m)
        g.db.commit()  # committed before the response is sent
        duplicate = False
        adaptive_store.close_if_done(g.db, m)
    except IntegrityError:  # a concurrent duplicate of this submission won: report what it stored
        g.db.rollback()
        duplicate = True
    g.db.refresh(p)
    return _acknowledged(p, trial, duplicate)


def _least_ms(m: StudyManifest, shown_ms: list) -> float:
    """The least time a trial takes between being served and answered: its displays as the
    protocol sets them, or as the page measured them when it says they took longer."""
    measured = [v for v in shown_ms if v is not None]
    together = _displays(m) == 1  # one display of every image at once (acr, side by side)
    said = (max(measured) if together else sum(measured)) if measured else 0.0
    return max(_displays(m) * m.protocol.image_ms, said)


def _attention_screens_out(p: Participant, m: StudyManifest, role: str, answers: list) -> bool:
    """``attention_screen_out = N``: the N-th failed attention check ends the study for this
    participant (Prolific's "screened out" return, no completion code); the acknowledgement
    stays bare, the next page is the screen-out page."""
    limit = m.protocol.attention_screen_out
    if not limit or role != "attention" or not any(Flag.ATTENTION_FAILED in flags for _, flags in answers):
        return False
    before = g.db.scalar(select(func.count(func.distinct(Rating.trial))).where(
        Rating.participant_id == p.id, Rating.attention.is_(True), Rating.flags.contains(Flag.ATTENTION_FAILED.value),
        Rating.trial != p.current_trial))
    return before + 1 >= limit


def _progress(p: Participant) -> dict:
    if p.completed_at:
        return {"done": True, "next_trial": None, "redirect": url_for("participant.done")}
    return {"done": False, "next_trial": p.current_trial, "redirect": None}


@participant.get("/s/<token>")
def stimulus(token: str):
    """An image, only to its participant, only while it is in use."""
    p = _current()
    if p is None or len(token) != 32:
        abort(404)
    for place, condition in _shown_now(p).items():
        if hmac.compare_digest(image_token(p.public_id, place), token):
            response = send_file(open(_manifest().image_file(condition), "rb"), mimetype="image/png",
                                 conditional=False, etag=False, last_modified=None, max_age=0)
            response.headers["Cache-Control"] = "no-store"
            return response
    for place, path in _references_now(p).items():
        if hmac.compare_digest(image_token(p.public_id, place), token):
            file = _manifest().run_dir / path  # (an absolute path stays itself)
            kind = "image/jpeg" if file.suffix.lower() in (".jpg", ".jpeg") else "image/png"
            response = send_file(open(file, "rb"), mimetype=kind, conditional=False, etag=False,
                                 last_modified=None, max_age=0)
            response.headers["Cache-Control"] = "no-store"
            return response
    abort(404)


@participant.get("/done")
def done():
    p = _current()
    if p is None or not p.completed_at:
        return redirect(url_for("participant.welcome"))
    m = _manifest()
    return render_template("done.html", title=_title(), code=m.protocol.completion_code,
                           redirect_url=m.protocol.redirect_url)


@participant.get("/screened-out")
def screened_out():
    """A gate refused this participant: say why in plain words, give the screen-out code and send
    them back (Prolific's "screened out" return) when the study names where."""
    p = _current()
    if p is None or not p.screened_out:
        return redirect(url_for("participant.welcome"))
    m = _manifest()
    return render_template("screened_out.html", title=_title(), reason=p.screened_out,
                           code=m.protocol.screen_out_code, redirect_url=m.protocol.screen_out_url)


@participant.post("/api/environment")
def environment():
    """The trial page's report of the window it starts the trials in (after the fit check)."""
    p = _current()
    if p is None:
        return jsonify(error="no participant; start from the welcome page"), 401
    env = parse_environment(request.get_json(force=True, silent=True), p.user_agent)
    values = {k: v for k, v in (("viewport", env.size_text("viewport")), ("screen", env.size_text("screen")),
                                ("pointer", env.pointer)) if v}
    if values and not p.screened_out:
        g.db.execute(update(Participant).where(Participant.id == p.id).values(**values))
        g.db.commit()
    return jsonify(stored=values)
