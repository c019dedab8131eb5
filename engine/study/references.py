"""Reference images of an imported study: the style painting and/or the content photo of each item,
shown beside the stimuli when ``[protocol] references`` asks for them, never rated.

Where they come from: folders ``DIR/_style/<item>.png`` and ``DIR/_content/<item>.png`` next to
the method folders, or CSV columns ``style_image`` and ``content_image`` (paths relative to the
CSV; every row of an item names the same file).  Each is decoded and stored as PNG pixels like the
stimuli (``references/<sha>.png``); a condition's manifest entry names its item's files in
``style_image`` / ``content_image``.
"""

from __future__ import annotations

import csv
from pathlib import Path

KINDS = ("style", "content")
FOLDERS = {"style": "_style", "content": "_content"}
COLUMNS = {"style": "style_image", "content": "content_image"}
SUFFIXES = (".png", ".jpg", ".jpeg")


def find_references(source: Path, items: list[str], problems: list[str]) -> dict[tuple[str, str], Path]:
    """(kind, item) -> the reference file, for the kinds the input provides; problems appended."""
    found: dict[tuple[str, str], Path] = {}
    if source.is_dir():
        for kind, folder in FOLDERS.items():
            d = source / folder
            if not d.is_dir():
                continue
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in SUFFIXES and f.stem in items:
                    found[(kind, f.stem)] = f
                elif not f.name.startswith("."):
                    problems.append(f"{folder}/{f.name} is not an image of an item ({', '.join(items[:4])}...)")
    elif source.is_file():
        with source.open(newline="", encoding="utf-8-sig") as fh:
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]
        for kind, column in COLUMNS.items():
            for line, row in enumerate(rows, start=2):
                if not row.get(column):
                    continue
                path = Path(row[column])
                path = path if path.is_absolute() else source.parent / path
                key = (kind, row.get("item", ""))
                if key in found and found[key] != path:
                    problems.append(f"{source.name}:{line}: item {key[1]!r} names two {column} files")
                found[key] = path
    for kind in {k for k, _ in found}:
        lacking = [i for i in items if (kind, i) not in found]
        if lacking:
            problems.append(f"{kind} references lack item(s) {', '.join(lacking[:8])}; give one per item or none")
    return found


def reference_folder_names() -> set[str]:
    """Folders of a DIR import that hold references, not a method's images."""
    return set(FOLDERS.values())
