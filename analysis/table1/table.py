"""The Table 1 layout: per block and row, the baseline line above the normalized line, one
"mean±std" cell per column, cells at or over the block's threshold shaded.  Each block opens
with its own header row(s) saying what its columns are (``analysis.table1.column_labels``).
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stylestudy.analysis.render.csv_files import neutralised
from stylestudy.analysis.sources.ratings import RatingSet

if TYPE_CHECKING:
    from stylestudy.analysis.table1.column_labels import ColumnLabels, HeaderRow

METHOD_ORDER = ["baseline", "normalized"]
METHOD_SHORT = {"baseline": "B", "normalized": "N"}


def cell_stats(usable: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """mean, std (ddof), n per (block, row, method, column)."""
    grouped = usable.groupby(["block", "row", "method", "column"])["rating"]
    out = grouped.agg(mean="mean", n="count").reset_index()
    out["std"] = grouped.std(ddof=ddof).values  # NaN when n <= ddof
    return out


def format_cell(mean: float, std: float, n: int, n_max: int, decimals: tuple[int, int] = (1, 2)) -> str:
    if n == 0 or math.isnan(mean):
        return "–"
    spread = "–" if math.isnan(std) else f"{std:.{decimals[1]}f}"
    text = f"{mean:.{decimals[0]}f}±{spread}"
    return text if n == n_max else f"{text} (n={n})"


def table_frame(ratings: RatingSet, ddof: int = 1, decimals: tuple[int, int] = (1, 2)) -> pd.DataFrame:
    """One line per (block, row, method): cells as strings, plus a parallel 'shade' flag per cell."""
    stats = cell_stats(ratings.usable, ddof)
    n_max = ratings.usable["participant_id"].nunique()
    lines = []
    for (block, row), part in stats.groupby(["block", "row"], sort=True):
        columns = sorted(part["column"].unique())
        for method in METHOD_ORDER:
            line = {"block": block, "row": int(row), "method": METHOD_SHORT[method]}
            for col in columns:
                cell = part[(part["method"] == method) & (part["column"] == col)]
                if cell.empty:
                    line[f"c{col}"], line[f"shade_c{col}"] = "–", False
                    continue
                c = cell.iloc[0]
                line[f"c{col}"] = format_cell(c["mean"], c["std"], int(c["n"]), n_max, decimals)
                threshold = ratings.layout.thresholds.get(block)
                line[f"shade_c{col}"] = threshold is not None and c["mean"] >= threshold
            lines.append(line)
    return pd.DataFrame(lines)


def caption(ratings: RatingSet, ddof: int, labels: ColumnLabels | None = None) -> str:
    n = ratings.usable["participant_id"].nunique()
    shading = ", ".join(f"block {b} ≥ {t:g}" for b, t in sorted(ratings.layout.thresholds.items()))
    std = "sample standard deviation (ddof=1)" if ddof == 1 else "population standard deviation (ddof=0)"
    return (f"Mean ± {std} of the ratings (1-{len(_scale(ratings))} scale) of {n} participants; B = baseline (Gatys), "
            f"N = normalized (Choi & Kim). Shaded: {shading or 'none'}. Excluded flags: "
            f"{', '.join(ratings.excluded_flags) or 'none'}; (n=…) marks cells not rated by everyone."
            + (f" {labels.note}" if labels is not None else "")
            + (" SYNTHETIC DATA." if ratings.synthetic else ""))


def _scale(ratings: RatingSet) -> range:
    top = int(ratings.all_rows["rating"].max()) if ratings.all_rows["rating"].notna().any() else 5
    return range(1, max(top, 5) + 1)


def _cells(frame: pd.DataFrame) -> list[str]:
    return sorted((c for c in frame.columns if c.startswith("c") and c[1:].isdigit()), key=lambda c: int(c[1:]))


def _text(r: pd.Series, c: str) -> str:
    """A cell's text; blocks with fewer columns have none there."""
    value = r.get(c)
    return "" if not isinstance(value, str) else value


def _shaded(r: pd.Series, c: str) -> bool:
    value = r.get(f"shade_{c}")
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _column_names(cols: list[str], labels: ColumnLabels | None) -> list[str]:
    """The top header: figure column numbers when each block names its columns, else c1 …"""
    return [c[1:] for c in cols] if labels is not None and labels.named else cols


def _blocks(frame: pd.DataFrame, labels: ColumnLabels | None) -> list[tuple[str, list[HeaderRow], pd.DataFrame]]:
    """(block, its header rows, its lines) in table order."""
    return [(str(block), labels.for_block(str(block)) if labels is not None else [], part)
            for block, part in frame.groupby("block", sort=False)]


def _value(header: HeaderRow, c: str) -> str:
    return header.values.get(int(c[1:]), "")


def to_markdown(frame: pd.DataFrame, cap: str, labels: ColumnLabels | None = None) -> str:
    cols = _cells(frame)
    lines = ["| block | row | method | " + " | ".join(_column_names(cols, labels)) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    for block, headers, part in _blocks(frame, labels):
        for h in headers:
            cells = [f"*{_md(_value(h, c))}*" if _value(h, c) else "" for c in cols]
            lines.append(f"| {_md(block)} |  | *{_md(h.what)}* | " + " | ".join(cells) + " |")
        for _, r in part.iterrows():
            cells = [f"**{_text(r, c)}**" if _shaded(r, c) else _text(r, c) for c in cols]
            lines.append(f"| {r['block']} | {r['row']} | {r['method']} | " + " | ".join(cells) + " |")
    headers = " Italic rows name each block's columns." if labels is not None and labels.named else ""
    return "\n".join(lines) + f"\n\n{cap} Shaded cells in bold.{headers}\n"


def _md(text: str) -> str:
    """A label in a Markdown cell: pipes and emphasis marks escaped."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def to_latex(frame: pd.DataFrame, cap: str, labels: ColumnLabels | None = None) -> str:
    """A ``table`` float for ``\\input``: ASCII only, needs booktabs and xcolor (``table`` option)."""
    cols = _cells(frame)
    out = ["% needs \\usepackage{booktabs} and \\usepackage[table]{xcolor}", "\\begin{table}[t]", "\\centering",
           "\\small", "\\setlength{\\tabcolsep}{3pt}", f"\\caption{{{_tex(cap)}}}",
           "\\begin{tabular}{lll" + "c" * len(cols) + "}", "\\toprule",
           "Block & Row & Method & " + " & ".join(_column_names(cols, labels)) + " \\\\", "\\midrule"]
    for i, (block, headers, part) in enumerate(_blocks(frame, labels)):
        if i:
            out.append("\\midrule")
        for h in headers:
            cells = [f"\\textit{{{_tex_value(_value(h, c))}}}" if _value(h, c) else "" for c in cols]
            out.append(f"{_tex(block)} & & \\textit{{{_tex(h.what)}}} & " + " & ".join(cells) + " \\\\")
        if headers:
            out.append(f"\\cmidrule(lr){{3-{3 + len(cols)}}}")
        for _, r in part.iterrows():
            cells = [("\\cellcolor{gray!25}" if _shaded(r, c) else "") + _tex(_text(r, c)) for c in cols]
            out.append(f"{_tex(str(r['block']))} & {r['row']} & {_tex(str(r['method']))} & " + " & ".join(cells)
                       + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


# One character at a time, so that no replacement is escaped again.
_TEX = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "_": "\\_", "#": "\\#", "$": "\\$", "{": "\\{",
        "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "≥": "$\\geq$", "±": "$\\pm$",
        "×": "$\\times$", "λ": "$\\lambda$", "…": "\\ldots{}", "–": "--", "—": "---"}


def _tex_char(ch: str) -> str:
    """A character in ASCII LaTeX: special ones escaped, accents dropped, anything else "?"."""
    if ch in _TEX:
        return _TEX[ch]
    if ch.isascii():
        return ch
    folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return "".join(_TEX.get(c, c) for c in folded) or "?"


def _tex(text: str) -> str:
    return "$\\lambda_{\\mathrm{os}}$".join("".join(map(_tex_char, part)) for part in text.split("λos"))


def _tex_value(text: str) -> str:
    """A header value; powers of ten as in print (1e-2 -> 10^{-2})."""
    m = re.fullmatch(r"1e(-?\d+)", text)
    return f"$10^{{{m[1]}}}$" if m else _tex(text)


def to_html(frame: pd.DataFrame, cap: str, labels: ColumnLabels | None = None) -> str:
    cols = _cells(frame)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["block", "row", "method", *_column_names(cols, labels)])
    body = []
    for block, headers, part in _blocks(frame, labels):
        for h in headers:
            cells = "".join(f'<th scope="col">{html.escape(_value(h, c))}</th>' for c in cols)
            body.append(f'<tr class="columns"><th>{html.escape(block)}</th><th></th><th scope="row">'
                        f"{html.escape(h.what)}</th>{cells}</tr>")
        for _, r in part.iterrows():
            cells = "".join(f'<td class="{"shade" if _shaded(r, c) else ""}">{html.escape(_text(r, c))}</td>'
                            for c in cols)
            body.append(f"<tr><td>{html.escape(str(r['block']))}</td><td>{r['row']}</td><td>{r['method']}</td>{cells}</tr>")
    return (f'<table class="table1"><caption>{html.escape(cap)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def to_csv(frame: pd.DataFrame, labels: ColumnLabels | None = None) -> str:
    """Each block's header rows (row empty, method = what the columns vary) above its lines."""
    cols = _cells(frame)
    rows = []
    for block, headers, part in _blocks(frame, labels):
        rows += [{"block": block, "row": "", "method": h.what, **{c: _value(h, c) for c in cols}} for h in headers]
        rows += part[["block", "row", "method", *cols]].to_dict(orient="records")
    return neutralised(pd.DataFrame(rows, columns=["block", "row", "method", *cols]).fillna("")).to_csv(index=False)
