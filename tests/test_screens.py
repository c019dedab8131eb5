"""What a study's display needs, as ``import`` and ``serve`` tell it (engine/study/screens.py),
against hand computation; and the small command-line and admin messages of issue 33."""

from __future__ import annotations

import re
import socket

import pytest

from stylestudy.cli import main
from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.screens import COMMON_SCREENS, admits, display_report, least_screen, shown_scale
from tests.test_viewing_browser import _import

LAPTOP, DESKTOP, PHONE = COMMON_SCREENS


def _view(**changes) -> dict:
    view = {"display": "native", "width": 384, "height": 590, "display_slots": 2, "answer_slots": 2,
            "min_viewport": [], "fullscreen": False, "reference_widths": [], "reference_height": 0}
    return {**view, **changes}


def test_the_issue_study_by_hand():
    """384x590 side by side, answered in view: a screen of 2*384 + 16 gap + 16 padding + 40 page =
    840 by 590 + 24 caption + 16 padding + 220 page = 850 CSS px; so native refuses 1366x768 and
    the phone; scale_down keeps 1:1 on 1920x1080, (768 - 260) / 590 on the laptop and
    (390 - 72) / 768 on the phone; fit enlarges to 70% of 1080 on the desktop."""
    view = _view()
    assert least_screen(view, 1.0) == (840, 850)
    assert [admits(view, s, True) for s in COMMON_SCREENS] == [False, True, False]
    down = _view(display="scale_down")
    assert [admits(down, s, True) for s in COMMON_SCREENS] == [True, True, True]
    assert shown_scale(down, DESKTOP) == 1
    assert shown_scale(down, LAPTOP) == pytest.approx((768 - 260) / 590)
    assert shown_scale(down, PHONE) == pytest.approx((390 - 72) / 768)
    assert shown_scale(_view(display="fit"), DESKTOP) == pytest.approx(0.7 * 1080 / 590)
    assert not admits(down, PHONE, allow_mobile=False)
    # device at DPR 3 on the phone: 128x196.7 CSS px per image
    assert admits(_view(display="device"), PHONE, True) and shown_scale(_view(display="device"), PHONE) == 1 / 3


def test_references_below_on_a_phone_beside_on_a_desktop():
    """Two 300 px references: beside the stimuli on a desktop (one row: 2*384 + 2*300 + 3 gaps of 16
    + 32 between the groups + 16 + 40), in a row of their own on a phone (its height is both rows)."""
    view = _view(reference_widths=[300, 300], reference_height=400)
    assert least_screen(view, 1.0)[0] == 2 * 384 + 2 * 300 + 2 * 16 + 32 + 16 + 40
    assert least_screen(view, 1.0, screen_width=390) == (2 * 384 + 16 + 16 + 40, 590 + 400 + 2 * 24 + 8 + 16 + 220)


def test_import_and_serve_say_what_screen_the_study_needs(tmp_path, capsys, monkeypatch):
    run = _import(tmp_path, "pairwise", size=(384, 590), answer_with_images=True)
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "again"), "--protocol", "pairwise",
                 "--study-file", str(tmp_path / "study.toml")]) == 0
    out, err = capsys.readouterr()
    lines, warnings = display_report(StudyManifest.load(run))
    assert all(line in out for line in lines)
    chosen = next(x for x in out.splitlines() if x.startswith(" * "))
    assert chosen.startswith(" * native") and "840x850" in chosen and "1366x768 laptop refused" in chosen
    assert "390x844 phone refused" in chosen and "1920x1080 desktop at 1.00x" in chosen
    assert re.search(r"scale_down .*1366x768 laptop at 0\.86x, 1920x1080 desktop at 1\.00x, 390x844 phone at 0\.41x",
                     out)
    assert "warning: display = \"native\" needs a screen of at least 840x850 CSS px" in err
    assert "display = \"scale_down\"" in err
    import flask

    monkeypatch.setattr(flask.Flask, "run", lambda *a, **k: None)
    port = _free_port()
    assert main(["serve", str(run), "--port", str(port)]) == 0
    served, err = capsys.readouterr()
    assert served.index(chosen) < served.index("study: http://")  # told before the banner
    assert "warning: display = \"native\"" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scale_down_study_warns_of_nothing(tmp_path, capsys):
    _import(tmp_path, "pairwise", size=(384, 590), display="scale_down")
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "again"), "--protocol", "pairwise",
                 "--study-file", str(tmp_path / "study.toml")]) == 0
    out, err = capsys.readouterr()
    assert " * scale_down" in out and "warning: display" not in err


def test_serve_on_a_busy_port_says_so_before_any_banner(tmp_path, capsys, monkeypatch):
    import flask

    monkeypatch.setattr(flask.Flask, "run", lambda *a, **k: pytest.fail("a server started"))
    run = _import(tmp_path, "acr")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["serve", str(run), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == (f"stylestudy serve: error: port {port} on 127.0.0.1 is in use (another "
                                         "server?): stop it or pass --port with a free port, e.g. --port 5001")


def test_serve_help_names_import_and_explains_host_and_port(capsys):
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "'stylestudy import'" in text and "which screens" in text
    assert "--host HOST address to listen on" in text and "--port PORT TCP port to listen on (default 5000)" in text


def test_import_of_a_missing_path_says_not_found(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("nowhere not found; give a folder DIR/<method>/<item>.png or a CSV method,item,path")
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_admin_without_login_links_to_the_login_form(run_copy):
    from stylestudy.evalserver.app import create_app

    reply = create_app(run_copy, admin_token="tok").test_client().get("/admin/")
    page = reply.data.decode()
    assert reply.status_code == 401 and "Log in to see the admin pages." in page
    assert 'action="/admin/login"' in page and 'type="password"' in page
