"""TOML with line numbers: tomllib keeps no positions, so errors find the line of a key here.

Every study-file error says ``FILE:LINE: table.key: what is wrong``.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from stylestudy.engine.study.errors import StudyError

KEY_REFERENCE = "every key: docs/reference/study-keys.md"
# tables whose keys are declared in schema (schema.key) and listed in the reference (study_keys.DECLARED)
DECLARED_TABLES = ("study", "images", "images.files.NAME", "styles", "engine", "methods.baseline",
                   "methods.normalized", "blocks.NAME", "protocol", "briefing")


def declared_table(table: str) -> str:
    """The reference's name of ``table``: one image's or block's table as ``images.files.NAME``, ``blocks.NAME``."""
    return re.sub(r"^(blocks|images\.files)\.[^.]+$", r"\1.NAME", table)


class TomlReader:
    """Typed access to a TOML table that remembers which keys were read, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.lines = path, text, text.splitlines()

    def _section(self, header: str) -> list[tuple[int, str]] | None:
        """(line number, text) of the lines under ``[header]`` ("" = before the first header)."""
        pattern = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*$")
        current, found, out = "", header == "", []
        start = 0
        for number, line in enumerate(self.lines, start=1):
            m = pattern.match(line)
            if m:
                if found and current == header:
                    break
                current = m.group(1).replace('"', "").replace(" ", "")
                found = found or current == header
                start = number if current == header else start
                continue
            if current == header:
                out.append((number, line))
        return ([(start, "")] + out) if found else None

    def line_of(self, table: str, key: str | None = None) -> int:
        """Best-effort line number of ``table.key`` (tomllib keeps no positions)."""
        parts = [p for p in table.split(".") if p]
        for cut in range(len(parts), -1, -1):
            section = self._section(".".join(parts[:cut]))
            if section is None:
                continue
            rest = parts[cut:] + ([key] if key else [])
            if not rest:
                return section[0][0]
            for i, (number, line) in enumerate(section):
                if re.match(rf'^\s*"?{re.escape(rest[0])}"?\s*=', line):
                    if len(rest) == 1:
                        return number
                    for number2, line2 in section[i:]:
                        if re.search(rf"\b{re.escape(rest[-1])}\b", line2):
                            return number2
                    return number
            return section[0][0]
        return 0

    def where(self, table: str, key: str | None = None) -> str:
        """``FILE:LINE`` of ``table.key`` (``FILE`` where the line is unknown)."""
        line = self.line_of(table, key)
        return f"{self.path}:{line}" if line else str(self.path)

    def fail(self, table: str, key: str | None, message: str) -> StudyError:
        where = self.where(table, key)
        name = f"{table}.{key}" if key else f"[{table}]"
        return StudyError(f"{where}: {name}: {message}")

    def unknown(self, table: str, key: str, allowed: set[str]) -> StudyError:
        """An unknown key (or, at the top, section) with the nearest known one, not a list of all."""
        near = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
        if table:
            listed = KEY_REFERENCE if declared_table(table) in DECLARED_TABLES else f"allowed: {', '.join(sorted(allowed))}"
            hint = f"did you mean '{near[0]}'?" if near else f"[{table}] has no key like it; {listed}"
            return self.fail(table, key, f"unknown key; {hint}")
        line = self.header_line(key)
        where = f"{self.path}:{line}" if line else str(self.path)
        hint = f"did you mean [{near[0]}]?" if near else f"sections are {', '.join(f'[{a}]' for a in sorted(allowed))}"
        return StudyError(f"{where}: [{key}]: unknown section; {hint}")

    def header_line(self, name: str) -> int:
        """The line of the section header ``[name]``, ``[[name]]`` or ``[name.sub]``; 0 if none."""
        pattern = re.compile(rf'^\s*\[\[?\s*"?{re.escape(name)}"?\s*[\].]')
        return next((n for n, line in enumerate(self.lines, start=1) if pattern.match(line)), 0)

    def table(self, data: dict, table: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(data, dict):
            raise self.fail(table, None, "must be a table")
        for key in data:
            if key not in allowed:
                raise self.unknown(table, key, allowed)
        for key in required:
            if key not in data:
                raise self.fail(table, None, f"missing required key '{key}'")
        return data

    def number(self, data: dict, table: str, key: str, default=None, positive: bool = False, integer: bool = False):
        value = data.get(key, default)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(table, key, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        if positive and value <= 0:
            raise self.fail(table, key, f"must be > 0, got {value!r}")
        return value

    def numbers(self, data: dict, table: str, key: str, positive: bool = True, integer: bool = False) -> list:
        values = data.get(key, [])
        if not isinstance(values, list):
            raise self.fail(table, key, "must be a list")
        for v in values:
            self.number({key: v}, table, key, positive=positive, integer=integer)
        return values

    def string(self, data: dict, table: str, key: str, default: str | None = None, choices=None) -> str | None:
        value = data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(table, key, f"must be a string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(table, key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, data: dict, table: str, key: str, default=None) -> list[str]:
        values = data.get(key, default if default is not None else [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.fail(table, key, "must be a list of strings")
        return values


def read_toml(path: str | Path, hint: str) -> tuple[dict, TomlReader]:
    """A study file (or the study.toml in a folder), parsed, with a reader for its errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.toml"
    if not path.is_file():
        raise StudyError(f"study file not found: {path}; {hint}")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: invalid TOML: {exc}") from None
    return data, TomlReader(path, text)
