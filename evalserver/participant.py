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
import io
import math
import random
import secrets
import time

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
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from stylestudy.engine.study.manifest import Condition, StudyManifest
from stylestudy.evalserver import adaptive_store, answer_rules, flow_log
from stylestudy.evalserver.db import ImageFetch, Participant, Rating, get_setting, utcnow
from stylestudy.evalserver.external_ids import BadExternalId, ids_from, joins_without_id, may_resume, participant_id
from stylestudy.evalserver.flags import Flag, page_flag_names
from stylestudy.evalserver.i18n import default_text
from stylestudy.evalserver.practice import practice_plan
from stylestudy.evalserver.schedule import seed_for, trial_plan
from stylestudy.evalserver.stimulus_bytes import reencoded
from stylestudy.evalserver.viewing import (
    BadViewing,
    image_size,
    parse_environment,
    reference_file,
    screen_out_reason,
    view_settings,
)

participant_pages = Blueprint("participant", __name__)

def _manifest() -> StudyManifest:
    return current_app.config["MANIFEST"]


def _current() -> Participant | None:
    public_id = session.get("participant")
    if not public_id:
        return None
    return g.db.scalar(select(Participant).where(Participant.public_id == public_id))


def _next_page(participant: Participant) -> str:
    if participant.screened_out:
        return url_for("participant.screened_out")
    if participant.completed_at:
        return url_for("participant.done")
    if not participant.briefing_done_at:
        return url_for("participant.briefing")
    return url_for("participant.trial_page")


def image_token(public_id: str, place: str) -> str:
    """The opaque URL token of the image shown at ``place`` ("trial:N:P" or "briefing:K")."""
    key = current_app.config["URL_KEY"].encode()
    return hmac.new(key, f"{public_id}:{place}".encode(), hashlib.sha256).hexdigest()[:32]


def _image_url(participant: Participant, place: str) -> str:
    return url_for("participant.stimulus", token=image_token(participant.public_id, place))


def _shown_now(participant: Participant) -> dict[str, Condition]:
    """place -> condition of every image this participant may fetch now: the briefing examples
    and the current trial's two images."""
    m = _manifest()
    places = {f"briefing:{k}": c for k, c in enumerate(m.briefing, start=1)}
    if not participant.completed_at:
        plan = participant.order[participant.current_trial - 1]
        places.update({f"trial:{participant.current_trial}:{pos}": m.by_id[cid]
                       for pos, cid in enumerate(plan["conditions"], start=1)})
    return places


def _references_now(participant: Participant) -> dict[str, str]:
    """place -> run-relative file of the current trial's reference images (never rated)."""
    m = _manifest()
    if participant.completed_at or not participant.order or not m.protocol.references:
        return {}
    first = m.by_id[participant.order[participant.current_trial - 1]["conditions"][0]]
    files = {kind: reference_file(m, first, kind) for kind in m.protocol.references}
    shown = {f"ref:{participant.current_trial}:{kind}": f for kind, f in files.items() if f}
    if not participant.briefing_done_at:  # the briefing introduces them with the first trial's
        shown.update({f"ref:briefing:{kind}": f for kind, f in files.items() if f})
    return shown


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


@participant_pages.get("/")
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
    minutes = math.ceil(trials * (answer_rules.displays(m.protocol) * m.protocol.image_ms + m.protocol.rating_ms) / 60000) + 2
    return render_template("welcome.html", title=_title(), ids=ids, minutes=minutes, trials=trials,
                           protocol=m.protocol, is_open=_is_open(), question=default_text(m.protocol.question))


@participant_pages.post("/start")
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
    participant = None
    if external_id:
        participant = g.db.scalar(select(Participant).where(Participant.external_id == external_id))
        if participant is not None and not _may_resume(participant, ids):
            return _taken(participant)
    elif not joins_without_id(_manifest().protocol):
        _record_refusal(flow_log.REFUSED, "no_id")
        return render_template("message.html", title=_title(), heading=_("This link is not valid"),
                               message=_("This link has no participant id. Please open the study from the link "
                                         "you were given.")), 400
    if participant is None:
        if not _is_open():
            _record_refusal(flow_log.REFUSED, "study_closed")
            return render_template("message.html", title=_title(), heading=_("Study closed"),
                                   message=_("This study is not accepting new participants.")), 403
        if not _join_allowed():
            _record_refusal(flow_log.REFUSED, "join_limit")
            return render_template("message.html", title=_title(), heading=_("One moment, please"),
                                   message=_("The study is busy. Please wait a few seconds and reload this page; "
                                             "nothing is lost.")), 429
        public_id = secrets.token_hex(16)
        seed = seed_for(external_id or public_id)
        participant = Participant(public_id=public_id, external_id=external_id, id_source=source, seed=seed,
                        order=[], current_trial=1,
                        external_study_id=ids["STUDY_ID"], external_session_id=ids["SESSION_ID"],
                        user_agent=request.headers.get("User-Agent", "")[:400])
        try:
            env = parse_environment(request.form.get("environment", ""), participant.user_agent)
        except BadViewing as exc:
            _record_refusal(flow_log.REFUSED, "bad_environment")
            return render_template("message.html", title=_title(), heading=_("This link is not valid"),
                                   message=str(exc)), 400
        participant.viewport = env.size_text("viewport") or None
        participant.screen, participant.pointer = env.size_text("screen") or None, env.pointer or None
        participant.screened_out = screen_out_reason(_manifest(), env)
        g.db.add(participant)
        arrivals().store(g.db)
        try:
            g.db.flush()  # the row's id numbers the participant: balanced designs spread items by it
            if participant.screened_out:
                participant.screened_out_at = utcnow()
            else:
                participant.order = (practice_plan(_manifest(), seed)
                                     + trial_plan(_manifest(), seed, ordinal=participant.id - 1))
            g.db.commit()
        except IntegrityError:  # the same external id started twice at once: the winner's, if it may
            g.db.rollback()
            participant = g.db.scalar(select(Participant).where(Participant.external_id == external_id))
            if not _may_resume(participant, ids):
                return _taken(participant)
    session["participant"] = participant.public_id
    session.permanent = True
    return redirect(_next_page(participant))


def _join_allowed() -> bool:
    """``JOIN_LIMIT`` (joins, seconds): whether this address may start one more participant now
    (a sliding window per worker process); the join is counted when allowed."""
    limit = current_app.config.get("JOIN_LIMIT")
    if not limit:
        return True
    joins, seconds = limit
    windows: dict = current_app.extensions.setdefault("stylestudy_joins", {})
    now = time.monotonic()
    recent = [t for t in windows.get(request.remote_addr or "", []) if now - t < seconds]
    allowed = len(recent) < joins
    windows[request.remote_addr or ""] = recent + [now] if allowed else recent
    return allowed


def _record_refusal(event: str, reason: str = "") -> None:
    flow_log.record(g.db, event, reason)
    arrivals().store(g.db)
    g.db.commit()


def _may_resume(participant: Participant, ids: dict) -> bool:
    return may_resume(_manifest().protocol.resume, session.get("participant") == participant.public_id,
                      participant.external_session_id, ids["SESSION_ID"])


def _bad_id(exc: BadExternalId):
    return render_template("message.html", title=_title(), heading=_("This link is not valid"),
                           message=str(exc)), 400


def _taken(participant: Participant):
    """A known id from a browser that cannot prove it is that participant's: nothing is stored.
    A screened-out id is told it was screened out (without the screen-out code: that went to
    the browser the server screened out), not to go back to the browser it started in."""
    if participant.screened_out:
        m = _manifest()
        return render_template("screened_out.html", title=_title(), reason=participant.screened_out, code="",
                               again=True, redirect_url=m.protocol.screen_out_url), 409
    return render_template("message.html", title=_title(), heading=_("This id has already started"),
                           message=_("This participant id has already started the study. Please continue in the "
                                     "browser (and window) you started in; if that is not possible, contact the "
                                     "researcher.")), 409


@participant_pages.get("/briefing")
def briefing():
    participant = _current()
    if participant is None:
        return redirect(url_for("participant.welcome"))
    if participant.screened_out:
        return redirect(_next_page(participant))
    m = _manifest()
    order = list(range(1, len(m.briefing) + 1))
    random.Random(participant.seed).shuffle(order)  # per participant: the manifest's (method) order is no tell
    examples = [{"url": _image_url(participant, f"briefing:{k}"), "caption": _("Example %(k)d", k=shown)}
                for shown, k in enumerate(order, start=1)]
    practice = sum(1 for e in participant.order if e.get("role") == "practice")
    captions = {"style": _("Style painting"), "content": _("Original photo")}
    references = [{"url": _image_url(participant, place), "caption": captions[place.rsplit(":", 1)[1]]}
                  for place in _references_now(participant) if place.startswith("ref:briefing:")]
    return render_template("briefing.html", title=_title(), scale=[default_text(x) for x in m.protocol.scale],
                           examples=examples, protocol=m.protocol, trials=len(participant.order) - practice,
                           practice=practice,
                           references=references,
                           question=default_text(m.protocol.question))


@participant_pages.post("/briefing")
def briefing_done():
    participant = _current()
    if participant is None:
        return redirect(url_for("participant.welcome"))
    if not participant.briefing_done_at:
        participant.briefing_done_at = utcnow()
        g.db.commit()
    return redirect(_next_page(participant))


@participant_pages.get("/trial")
def trial_page():
    participant = _current()
    if participant is None:
        return redirect(url_for("participant.welcome"))
    if participant.completed_at or not participant.briefing_done_at or participant.screened_out:
        return redirect(_next_page(participant))
    m = _manifest()
    return render_template("trial.html", title=_title(), protocol=m.protocol, view=view_settings(m),
                           page_flags=page_flag_names(),
                           scale=[default_text(x) for x in m.protocol.scale], question=default_text(m.protocol.question))


def _trial_state(participant: Participant) -> dict:
    m = _manifest()
    if participant.completed_at:
        return {"done": True, "redirect": url_for("participant.done")}
    plan = participant.order[participant.current_trial - 1]
    kind = plan.get("protocol", "paired")
    state = {
        "done": False, "trial": participant.current_trial, "total": len(participant.order), "protocol": kind,
        "images": [_image_url(participant, f"trial:{participant.current_trial}:{pos}")
                   for pos in range(1, len(plan["conditions"]) + 1)],
        "image_ms": m.protocol.image_ms, "rating_ms": m.protocol.rating_ms,
        "scale": [default_text(x) for x in m.protocol.scale], "answer_with_images": m.protocol.answer_with_images,
        "display": m.protocol.display, "practice": plan.get("role") == "practice",
        "practice_total": sum(1 for e in participant.order if e.get("role") == "practice"),
        "references": [{"url": _image_url(participant, place), "kind": place.rsplit(":", 1)[1]}
                       for place in _references_now(participant)],
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


def _fetched_since_served(participant: Participant) -> bool:
    """Whether an image (or reference) of the current trial was fetched since it was served."""
    n = participant.current_trial
    return g.db.scalar(select(ImageFetch.place).where(
        ImageFetch.participant_id == participant.id, ImageFetch.fetched_at >= participant.served_at,
        or_(ImageFetch.place.startswith(f"trial:{n}:"), ImageFetch.place.startswith(f"ref:{n}:"))).limit(1)) is not None


def _needs_serving(participant: Participant) -> bool:
    """Whether serving the current trial now changes anything: its first serve (an adaptive one
    also gets its pair), or a serve after its images were fetched (a reload: ``restarted``).
    A request repeated before that showed nothing new, so it writes nothing."""
    if participant.completed_at:
        return False
    entry = participant.order[participant.current_trial - 1]
    if adaptive_store.is_adaptive(entry) and not entry.get("conditions"):
        return True
    return _serve_is_due(participant)


def _serve_is_due(participant: Participant) -> bool:
    return participant.served_at is None or _fetched_since_served(participant)


@participant_pages.get("/api/state")
def api_state():
    """The current trial.  Its first serve is recorded (``served_at``); serving it again after its
    images were fetched (a refresh) restarts it and is recorded; any other request only reads."""
    participant = _current()
    if participant is None:
        return jsonify(error="no participant; start from the welcome page"), 401
    if participant.screened_out:
        return jsonify(error="screened out", redirect=url_for("participant.screened_out")), 409
    if not participant.briefing_done_at:
        return jsonify(error="finish the briefing first", redirect=url_for("participant.briefing")), 409
    if _needs_serving(participant):
        g.db.close()  # the read-only transaction ends; a writing one (SQLite: BEGIN IMMEDIATE) decides again
        g.db = current_app.config["DB_SESSIONMAKER"]()
        participant = _current()
        if _needs_serving(participant):
            try:  # adaptive sampling: the current trial gets its pair when first served
                adaptive_store.assign_current(g.db, participant, _manifest())
            except IntegrityError:  # another worker served it at the same moment: use its pair
                g.db.rollback()
                participant = _current()
            if _serve_is_due(participant):  # (not when that other worker's serve is this one)
                same_serving = (Participant.served_at.is_(None) if participant.served_at is None
                                else Participant.served_at == participant.served_at)  # a concurrent serve counts once
                g.db.execute(update(Participant).where(Participant.id == participant.id,
                                                       Participant.current_trial == participant.current_trial,
                                                       same_serving)
                             .values(served_count=Participant.served_count + 1, served_at=utcnow()))
            g.db.commit()
    return jsonify(_trial_state(participant))


def _acknowledged(participant: Participant, trial: int, duplicate: bool):
    """The participant's receipt: stored (or already stored), and what comes next.  Nothing of
    what was stored (flags, roles, QC state) is in it: a participant must not learn that an
    image was a gold item, a trial a hidden repeat or an answer too fast."""
    return jsonify(ok=True, trial=trial, duplicate=duplicate, **_progress(participant))


@participant_pages.post("/api/trials/<int:trial>")
def submit(trial: int):
    participant = _current()
    if participant is None:
        return jsonify(error="unknown participant; start from the welcome page"), 401
    if participant.screened_out:  # told so already by the page they were sent to; nothing more is said
        return jsonify(error="screened out", redirect=url_for("participant.screened_out")), 409
    if not 1 <= trial <= len(participant.order):
        return jsonify(error=f"there is no trial {trial} (trials are 1..{len(participant.order)})"), 404
    if trial < participant.current_trial:
        return _acknowledged(participant, trial, duplicate=True)
    if participant.completed_at or trial != participant.current_trial or not participant.briefing_done_at:
        return jsonify(error=f"trial {trial} is not the current trial ({participant.current_trial})"), 409
    if participant.served_at is None:  # cleared when a trial is answered: this one was never shown
        return jsonify(error=f"trial {trial} has not been shown yet; load it (/api/state) first"), 409
    m = _manifest()
    plan = participant.order[trial - 1]
    kind = plan.get("protocol", "paired")
    conditions = [m.by_id[cid] for cid in plan["conditions"]]
    if not conditions:
        return jsonify(error=f"trial {trial} has not been served yet; fetch /api/state first"), 409
    try:
        body = answer_rules.validate(request.get_json(force=True, silent=True), kind, len(conditions),
                                     len(m.protocol.scale), m.protocol.no_preference)
    except answer_rules.BadSubmission as exc:
        return jsonify(error=str(exc)), 400
    except RecursionError:  # thousands of nested brackets: the JSON parser gives up
        return jsonify(error="body must be a JSON object, not deeply nested lists"), 400
    served_at = participant.served_at
    now = utcnow()
    served = served_at if served_at.tzinfo else served_at.replace(tzinfo=now.tzinfo)
    common = answer_rules.trial_flags(body, participant.served_count, (now - served).total_seconds() * 1000, m.protocol)
    answers = answer_rules.answers(body, plan, kind, (m.protocol.gold_method, m.protocol.gold_ratings), conditions)
    role = plan.get("role", "attention" if plan.get("attention") else "rated")
    block_of = {"attention": "attention", "practice": "practice"}
    row_flags = [answer_rules.image_flags(common, answer[1], shown, m.protocol, role)
                 for answer, shown in zip(answers, body["shown_ms"])]
    for position, (c, (rating, _flags), flags) in enumerate(zip(conditions, answers, row_flags), start=1):
        shown = body["shown_ms"][position - 1]
        response_ms = body["response_ms"][min(position, len(body["response_ms"])) - 1]
        size = body["sizes"][position - 1]
        width, height = image_size(m, c)
        g.db.add(Rating(
            participant_id=participant.id, trial=trial, position=position, pair_id=plan["pair_id"], condition_id=c.id,
            image_id=c.image_id, method=c.method, block=block_of.get(role, c.block), row=c.row,
            row_label=c.row_label, column=c.column, column_label=c.column_label, rating=rating,
            response_ms=response_ms, shown_ms=shown, flags=flags,
            attention=role == "attention", served_at=served_at, rated_at=now,
            shown_width=size[0] if size else None, shown_height=size[1] if size else None,
            device_pixel_ratio=body["dpr"], image_width=width, image_height=height,
        ))
    try:
        ends = _attention_screens_out(participant, m, role, answers)
        advanced = g.db.execute(update(Participant).where(Participant.id == participant.id,
                                                          Participant.current_trial == trial)
                                .values(current_trial=trial + 1, served_count=0, served_at=None,
                                        completed_at=now if trial == len(participant.order) and not ends else None,
                                        **({"screened_out": "attention", "screened_out_at": now} if ends else {})))
        if advanced.rowcount != 1:
            raise IntegrityError("trial already advanced", None, None)
        adaptive_store.record_outcome(g.db, participant, trial, plan, body.get("choice"), m,
                                      answer_rules.kept(row_flags))
        if ends:  # a screened-out participant's answers leave the live state
            adaptive_store.withdraw(g.db, participant.id)
        g.db.commit()  # committed before the response is sent
        duplicate = False
        adaptive_store.close_if_done(g.db, m)
    except IntegrityError:  # a concurrent duplicate of this submission won: report what it stored
        g.db.rollback()
        duplicate = True
    g.db.refresh(participant)
    return _acknowledged(participant, trial, duplicate)


def _attention_screens_out(participant: Participant, m: StudyManifest, role: str, answers: list) -> bool:
    """``attention_screen_out = N``: the N-th failed attention check ends the study for this
    participant (Prolific's "screened out" return, no completion code); the acknowledgement
    stays bare, the next page is the screen-out page."""
    limit = m.protocol.attention_screen_out
    if not limit or role != "attention" or not any(Flag.ATTENTION_FAILED in flags for _, flags in answers):
        return False
    before = g.db.scalar(select(func.count(func.distinct(Rating.trial))).where(
        Rating.participant_id == participant.id, Rating.attention.is_(True),
        Rating.flags.contains(Flag.ATTENTION_FAILED.value),
        Rating.trial != participant.current_trial))
    return before + 1 >= limit


def _progress(participant: Participant) -> dict:
    if participant.completed_at:
        return {"done": True, "next_trial": None, "redirect": url_for("participant.done")}
    return {"done": False, "next_trial": participant.current_trial, "redirect": None}


def _first_fetch(participant: Participant, place: str) -> bool:
    """Whether this is the first fetch of a trial's image (or reference) since the trial was
    served; recorded.  Briefing examples may be fetched again (the briefing page can reload)."""
    if place.startswith("briefing:"):
        return True
    if participant.served_at is None:  # not served (yet, or again): nothing of it is on screen
        return False
    now = utcnow()
    if g.db.get(ImageFetch, (participant.id, place)) is None:
        g.db.add(ImageFetch(participant_id=participant.id, place=place, fetched_at=now))
        try:
            g.db.commit()
            return True
        except IntegrityError:  # a second fetch at the same moment
            g.db.rollback()
            return False
    fresh = g.db.execute(update(ImageFetch).where(ImageFetch.participant_id == participant.id,
                                                  ImageFetch.place == place,
                                                  ImageFetch.fetched_at < participant.served_at).values(fetched_at=now))
    g.db.commit()
    return fresh.rowcount == 1


def _is_repeat(participant: Participant, place: str) -> bool:
    kind, _, rest = place.partition(":")
    return kind == "trial" and participant.order[int(rest.split(":")[0]) - 1].get("role") == "repeat"


@participant_pages.get("/s/<token>")
def stimulus(token: str):
    """An image, only to its participant, only while it is in use, once per serving of its trial
    (a second fetch is 410: the page already has it; ``restarted`` trials fetch afresh)."""
    participant = _current()
    if participant is None or len(token) != 32:
        abort(404)
    for place, condition in _shown_now(participant).items():
        if hmac.compare_digest(image_token(participant.public_id, place), token):
            if not _first_fetch(participant, place):
                abort(410)
            data = _manifest().image_file(condition).read_bytes()
            if _is_repeat(participant, place):  # the same pixels in other bytes: hashing cannot spot a hidden repeat
                data = reencoded(data)
            response = send_file(io.BytesIO(data), mimetype="image/png",
                                 conditional=False, etag=False, last_modified=None, max_age=0)
            response.headers["Cache-Control"] = "no-store"
            return response
    for place, path in _references_now(participant).items():
        if hmac.compare_digest(image_token(participant.public_id, place), token):
            if not _first_fetch(participant, place):
                abort(410)
            file = _manifest().run_dir / path  # (an absolute path stays itself)
            kind = "image/jpeg" if file.suffix.lower() in (".jpg", ".jpeg") else "image/png"
            response = send_file(open(file, "rb"), mimetype=kind, conditional=False, etag=False,
                                 last_modified=None, max_age=0)
            response.headers["Cache-Control"] = "no-store"
            return response
    abort(404)


@participant_pages.get("/done")
def done():
    participant = _current()
    if participant is None or not participant.completed_at:
        return redirect(url_for("participant.welcome"))
    m = _manifest()
    if _mostly_too_fast(participant):  # a script, or someone who clicked through: no completion code, no return link
        return render_template("done.html", title=_title(), code=m.protocol.incomplete_code, incomplete=True,
                               redirect_url="")
    return render_template("done.html", title=_title(), code=m.protocol.completion_code, incomplete=False,
                           redirect_url=m.protocol.redirect_url)


def _mostly_too_fast(participant: Participant) -> bool:
    trials = func.count(func.distinct(Rating.trial))
    answered = g.db.scalar(select(trials).where(Rating.participant_id == participant.id))
    too_fast = g.db.scalar(select(trials).where(Rating.participant_id == participant.id, Rating.flags.contains(Flag.TOO_FAST.value)))
    return answer_rules.mostly_too_fast(too_fast, answered)


@participant_pages.get("/screened-out")
def screened_out():
    """A gate refused this participant: say why in plain words, give the screen-out code (only to
    a participant with a participant id: a code is for returning that id's submission) and send
    them back (Prolific's "screened out" return) when the study names where."""
    participant = _current()
    if participant is None or not participant.screened_out:
        return redirect(url_for("participant.welcome"))
    m = _manifest()
    return render_template("screened_out.html", title=_title(), reason=participant.screened_out, again=False,
                           code=m.protocol.screen_out_code if participant.external_id else "",
                           redirect_url=m.protocol.screen_out_url)


@participant_pages.post("/api/environment")
def environment():
    """The trial page's report of the window it starts the trials in (after the fit check)."""
    participant = _current()
    if participant is None:
        return jsonify(error="no participant; start from the welcome page"), 401
    try:
        env = parse_environment(request.get_json(force=True, silent=True), participant.user_agent)
    except RecursionError:  # the JSON parser gave up on thousands of nested brackets
        return jsonify(error="the environment must be a JSON object, not deeply nested lists"), 400
    values = {k: v for k, v in (("viewport", env.size_text("viewport")), ("screen", env.size_text("screen")),
                                ("pointer", env.pointer)) if v}
    if values and not participant.screened_out:
        g.db.execute(update(Participant).where(Participant.id == participant.id).values(**values))
        g.db.commit()
    return jsonify(stored=values)
