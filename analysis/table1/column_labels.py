"""What each column of each Table 1 block is: the per-block header rows of the table.

A block's columns mean different things (block (a) a λos sweep whose values differ per method,
block (b) the boosted layer, block (c) the image size), so every block gets its own header
row(s).  The labels are the conditions' ``column_label``: from the run's manifest, else from
the ratings file; a file without labels (``simulate --from-paper``, an old export) gets the
paper's own labels when its cells are the paper's design, and plain ``c1 …`` otherwise.  The
caption says which.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from stylestudy.analysis.sources.ratings import RatingSet
from stylestudy.analysis.table1.audit import load_published
from stylestudy.analysis.table1.table import METHOD_ORDER, METHOD_SHORT

# The label forms engine/jobs.py writes: "λos=0.01", "relu4_4 ×100", "256 px".
_LAMBDA_OS = re.compile(r"^λos=(\S+)$")
_BOOSTED = re.compile(r"^(\S+) ×(\S+)$")
_SIZE = re.compile(r"^(\d+) ?px$")
_GENERIC = re.compile(r"^c\d+$")  # what simulate --from-paper writes: says nothing


@dataclass(frozen=True)
class HeaderRow:
    """One header row of a block: what its columns vary, and each column's value."""

    block: str
    what: str  # e.g. "λos (B)", "boosted ×100", "image size"
    values: dict[int, str]  # 1-based column -> e.g. "1e-2", "relu4_4", "256 px"


@dataclass(frozen=True)
class ColumnLabels:
    """Header rows per block, and the caption's sentence on where they come from."""

    rows: dict[str, list[HeaderRow]]
    source: str  # manifest | file | paper | none
    note: str

    @property
    def named(self) -> bool:
        return self.source != "none"

    def for_block(self, block: str) -> list[HeaderRow]:
        return self.rows.get(block, [])


def format_number(text: str) -> str:
    """A λos value as the paper writes it: powers of ten as 1e-2, others as %g."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value > 0 and math.isfinite(value):
        exponent = math.log10(value)
        if abs(exponent - round(exponent)) < 1e-9:
            return "1" if round(exponent) == 0 else f"1e{round(exponent)}"
    return f"{value:g}"


def split_label(label: str) -> tuple[str, str]:
    """(what the column varies, this column's value) of one ``column_label``."""
    if m := _LAMBDA_OS.match(label):
        return "λos", format_number(m[1])
    if m := _BOOSTED.match(label):
        return f"layer boosted ×{m[2]}", m[1]
    if m := _SIZE.match(label):
        return "image size", f"{m[1]} px"
    return "", label


Labels = dict[tuple[str, int, str], str]  # (block, column, method) -> column_label


def _manifest_labels(ratings: RatingSet) -> Labels:
    return {(c.block, c.column, c.method): c.column_label for c in ratings.manifest.rated} if ratings.manifest else {}


def _file_labels(rows: pd.DataFrame) -> Labels:
    if "column_label" not in rows.columns:
        return {}
    rated = rows[rows["role"].eq("rated")]
    labels = rated["column_label"].fillna("").astype(str).str.strip()
    return {(b, int(c), m): label for b, c, m, label in zip(rated["block"], rated["column"], rated["method"], labels)
            if label}


def _informative(labels: Labels) -> bool:
    return any(not _GENERIC.match(label) for label in labels.values())


def _paper_labels() -> Labels:
    paper = load_published()
    return {(str(b), int(c), m): label for b, c, m, label in
            zip(paper["block"], paper["column"], paper["method"], paper["column_label"])}


def _cells(rows: pd.DataFrame) -> set[tuple[str, int, str]]:
    rated = rows[rows["role"].eq("rated")]
    return set(zip(rated["block"].astype(str), rated["column"].astype(int), rated["method"].astype(str)))


def _header_rows(block: str, labels: Labels) -> list[HeaderRow]:
    """One row when every method's columns are the same, else one row per method."""
    per_method: dict[str, dict[int, tuple[str, str]]] = {}
    for (b, column, method), label in labels.items():
        if b == block:
            per_method.setdefault(method, {})[column] = split_label(label)
    methods = [m for m in METHOD_ORDER if m in per_method] + sorted(set(per_method) - set(METHOD_ORDER))
    if not methods:
        return []
    parts = [per_method[m] for m in methods]

    def what(cells: list[dict[int, tuple[str, str]]]) -> str:
        kinds = {w for c in cells for w, _ in c.values()}
        return kinds.pop() if len(kinds) == 1 else ""

    if all(p == parts[0] for p in parts):
        return [HeaderRow(block, what(parts) or "column", {c: v for c, (_, v) in sorted(parts[0].items())})]
    return [HeaderRow(block, f"{what([p]) or 'column'} ({METHOD_SHORT.get(m, m)})",
                      {c: v for c, (_, v) in sorted(p.items())}) for m, p in zip(methods, parts)]


def _build(labels: Labels, source: str, note: str) -> ColumnLabels:
    blocks = sorted({b for b, _, _ in labels})
    return ColumnLabels({b: _header_rows(b, labels) for b in blocks}, source, note)


def column_labels(ratings: RatingSet) -> ColumnLabels:
    """The header rows for the table of these ratings (see the module docstring for the order)."""
    cells = _cells(ratings.all_rows)
    manifest = {k: v for k, v in _manifest_labels(ratings).items() if k in cells}
    if _informative(manifest):
        return _build(manifest, "manifest", "Column labels from the run's manifest.")
    from_file = {k: v for k, v in _file_labels(ratings.all_rows).items() if k in cells}
    if _informative(from_file):
        return _build(from_file, "file", "Column labels from the ratings file's column_label (no manifest given).")
    paper = _paper_labels()
    if {(b, c) for b, c, _ in cells} == {(b, c) for b, c, _ in paper} and {m for *_, m in cells} <= set(METHOD_ORDER):
        return _build({k: v for k, v in paper.items() if k in cells}, "paper",
                      "Column labels are the paper's (the ratings carry none and follow the paper's design; "
                      "block a's λos values are inferred from the paper's text).")
    return ColumnLabels({}, "none", "Columns are numbered c1 … as in the study's figures: the ratings carry no "
                                    "labels and are not the paper's design (give --manifest RUN_DIR/manifest.json).")
