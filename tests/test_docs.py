"""The documentation says what is there: a README people finish, every file the docs and the
README name exists, every page is in the site's navigation, every environment variable the code
reads and every rating flag is documented, and the README's quickstart runs as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stylestudy.cli import main
from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT, Flag
from tests.conftest import pace

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
TOP_LEVEL = {"engine", "evalserver", "analysis", "stylestudy", "tests", "docs", "studies", ".ci"}
# a file path as the docs write one: folders, then a name with one of these extensions
PATH = re.compile(r"(?<![\w/.<>{}$-])((?:\.?[\w-]+/)+[\w.-]+\.(?:py|md|toml|csv|sh|txt|cfg|po|yml|html|png|j2))(?![\w/])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|<img src=\"([^\"]+)\"")


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def test_the_readme_is_at_most_250_lines_and_keeps_the_two_setup_commands():
    text = _text(README)
    assert len(text.splitlines()) <= 250
    assert "pip install -e . && stylestudy demo" in text
    assert 'pip install -e ".[test]" && python3 -m pytest -q' in text


def _named_paths(page: Path) -> list[str]:
    return [m for m in PATH.findall(_text(page)) if m.split("/")[0] in TOP_LEVEL]


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_file_a_page_names_exists(page):
    missing = []
    for name in _named_paths(page):
        parts = name.split("/")
        if parts[0] == "stylestudy" and len(parts) > 1 and parts[1] in TOP_LEVEL:
            parts = parts[1:]  # the installed name of a repository folder (setup.py maps engine/ -> stylestudy.engine)
        if not (ROOT.joinpath(*parts).exists() or ROOT.joinpath("stylestudy", *parts).exists()):
            missing.append(name)
    assert missing == [], f"{page.relative_to(ROOT)} names files that do not exist: {missing}"


def test_the_path_check_finds_a_stale_name(tmp_path):
    """Negative control: the names issue 35 found stale would be caught."""
    planted = tmp_path / "page.md"
    planted.write_text("the manifest (`engine/manifest.py`) and `engine/claims.py`; `engine/study/manifest.py`\n")
    names = _named_paths(planted)
    assert names == ["engine/manifest.py", "engine/claims.py", "engine/study/manifest.py"]
    assert [n for n in names if not (ROOT / n).exists()] == ["engine/manifest.py", "engine/claims.py"]


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file(page):
    targets = [a or b for a, b in LINK.findall(_text(page))]
    broken = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))
              and not (page.parent / t).exists()]
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_every_page_is_in_the_site_navigation_and_every_entry_is_a_page():
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    assert sorted(nav) == sorted(str(p.relative_to(DOCS)) for p in PAGES)


def _environment_variables_read() -> set[str]:
    sources = [p for folder in ("engine", "evalserver", "analysis", "stylestudy", "tests/benchmarks")
               for p in (ROOT / folder).rglob("*.py")] + [ROOT / "tests" / "test_viewing_browser.py"]
    return {name for p in sources for name in re.findall(r"STYLESTUDY_[A-Z_]*[A-Z]", _text(p))}


def test_every_environment_variable_the_code_reads_is_documented():
    page = _text(DOCS / "reference" / "environment-variables.md")
    found = _environment_variables_read()
    assert {"STYLESTUDY_HOME", "STYLESTUDY_DEBUG", "STYLESTUDY_ADMIN_TOKEN", "STYLESTUDY_DB"} <= found
    assert [name for name in sorted(found) if f"`{name}`" not in page] == []


def test_stylestudy_debug_raises_the_error_a_command_otherwise_prints_in_one_line(tmp_path, monkeypatch, capsys):
    from stylestudy.engine.study.errors import StyleStudyError

    monkeypatch.delenv("STYLESTUDY_DEBUG", raising=False)
    assert main(["init-study", "no-such-study", str(tmp_path / "x")]) == 2
    assert "no bundled study 'no-such-study'" in capsys.readouterr().err
    monkeypatch.setenv("STYLESTUDY_DEBUG", "1")
    with pytest.raises(StyleStudyError, match="no bundled study"):
        main(["init-study", "no-such-study", str(tmp_path / "x")])


def test_every_rating_flag_is_documented_with_what_analyze_leaves_out():
    rows = {line.split("`")[1]: line for line in _text(DOCS / "reference" / "flags.md").splitlines()
            if line.startswith("| `")}
    assert set(rows) == {f.value for f in Flag}
    assert {name for name, row in rows.items() if "| yes, by default |" in row} == {f.value for f in EXCLUDED_BY_DEFAULT}


def test_the_audit_how_to_quotes_what_audit_table_prints(capsys):
    page = _text(DOCS / "how-to" / "audit-a-table.md")
    quoted = page.split("```text\n")[1].split("\n```")[0]
    assert main(["audit-table"]) == 0
    assert quoted in capsys.readouterr().out


def _quickstart_commands() -> list[list[str]]:
    block = _text(README).split("## Quickstart")[1].split("```bash\n")[1].split("```")[0]
    return [shlex.split(line.split("#")[0])[1:] for line in block.splitlines()
            if line.startswith("stylestudy ")]


def test_the_readme_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    """The quickstart's commands, in order, on images laid out as it shows; `serve` is replaced by
    participants answering through the same app in process, and the power simulation uses 3
    simulated studies per point instead of 200 (the suite's time)."""
    from PIL import Image

    from stylestudy.evalserver.app import create_app
    from tests.conftest import _pattern

    layout = _text(README).split("## Quickstart")[1].split("```text\n")[1].split("```")[0].split()
    for seed, name in enumerate(layout):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _pattern(30, 24, seed).save(tmp_path / name)
        assert Image.open(tmp_path / name).size == (30, 24)
    monkeypatch.chdir(tmp_path)
    commands = _quickstart_commands()
    assert [c[0] for c in commands] == ["import", "simulate", "serve", "analyze", "export"]
    for argv in commands:
        if argv[0] == "serve":
            app = create_app(argv[1], admin_token="q" * 16)
            seconds = app.config["MANIFEST"].protocol.image_seconds
            shown = [1000 * seconds] * 2  # each image shown its full time: no short_display
            for pid in ("qs-1", "qs-2", "qs-3"):
                client = app.test_client()
                client.post("/start", data={"consent": "yes", "PROLIFIC_PID": pid})
                client.post("/briefing")
                while not (state := client.get("/api/state").get_json())["done"]:
                    pace(app, pid, 2 * seconds + 0.5)  # a human's pace: neither too_fast nor late
                    client.post(f"/api/trials/{state['trial']}", json={"choice": 1, "shown_ms": shown})
            continue
        if argv[0] == "simulate":
            argv = [*argv, "--reps", "3"]
        assert main(argv) == 0, argv
    assert (tmp_path / "runs" / "mine" / "report" / "report.html").is_file()
    ratings = (tmp_path / "ratings.csv").read_text().splitlines()
    assert len(ratings) == 1 + 3 * 9 * 2  # 3 participants x 9 pairs (3 items x 3 method pairs) x 2 images
    capsys.readouterr()
