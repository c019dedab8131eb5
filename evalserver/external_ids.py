"""External ids (a recruitment platform's participant, study and session ids) and who may resume.

An id is letters, digits and ``-_.:@``, at most 128 characters, matched whole: Prolific's
24-hex ids, e-mail-like panel ids and UUIDs pass; a formula (``=cmd|...``), markup, spaces
inside or a newline do not, so nothing an id carries can act in a spreadsheet or a page.

A known participant id resumes only with proof: the signed cookie of the browser that started
(``resume = "cookie"``, the default), or also the same external session id
(``resume = "cookie_or_session"``: Prolific's ``SESSION_ID`` is per attempt and not shown to
other people).  Knowing someone's participant id alone never takes over their session.

A participant id is normalised before it is looked up or stored (``normalised_participant_id``):
surrounding whitespace and trailing ``-_.:@`` dropped, letters lower-cased (Prolific's ids are
lower-case hex), so ``ABC``, ``abc_`` and `` abc `` are one participant: a screened-out id cannot
come back as a variant of itself.  Joining with no participant id at all is off by default for a
study with a completion code (``[protocol] allow_no_id``).
"""

from __future__ import annotations

import hmac
import re

EXTERNAL_ID = re.compile(r"[A-Za-z0-9\-_.:@]{1,128}")
MAX_LENGTH = 128
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "pid")  # first one given wins
OTHER_PARAMS = ("STUDY_ID", "SESSION_ID")
TRAILING = "-_.:@"  # dropped from the end of a participant id


class BadExternalId(ValueError):
    """An id outside the allowed set; the message says which parameter and what is allowed."""


def clean_id(param: str, raw: str | None) -> str | None:
    """The id in ``raw`` without surrounding whitespace, or None when blank; BadExternalId if it
    is not letters, digits and ``-_.:@`` (at most 128)."""
    value = (raw or "").strip()
    if not value:
        return None
    if not EXTERNAL_ID.fullmatch(value):
        raise BadExternalId(f"The link's {param} is not a valid id (letters, digits and - _ . : @ only, at most "
                            f"{MAX_LENGTH} characters). Please open the study from the link you were given.")
    return value


def normalised_participant_id(param: str, value: str | None) -> str | None:
    """The participant id ``value`` (already ``clean_id``-ed) as stored: without trailing
    ``-_.:@``, lower-cased; BadExternalId when nothing is left."""
    if value is None:
        return None
    out = value.rstrip(TRAILING).lower()
    if not out:
        raise BadExternalId(f"The link's {param} is not a valid id (it has no letters or digits). Please open the "
                            "study from the link you were given.")
    return out


def ids_from(values) -> dict[str, str | None]:
    """Every external id parameter in ``values`` (a form or query), checked; participant ids
    normalised."""
    ids = {param: clean_id(param, values.get(param)) for param in PARTICIPANT_PARAMS + OTHER_PARAMS}
    for param in PARTICIPANT_PARAMS:
        ids[param] = normalised_participant_id(param, ids[param])
    return ids


def joins_without_id(protocol) -> bool:  # noqa: ANN001 - a schema.Protocol
    """Whether a participant may join with no participant id: ``allow_no_id`` when the study file
    sets it, else only for a study without a completion code (a code is what is paid for, and
    an anonymous join could take it again and again)."""
    return protocol.allow_no_id if protocol.allow_no_id is not None else not protocol.completion_code


def participant_id(ids: dict[str, str | None]) -> tuple[str | None, str | None]:
    """(id, the parameter it came from) of the participant; (None, None) when none given."""
    for param in PARTICIPANT_PARAMS:
        if ids.get(param):
            return ids[param], param
    return None, None


def may_resume(policy: str, cookie_matches: bool, stored_session: str | None, presented_session: str | None) -> bool:
    """Whether a request presenting a started participant's id may continue as them."""
    if cookie_matches:
        return True
    if policy == "cookie_or_session" and stored_session and presented_session:
        return hmac.compare_digest(stored_session.encode(), presented_session.encode())
    return False
