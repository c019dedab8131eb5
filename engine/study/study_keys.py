"""The study-file key reference (docs/reference/study-keys.md), generated from the one declaration
of each key (``schema.key``): its type, default, allowed values and help text.

Regenerate after changing a key: ``python -m stylestudy.engine.study.study_keys > docs/reference/study-keys.md``
(a test fails while the file is out of date).
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from stylestudy.engine.study.schema import EngineSettings, Protocol

DECLARED = {"protocol": Protocol, "engine": EngineSettings}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def key_reference() -> str:
    """Markdown: one table per declared study-file table, a row per key."""
    lines = ["# Study-file keys", "",
             "Generated from the declarations in `engine/study/schema.py` by `python -m "
             "stylestudy.engine.study.study_keys`; do not edit by hand.", ""]
    for table, cls in DECLARED.items():
        lines += [f"## [{table}]", "", "| key | type | default | allowed | what it is |", "|---|---|---|---|---|"]
        for f in fields(cls):
            default = f.default_factory() if f.default is MISSING else f.default
            allowed = ", ".join(f.metadata["choices"]) or ("> 0" if f.metadata["positive"] else "")
            text = f.metadata["help"] + (" (empty: the default)" if f.metadata["empty_means_default"] else "")
            row = [f"`{f.name}`", f.type, f"`{_toml(default)}`", allowed, text]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(key_reference(), end="")
