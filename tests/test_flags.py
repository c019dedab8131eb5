"""The rating flags named once (``evalserver.flags.Flag``): a flag is its plain name wherever it
is stored, joined, compared or written, so rows read back from any database match the enum."""

from __future__ import annotations

import json

from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT, Flag


def test_a_flag_is_its_plain_name_everywhere():
    assert ";".join(sorted({Flag.TIMEOUT, "resized", Flag.REPEAT})) == "repeat;resized;timeout"
    assert f"{Flag.SHORT_DISPLAY}" == str(Flag.SHORT_DISPLAY) == "short_display"
    assert json.dumps({"excluded_flags": list(EXCLUDED_BY_DEFAULT)}) == '{"excluded_flags": ["timeout", "short_display", "too_fast", "excluded"]}'
    stored = set("attention_failed;timeout".split(";"))  # as a row of the export holds them
    assert stored & {Flag.ATTENTION_FAILED, Flag.GOLD_FAILED} == {"attention_failed"}
    assert {Flag.TIMEOUT: 1}["timeout"] == 1 and Flag("gold_failed") is Flag.GOLD_FAILED


def test_analyze_and_its_command_leave_out_the_same_flags_by_default():
    import argparse

    from stylestudy.analysis.analyze import AnalyzeOptions
    from stylestudy.analysis.cli import register_analyze

    parser = argparse.ArgumentParser()
    register_analyze(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", "ratings.csv"])
    assert tuple(args.exclude_flags.split(",")) == tuple(AnalyzeOptions(out=None).exclude_flags) == (
        "timeout", "short_display", "too_fast", "excluded")
