"""Every ``stylestudy`` command in the README and the documentation site (docs/) parses with the
real command line (no stale subcommand or flag); what they do is exercised by the rest of the suite."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from stylestudy.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
DOCS = README.parent / "docs"


def _commands() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in [README, *sorted(DOCS.rglob("*.md"))])
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                if "stylestudy " in part and not part.startswith(("gunicorn", "STYLESTUDY_")):
                    commands.append(part[part.index("stylestudy "):])
    return commands


def test_readme_has_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "stylestudy demo" in text and "python3 -m pytest -q" in text
    assert "python3 -m pytest -q" in (README.parent / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", _commands())
def test_readme_command_parses(command):
    argv = shlex.split(command)[1:]
    # Optional parts written as [--flag X] or [--a|--b] are documentation, not arguments.
    argv = [a for a in argv if not a.startswith("[") and not a.endswith("]") and "|" not in a]
    args = build_parser().parse_args(argv)
    assert callable(args.func)
