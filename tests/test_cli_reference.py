"""The command line says the same thing the same way: ``--out`` for what a command writes, ``--json
FILE`` for JSON, ``simulate``'s three modes kept apart, ``analyze`` writing beside a run; the old
spellings still work and say, in one line, what to write instead. The CLI and export-column
references are generated from the parser and the exporter, and complete."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from stylestudy.cli import build_parser, main
from stylestudy.cli_reference import cli_reference, subcommands
from stylestudy.evalserver.export import COLUMNS, EXTRA_COLUMNS, PARTICIPANT_COLUMNS, VIEWING_COLUMNS
from stylestudy.evalserver.export_reference import export_column_reference
from tests.conftest import pace

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "reference" / "cli.md"
EXPORT_MD = ROOT / "docs" / "reference" / "export-columns.md"


def test_the_cli_reference_is_generated_and_up_to_date():
    assert CLI_MD.read_text(encoding="utf-8") == cli_reference(), (
        "regenerate: python -m stylestudy.cli_reference > docs/reference/cli.md")


def test_every_subcommand_and_flag_is_in_the_cli_reference():
    text = CLI_MD.read_text(encoding="utf-8")
    commands = subcommands(build_parser())
    assert {"analyze", "demo", "export", "simulate", "transfer"} <= set(commands)
    for name, (_, command) in commands.items():
        section = text.split(f"\n## stylestudy {name}\n")[1].split("\n## ")[0]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            for option in names:  # the deprecated spellings too
                assert f"`{option}`" in section, f"stylestudy {name} {option} is missing from docs/reference/cli.md"


def test_the_export_column_reference_is_generated_and_up_to_date():
    assert EXPORT_MD.read_text(encoding="utf-8") == export_column_reference(), (
        "regenerate: python -m stylestudy.evalserver.export_reference > docs/reference/export-columns.md")


def _documented(title: str) -> list[str]:
    section = EXPORT_MD.read_text(encoding="utf-8").split(f"## {title}")[1].split("\n## ")[0]
    return [line.split("`")[1] for line in section.splitlines() if line.startswith("| ") and "`" in line]


def test_the_export_column_reference_is_the_order_a_real_export_writes(run_copy, tmp_path):
    """A participant rates through the app on the run's SQLite database; the exported headers are
    the documented columns, in the documented order."""
    from stylestudy.evalserver.app import create_app

    app = create_app(run_copy, admin_token="t" * 16)
    client = app.test_client()
    client.post("/start", data={"consent": "yes", "PROLIFIC_PID": "ref-1"})
    client.post("/briefing")
    state = client.get("/api/state").get_json()
    pace(app, "ref-1")
    assert client.post(f"/api/trials/{state['trial']}", json={"ratings": [2, 4], "shown_ms": [250, 250]}).status_code == 200
    ratings, people = tmp_path / "ratings.csv", tmp_path / "people.csv"
    assert main(["export", str(run_copy), "--out", str(ratings), "--participants-csv", str(people)]) == 0
    with ratings.open() as f:
        header = next(csv.reader(f))
    assert header == _documented("Ratings") == COLUMNS + EXTRA_COLUMNS + VIEWING_COLUMNS
    with people.open() as f:
        assert next(csv.reader(f)) == _documented("Participants") == PARTICIPANT_COLUMNS


def _export(run, tmp_path, name, *args, capsys):
    assert main(["export", str(run), *[a.format(dir=tmp_path, name=name) for a in args]]) == 0
    return capsys.readouterr().err


def test_exports_old_spellings_work_and_print_one_deprecation_line_each(run_copy, tmp_path, capsys):
    from stylestudy.evalserver.app import create_app

    app = create_app(run_copy, admin_token="t" * 16)
    client = app.test_client()
    client.post("/start", data={"consent": "yes", "PROLIFIC_PID": "dep-1"})
    client.post("/briefing")
    err_new = _export(run_copy, tmp_path, "new", "--out", "{dir}/{name}.csv", "--participants-csv",
                      "{dir}/{name}-people.csv", capsys=capsys)
    err_old = _export(run_copy, tmp_path, "old", "-o", "{dir}/{name}.csv", "--participants", "{dir}/{name}-people.csv",
                      capsys=capsys)
    assert err_new == ""
    assert err_old.splitlines() == ["stylestudy export: -o is deprecated; use --out",
                                    "stylestudy export: --participants is deprecated; use --participants-csv"]
    for suffix in (".csv", "-people.csv"):
        assert (tmp_path / f"old{suffix}").read_bytes() == (tmp_path / f"new{suffix}").read_bytes()
    assert "dep-1" in (tmp_path / "new-people.csv").read_text()


@pytest.mark.parametrize("old", ["-o", "--output"])
def test_simulates_old_output_spellings_write_the_same_file(old, tmp_path, capsys):
    assert main(["simulate", "--from-paper", "--seed", "3", "--out", str(tmp_path / "new.csv")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["simulate", "--from-paper", "--seed", "3", old, str(tmp_path / "old.csv")]) == 0
    assert capsys.readouterr().err == f"stylestudy simulate: {old} is deprecated; use --out\n"
    assert (tmp_path / "old.csv").read_bytes() == (tmp_path / "new.csv").read_bytes()


def test_transfers_old_output_spelling_parses_to_out(capsys):
    args = build_parser().parse_args(["transfer", "a.png", "b.png", "-o", "x.png", "--method", "normalized",
                                      "--lambda-os", "1e-3"])
    assert args.out == "x.png" and capsys.readouterr().err == "stylestudy transfer: -o is deprecated; use --out\n"


@pytest.mark.parametrize("argv,message", [
    (["export", "RUN"], "the following arguments are required: --out"),
    (["export", "RUN", "--out", "a.csv", "-o", "b.csv"], "argument -o/--output: not allowed with argument --out"),
    (["transfer", "a.png", "b.png", "--method", "normalized", "--lambda-os", "1"],
     "the following arguments are required: --out"),
])
def test_out_missing_or_given_twice_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_inspect_json_file_and_the_old_switch(content_path, style_path, tmp_path, capsys):
    base = ["inspect", str(content_path), str(style_path), "--size", "32", "--device", "cpu"]
    assert main([*base, "--json", str(tmp_path / "losses.json")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'losses.json'}"
    written = json.loads((tmp_path / "losses.json").read_text())
    assert main([*base, "--json"]) == 0  # the switch of 0.2: JSON on standard output, and a deprecation line
    captured = capsys.readouterr()
    assert json.loads(captured.out) == written
    assert captured.err.splitlines() == ["stylestudy inspect: --json without a file is deprecated; use --json - "
                                         "(standard output) or --json FILE"]
    assert main([*base, "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == written and captured.err == ""


@pytest.mark.parametrize("argv,message", [
    (["--from-paper", "--effect", "0.3"], "--effect belongs to the mode --study STUDY (a planted effect), not to "
                                          "--from-paper"),
    (["--from-paper", "--power", "5,10"], "--power belongs to the mode --study, not to --from-paper"),
    (["--from-paper", "--reps", "5"], "--reps belongs to the mode --study, not to --from-paper"),
    (["--study", "studies/table1", "--pairings", "3"], "--pairings belongs to the mode --from-paper"),
    (["--study", "studies/table1", "--table", "t.csv"], "--table belongs to the mode --from-paper"),
    (["--study", "studies/table1", "--protocol", "acr"], "--protocol belongs to the mode --study RUN_DIR --qualities"),
    (["--study", "studies/table1", "--sampling", "adaptive"], "give --study RUN --qualities ... as well"),
    (["--study", "RUN", "--qualities", "a=0,b=1", "--effect", "1"], "--effect belongs to the mode --study STUDY"),
])
def test_simulates_modes_refuse_each_others_options(argv, message, tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert main(["simulate", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_simulates_help_shows_each_mode_as_its_own_group(capsys):
    assert main(["simulate", "--help"]) == 0
    text = capsys.readouterr().out
    positions = [text.index(title) for title in ("mode 1, --from-paper:", "mode 2, --study STUDY",
                                                 "mode 3, --study RUN_DIR --qualities", "every mode:")]
    assert positions == sorted(positions)
    mode2 = text.split("mode 2, --study STUDY")[1].split("mode 3")[0]
    assert "--effect" in mode2 and "--pairings" not in mode2 and "--qualities" not in mode2


def test_analyze_writes_beside_a_run_by_default_and_to_report_for_a_csv(run_copy, tmp_path, monkeypatch, capsys):
    from stylestudy.evalserver.app import create_app

    app = create_app(run_copy, admin_token="t" * 16)
    for pid in ("an-1", "an-2", "an-3"):
        client = app.test_client()
        client.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid})
        client.post("/briefing")
        while not (state := client.get("/api/state").get_json())["done"]:
            pace(app, pid)
            client.post(f"/api/trials/{state['trial']}", json={"ratings": [2, 4], "shown_ms": [250, 250]})
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", str(run_copy)]) == 0
    assert (run_copy / "report" / "report.html").is_file() and not (tmp_path / "report").exists()
    assert main(["export", str(run_copy), "--out", "ratings.csv"]) == 0
    assert main(["analyze", "ratings.csv", "--manifest", str(run_copy / "manifest.json")]) == 0
    assert (tmp_path / "report" / "report.html").is_file()
    capsys.readouterr()
