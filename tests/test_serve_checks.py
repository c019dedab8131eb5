"""``serve`` refuses a bad run directory in one line with exit 2 (issue 20, finding 7), and the
small ones of finding 8: deep JSON, trial numbers out of range, file modes, blinding at load."""

from __future__ import annotations

import json
import os
import stat

import pytest

from stylestudy.cli import main
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.evalserver.app import create_app

TOKEN = "admin-secret-token"


@pytest.fixture(autouse=True)
def _no_real_server(monkeypatch):
    """A check that wrongly passes must fail the test, not start a server that never returns."""
    import flask

    def refuse(*args, **kwargs):
        raise AssertionError("serve started a server")

    monkeypatch.setattr(flask.Flask, "run", refuse)


def _edit(run_dir, change) -> None:
    path = run_dir / "manifest.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _protocol(**values):
    return lambda doc: doc["study"]["protocol"].update(values)


def _first_image(doc) -> list[dict]:
    first = doc["stimuli"][0]["image_id"]
    return [e for e in doc["stimuli"] if e["image_id"] == first]


def _repoint(path: str):
    def change(doc):
        for e in _first_image(doc):
            e["path"] = path
    return change


def _serve_fails(run_dir, capsys, *expected: str) -> str:
    """``stylestudy serve`` answers 2 and one line naming the problem; no server starts."""
    capsys.readouterr()
    assert main(["serve", str(run_dir), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.mark.parametrize("change,expected", [
    (_protocol(colour="red"), "protocol.colour: unknown key"),
    (_protocol(kind="triplet"), "protocol.kind: must be one of paired, acr, pairwise, got 'triplet'"),
    (_protocol(attention_checks="2"), "protocol.attention_checks: must be an integer, got '2'"),
    (lambda doc: doc["study"].update(protocol=None), "protocol is null"),
    (_protocol(image_seconds="five"), "protocol.image_seconds: must be a number, got 'five'"),
    (_protocol(scale=[]), "protocol.scale: needs at least two labels"),
    (_protocol(rating_seconds=-1), "protocol.rating_seconds: must be > 0"),
    (_protocol(scale=["poor", "like normalized", "good"]), "protocol.scale: is shown to participants and names"),
    (_protocol(completion_code="BASELINE-1"), "protocol.completion_code: is shown to participants"),
    (lambda doc: doc.update(complete=False), "complete: false"),
    (_repoint("admin_token"), "stimulus admin_token is one of the server's own files"),
    (_repoint(".url_key"), "stimulus .url_key is one of the server's own files"),
    (_repoint("ratings.sqlite"), "is one of the server's own files"),
])
def test_a_bad_run_directory_is_refused_in_one_line(run_copy, capsys, monkeypatch, change, expected):
    monkeypatch.delenv("STYLESTUDY_ADMIN_TOKEN", raising=False)
    create_app(run_copy).config["DB_ENGINE"].dispose()  # the secrets and the database exist, as in a used run
    _edit(run_copy, change)
    _serve_fails(run_copy, capsys, expected)


def test_an_incomplete_run_is_served_only_when_allowed(run_copy, capsys):
    _edit(run_copy, lambda doc: doc.update(complete=False))
    _serve_fails(run_copy, capsys, "--allow-incomplete")
    assert create_app(run_copy, admin_token=TOKEN, allow_incomplete=True).config["MANIFEST"].complete is False


def test_stimuli_are_confined_to_the_run_directory_and_checked_against_their_hash(run_copy, tmp_path, capsys):
    doc = json.loads((run_copy / "manifest.json").read_text())
    first = run_copy / doc["stimuli"][0]["path"]
    original = first.read_bytes()
    first.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit flipped
    _serve_fails(run_copy, capsys, f"stimulus {doc['stimuli'][0]['path']} has changed", "SHA-256")
    outside = tmp_path / "outside.png"
    outside.write_bytes(original)  # the right bytes, but outside the run directory
    first.unlink()
    first.symlink_to(outside)
    _serve_fails(run_copy, capsys, "leads outside the run directory")
    first.unlink()
    _serve_fails(run_copy, capsys, f"stimulus {doc['stimuli'][0]['path']} cannot be read")
    first.write_bytes(original)
    create_app(run_copy, admin_token=TOKEN)  # restored: starts


def test_a_secret_that_is_not_a_file_and_a_corrupt_database_are_refused(run_copy, capsys, monkeypatch):
    monkeypatch.delenv("STYLESTUDY_ADMIN_TOKEN", raising=False)
    (run_copy / "admin_token").mkdir()
    _serve_fails(run_copy, capsys, "cannot read the secret", "admin_token")
    (run_copy / "admin_token").rmdir()
    (run_copy / "ratings.sqlite").write_bytes(b"this is not a database, it only has its name" * 100)
    _serve_fails(run_copy, capsys, "cannot open the database", "ratings.sqlite")
    assert (run_copy / "ratings.sqlite").read_bytes().startswith(b"this is not a database")  # untouched


def test_the_ratings_database_and_secrets_are_private_and_stimuli_readable(run_copy, monkeypatch):
    monkeypatch.delenv("STYLESTUDY_ADMIN_TOKEN", raising=False)
    app = create_app(run_copy)
    c = app.test_client()
    c.post("/start", data={"consent": "yes"})
    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)
    private = ["ratings.sqlite", "admin_token", ".session_key", ".url_key"]
    private += [name for name in ("ratings.sqlite-wal", "ratings.sqlite-shm") if (run_copy / name).exists()]
    assert {name: mode(run_copy / name) for name in private} == {name: 0o600 for name in private}
    manifest = app.config["MANIFEST"]
    for path in [run_copy / "manifest.json"] + [manifest.image_file(c) for c in manifest.conditions]:
        assert mode(path) == 0o644, path


@pytest.fixture()
def app(run_copy, db_url):
    return create_app(run_copy, db_url, admin_token=TOKEN)


def test_deep_json_and_trial_numbers_out_of_range(app):
    c = app.test_client()
    c.post("/start", data={"consent": "yes"})
    c.post("/briefing")
    c.get("/api/state")
    r = c.post("/api/trials/1", data="[" * 8000, content_type="application/json")
    assert r.status_code == 400 and r.is_json and "error" in r.get_json()
    for trial in (0, 5, 99):
        r = c.post(f"/api/trials/{trial}", json={"ratings": [3, 3]})
        assert r.status_code == 404 and r.is_json, trial
    assert c.get("/api/state").get_json()["trial"] == 1


def test_create_app_refuses_what_serve_refuses(run_copy):
    _edit(run_copy, _protocol(kind="triplet"))
    with pytest.raises(StyleStudyError, match="kind"):
        create_app(run_copy, admin_token=TOKEN)


def test_a_short_admin_token_in_the_environment_is_refused_and_a_long_one_accepted(run_copy, capsys, monkeypatch):
    """Below 16 characters a hand-set token is refused before anything starts; at 16 it logs in."""
    monkeypatch.setenv("STYLESTUDY_ADMIN_TOKEN", "x" * 15)
    err = _serve_fails(run_copy, capsys, "STYLESTUDY_ADMIN_TOKEN is 15 characters, fewer than 16", "set a longer one")
    assert "x" * 15 not in err  # the token itself is not echoed
    with pytest.raises(StyleStudyError, match="fewer than 16"):
        create_app(run_copy)
    monkeypatch.setenv("STYLESTUDY_ADMIN_TOKEN", "  " + "x" * 15 + "  ")  # surrounding spaces do not count
    _serve_fails(run_copy, capsys, "is 15 characters")
    assert not (run_copy / "admin_token").exists()  # refused, not replaced by a generated one
    monkeypatch.setenv("STYLESTUDY_ADMIN_TOKEN", "y" * 16)
    c = create_app(run_copy).test_client()
    assert c.get("/admin/status.json", headers={"Authorization": "Bearer " + "y" * 16}).status_code == 200
    assert c.get("/admin/status.json", headers={"Authorization": "Bearer " + "y" * 15}).status_code == 401
