"""The Table 1 layout: per block and row, the baseline line above the normalized line, one
"mean±std" cell per column, cells at or over the block's threshold shaded.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from stylestudy.analysis.ratings import RatingSet

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


def caption(ratings: RatingSet, ddof: int) -> str:
    n = ratings.usable["participant_id"].nunique()
    shading = ", ".join(f"block {b} ≥ {t:g}" for b, t in sorted(ratings.layout.thresholds.items()))
    std = "sample standard deviation (ddof=1)" if ddof == 1 else "population standard deviation (ddof=0)"
    return (f"Mean ± {std} of the ratings (1-{len(_scale(ratings))} scale) of {n} participants; B = baseline (Gatys), "
            f"N = normalized (Choi & Kim). Shaded: {shading or 'none'}. Excluded flags: "
            f"{', '.join(ratings.excluded_flags) or 'none'}; (n=…) marks cells not rated by everyone."
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


def to_markdown(frame: pd.DataFrame, cap: str) -> str:
    cols = _cells(frame)
    lines = ["| block | row | method | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        cells = [f"**{_text(r, c)}**" if _shaded(r, c) else _text(r, c) for c in cols]
        lines.append(f"| {r['block']} | {r['row']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{cap} Shaded cells in bold.\n"


def to_latex(frame: pd.DataFrame, cap: str) -> str:
    cols = _cells(frame)
    out = ["% needs \\usepackage{booktabs} and \\usepackage[table]{xcolor}", "\\begin{table}[t]", "\\centering",
           f"\\caption{{{_tex(cap)}}}", "\\begin{tabular}{lll" + "c" * len(cols) + "}", "\\toprule",
           "Block & Row & Method & " + " & ".join(cols) + " \\\\", "\\midrule"]
    previous = None
    for _, r in frame.iterrows():
        if previous is not None and r["block"] != previous:
            out.append("\\midrule")
        previous = r["block"]
        cells = [("\\cellcolor{gray!25}" if _shaded(r, c) else "") + _tex(_text(r, c)).replace("±", "$\\pm$")
                 for c in cols]
        out.append(f"{_tex(str(r['block']))} & {r['row']} & {r['method']} & " + " & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("≥", "$\\geq$"),
                 ("–", "--")):
        text = text.replace(a, b)
    return text


def to_html(frame: pd.DataFrame, cap: str) -> str:
    cols = _cells(frame)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["block", "row", "method", *cols])
    body = []
    for _, r in frame.iterrows():
        cells = "".join(f'<td class="{"shade" if _shaded(r, c) else ""}">{html.escape(_text(r, c))}</td>' for c in cols)
        body.append(f"<tr><td>{html.escape(str(r['block']))}</td><td>{r['row']}</td><td>{r['method']}</td>{cells}</tr>")
    return (f'<table class="table1"><caption>{html.escape(cap)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def to_csv(frame: pd.DataFrame) -> str:
    return frame[["block", "row", "method", *_cells(frame)]].fillna("").to_csv(index=False)
