"""The report as data, rendered once: a ``Document`` of ``Section``s becomes ``report.md`` and a
self-contained ``report.html`` (figures embedded, one stylesheet) through the Jinja2 templates
beside this module.  Analyses say what a section holds; only the templates say how it looks, so
the two formats cannot drift apart and no finished page is ever edited afterwards."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOISE = 1e-12  # a float this close to 0 is floating-point noise, printed as 0


def cell_text(value, digits: str = ".3g") -> str:
    """One table cell in words: floats to 3 significant digits, intervals as [low, high]; no
    signed zero ("-0.00") and no rounding noise ("-1.13e-18" is 0)."""
    if isinstance(value, (float, np.floating)):
        text = f"{0.0 if abs(value) < NOISE else value:{digits}}"
        return text[1:] if re.fullmatch(r"-0*\.?0*(e[+-]?\d+)?%?", text) else text
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(cell_text(v, digits) for v in value) + "]"
    return str(value)


@dataclass
class Table:
    """A table already in words (header and rows of strings), so both formats show the same cells."""

    columns: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, frame: pd.DataFrame, digits: str = ".3g") -> Table:
        return cls([str(c) for c in frame.columns],
                   [[cell_text(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)])


REPORT_ROWS = 40  # a longer table shows this many rows in the report; its CSV has them all


def top_rows(frame: pd.DataFrame, csv_name: str, by: str | None = None, digits: str = ".3g") -> tuple[Table, str]:
    """A table readable at 100 methods (4950 pairs): its first ``REPORT_ROWS`` rows (smallest ``by``
    first), and the sentence saying so (empty when it is whole)."""
    if len(frame) <= REPORT_ROWS:
        return Table.of(frame, digits), ""
    part = frame.sort_values(by, kind="stable") if by else frame
    which = f"with the smallest {by}" if by else "first"
    return (Table.of(part.head(REPORT_ROWS), digits),
            f" Shown: the {REPORT_ROWS} of {len(frame)} rows {which}; {csv_name} has them all.")


@dataclass
class Prepared:
    """A table another module lays out itself for both formats (Table 1: shaded cells, header rows)."""

    markdown: str
    html: str


@dataclass
class Section:
    """One heading: paragraphs (a list inside is a bulleted list), then a table, then figures."""

    heading: str
    paragraphs: list[str | list[str]] = field(default_factory=list)
    table: Table | Prepared | None = None
    figures: list[Path] = field(default_factory=list)


@dataclass
class Document:
    title: str
    synthetic: bool
    lead: list[str]  # paragraphs under the title: where the ratings came from, what was counted
    sections: list[Section]


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["md_cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    env.tests["table"] = lambda value: isinstance(value, Table)
    env.tests["prepared"] = lambda value: isinstance(value, Prepared)
    return env


def _png_data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(document: Document, out: Path) -> None:
    """Write ``out/report.md`` and ``out/report.html`` from the document."""
    relative = {p: Path(os.path.relpath(p, out)).as_posix() for s in document.sections for p in s.figures}
    md = _environment(False).get_template("report.md.j2").render(doc=document, relative=relative)
    (out / "report.md").write_text(md, encoding="utf-8")
    page = _environment(True).get_template("report.html.j2").render(
        doc=document, png=_png_data, style=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        markup=Markup)
    (out / "report.html").write_text(page, encoding="utf-8")
