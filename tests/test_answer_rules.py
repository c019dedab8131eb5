"""The answer rules (``evalserver.answer_rules``) by plain calls: no Flask, no database."""

from __future__ import annotations

import pytest

from stylestudy.engine.study.schema import Protocol
from stylestudy.evalserver import answer_rules as rules


def _body(**over):
    body = {"ratings": [4, 2], "shown_ms": [250.0, 250.0], "response_ms": [900.0, 1300.0], "blur": False}
    return rules.validate({**body, **over}, "paired", 2, 5, False)


@pytest.mark.parametrize("protocol, displays", [
    (Protocol(kind="paired", image_seconds=0.25), 2),
    (Protocol(kind="acr", image_seconds=0.25), 1),
    (Protocol(kind="pairwise", layout="side_by_side", image_seconds=0.25), 1),
    (Protocol(kind="pairwise", layout="sequential", image_seconds=0.25), 2),
])
def test_the_least_time_of_a_trial_counts_every_display(protocol, displays):
    """The paired design shows two images one after the other: 2 x 250 ms; measured displays that
    took longer raise it (summed when sequential, the longest when shown together)."""
    assert rules.displays(protocol) == displays
    assert rules.least_ms(protocol, [None, None]) == displays * 250
    assert rules.least_ms(protocol, [400.0, 300.0]) == (700.0 if displays == 2 else 400.0)


def test_too_fast_by_the_servers_clock():
    paired = Protocol(kind="paired", image_seconds=0.25)
    body = _body()
    assert "too_fast" in rules.trial_flags(body, 1, 449.0, paired)  # 500 ms less the 50 ms tolerance
    assert "too_fast" not in rules.trial_flags(body, 1, 450.0, paired)
    assert rules.trial_flags(_body(blur=True), 2, 10_000.0, paired) == ["blur", "restarted"]


def test_image_flags_short_display_and_repeat():
    p = Protocol(kind="acr", image_seconds=0.25)
    assert rules.image_flags(["too_fast"], ["timeout"], 250.0, p, "repeat") == "repeat;timeout;too_fast"
    assert rules.image_flags([], [], 301.0, p, "rated") == "short_display"
    assert rules.image_flags([], [], None, p, "rated") == "short_display"
    assert rules.image_flags([], [], 299.0, p, "rated") == ""


@pytest.mark.parametrize("body, message", [
    ([1, 2], "JSON object"),
    ({"ratings": [4, 2], "extra": 1}, "unknown field"),
    ({"ratings": [4]}, "list of 2"),
    ({"ratings": [4, 6]}, "1..5"),
    ({"ratings": [True, 2]}, "1..5"),
    ({"ratings": [4, 2], "shown_ms": [1, 2, 3]}, "shown_ms must be a list of 2"),
    ({"ratings": [4, 2], "blur": "no"}, "blur"),
    ({"choice": 1}, "ratings, not a choice"),
])
def test_bad_submissions_say_what_is_wrong(body, message):
    with pytest.raises(rules.BadSubmission, match=message):
        rules.validate(body, "paired", 2, 5, False)


def test_pairwise_answers_and_the_attention_rule():
    plan = {"attention": 2}
    for choice, expected in ((2, [(0, []), (1, [])]), (1, [(1, ["attention_failed"]), (0, ["attention_failed"])]),
                             (None, [(None, ["timeout", "attention_failed"])] * 2),
                             (0, [(0, ["no_preference", "attention_failed"])] * 2)):
        body = rules.validate({"choice": choice}, "pairwise", 2, 5, True)
        assert rules.answers(body, plan, "pairwise", ("", []), []) == expected
    with pytest.raises(rules.BadSubmission, match="one of 1, 2 or null"):
        rules.validate({"choice": 0}, "pairwise", 2, 5, False)


def test_gold_items_fail_only_outside_their_ratings():
    from stylestudy.engine.study.manifest import Condition

    gold = Condition(id="g", method="photo", image_id="i", path="p", sha256="", block="b", row=0, row_label="",
                     column=0, column_label="", pair_id="", briefing=False)
    body = rules.validate({"ratings": [2]}, "acr", 1, 5, False)
    assert rules.answers(body, {}, "acr", ("photo", [4, 5]), [gold]) == [(2, ["gold_failed"])]
    body = rules.validate({"ratings": [5]}, "acr", 1, 5, False)
    assert rules.answers(body, {}, "acr", ("photo", [4, 5]), [gold]) == [(5, [])]


def test_late_and_clock_mismatch_by_the_servers_clock():
    """Window: the displays (2 x 250 ms) + the rating time (2 s) + LATE_SLACK_MS (5 s) = 7.5 s; the
    page's displays and response time may exceed the server's time by at most 1 s."""
    paired = Protocol(kind="paired", image_seconds=0.25, rating_seconds=2.0)
    body = _body(response_ms=[500.0, 500.0])
    assert "late" not in rules.trial_flags(body, 1, 7500.0, paired)
    assert "late" in rules.trial_flags(body, 1, 7501.0, paired)
    assert "late" in rules.trial_flags(body, 1, 12_000.0, paired)  # 12 s after serving, claiming 500 ms
    body = _body(response_ms=[1500.0, 2500.0])  # 500 ms of displays + 2.5 s: the server must have seen 2 s
    assert "clock_mismatch" in rules.trial_flags(body, 1, 1999.0, paired)
    assert "clock_mismatch" not in rules.trial_flags(body, 1, 2000.0, paired)
    assert "clock_mismatch" not in rules.trial_flags(_body(response_ms=[None, None]), 1, 600.0, paired)
