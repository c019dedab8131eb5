"""The study-file key reference (docs/reference/study-keys.md), generated from the one declaration
of each key (``schema.key``): its type, default, allowed values and help text.

Regenerate after changing a key: ``python -m stylestudy.engine.study.study_keys > docs/reference/study-keys.md``
(a test fails while the file is out of date).
"""

from __future__ import annotations

from dataclasses import MISSING

from stylestudy.engine.study.schema import (
    BaselineMethod,
    Block,
    Briefing,
    EngineSettings,
    ImageSource,
    ImagesSection,
    NormalizedMethod,
    Protocol,
    StudyInfo,
    StylesSection,
    declared_keys,
)

# every declared table, in the order a study file has them (NAME: one such table per image, per block)
DECLARED = {"study": StudyInfo, "images": ImagesSection, "images.files.NAME": ImageSource, "styles": StylesSection,
            "engine": EngineSettings, "methods.baseline": BaselineMethod, "methods.normalized": NormalizedMethod,
            "blocks.NAME": Block, "protocol": Protocol, "briefing": Briefing}


def _toml(value) -> str:
    if value is None:
        return "unset"
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
        for f in declared_keys(cls):
            default = f.default_factory() if f.default is MISSING else f.default
            shown = "required" if f.metadata["required"] else f"`{_toml(default)}`"
            allowed = ", ".join(f.metadata["choices"]) or ("> 0" if f.metadata["positive"] else "")
            text = f.metadata["help"] + (" (empty: the default)" if f.metadata["empty_means_default"] else "")
            row = [f"`{f.name}`", f.type, shown, allowed, text]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(key_reference(), end="")
