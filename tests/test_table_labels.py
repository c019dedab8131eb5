"""The Table 1 header rows: each block's columns named from the manifest, the ratings file, or
the paper; ``c1 …`` only for an unknown design, said in the caption; the numbers untouched; the
LaTeX table compiled by pdflatex with booktabs and xcolor (required in CI)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from stylestudy.analysis.sources.ratings import load_ratings
from stylestudy.analysis.table1.audit import load_published
from stylestudy.analysis.table1.column_labels import column_labels, format_number, split_label
from stylestudy.analysis.table1.simulate import design_cells, from_design, from_published
from stylestudy.analysis.table1.table import caption, table_frame, to_csv, to_html, to_latex, to_markdown

# The paper's columns, typed from SUMMARY.md sections 3-4 (not from our data file).
PAPER_A_BASELINE = ["1e-2", "1e-3", "1e-4", "1e-5", "1e-6"]
PAPER_A_NORMALIZED = ["1", "1e-1", "1e-2", "1e-3", "1e-4"]
PAPER_B = ["Conv1_2", "Conv2_2", "Conv3_4", "Conv4_4", "Conv5_4"]
PAPER_C = ["256 px", "512 px", "1024 px"]


def markdown_headers(md: str) -> dict[str, dict[str, list[str]]]:
    """block -> {what: [column values]} from a table.md's italic header rows (row cell empty)."""
    out: dict[str, dict[str, list[str]]] = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 3 and cells[1] == "" and cells[2].startswith("*"):
            out.setdefault(cells[0], {})[cells[2].strip("*")] = [c.strip("*") for c in cells[3:] if c]
    return out


def html_headers(page: str) -> dict[str, dict[str, list[str]]]:
    import html

    out: dict[str, dict[str, list[str]]] = {}
    for row in re.findall(r'<tr class="columns">(.*?)</tr>', page):
        block, _, what, *values = [html.unescape(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", row)]
        out.setdefault(block, {})[what] = [v for v in values if v]
    return out


def latex_headers(tex: str) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for line in tex.splitlines():
        if " & & \\textit{" in line:
            block, _, what, *values = re.split(r"\s*(?<!\\)&\s*", line.strip().removesuffix("\\\\").strip())
            unwrap = lambda c: re.fullmatch(r"\\textit\{(.*)\}", c)[1]  # noqa: E731
            out.setdefault(block, {})[unwrap(what)] = [unwrap(v) for v in values if v]
    return out


def csv_lines(text: str) -> tuple[list[dict], list[dict]]:
    """(header rows, data lines) of a table.csv."""
    rows = list(csv.DictReader(io.StringIO(text)))
    return [r for r in rows if r["row"] == ""], [r for r in rows if r["row"] != ""]


def tex_power(value: str) -> str:
    m = re.fullmatch(r"1e(-?\d+)", value)
    return f"$10^{{{m[1]}}}$" if m else value


@pytest.fixture()
def paper_file(tmp_path) -> Path:
    """What `simulate --from-paper` writes: the paper's design, column_label c1 ... (no manifest)."""
    path = tmp_path / "paper.csv"
    frame = from_published(load_published(), seed=1)
    assert set(frame["column_label"]) == {"c1", "c2", "c3", "c4", "c5"}
    frame.to_csv(path, index=False)
    return path


def render(ratings, labels=True):
    lab = column_labels(ratings) if labels else None
    cap = caption(ratings, 1, lab)
    tf = table_frame(ratings, 1)
    return lab, cap, tf, {"md": to_markdown(tf, cap, lab), "html": to_html(tf, cap, lab), "tex": to_latex(tf, cap, lab),
                          "csv": to_csv(tf, lab)}


def test_label_parts():
    assert split_label("λos=1e-05") == ("λos", "1e-5")
    assert split_label("λos=0.01") == ("λos", "1e-2")
    assert split_label("λos=1") == ("λos", "1")
    assert split_label("λos=0.005") == ("λos", "0.005")
    assert split_label("relu4_4 ×100") == ("layer boosted ×100", "relu4_4")
    assert split_label("256 px") == ("image size", "256 px")
    assert split_label("anything else") == ("", "anything else")
    assert format_number("1000") == "1e3" and format_number("x") == "x"


def test_a_file_of_the_paper_design_gets_the_papers_labels_in_every_format(paper_file):
    ratings = load_ratings(paper_file)
    labels, cap, _, out = render(ratings)
    assert labels.source == "paper" and "Column labels are the paper's" in cap and "inferred" in cap
    expected = {"a": {"λos (B)": PAPER_A_BASELINE, "λos (N)": PAPER_A_NORMALIZED},
                "b": {"layer boosted ×100": PAPER_B}, "c": {"image size": PAPER_C}}
    assert markdown_headers(out["md"]) == expected
    assert html_headers(out["html"]) == expected
    tex = {"a": {"$\\lambda_{\\mathrm{os}}$ (B)": [tex_power(v) for v in PAPER_A_BASELINE],
                 "$\\lambda_{\\mathrm{os}}$ (N)": [tex_power(v) for v in PAPER_A_NORMALIZED]},
           "b": {"layer boosted $\\times$100": [v.replace("_", "\\_") for v in PAPER_B]}, "c": {"image size": PAPER_C}}
    assert latex_headers(out["tex"]) == tex
    headers, _ = csv_lines(out["csv"])
    assert [(h["block"], h["method"], [h[f"c{i}"] for i in range(1, 6)]) for h in headers] == [
        ("a", "λos (B)", PAPER_A_BASELINE), ("a", "λos (N)", PAPER_A_NORMALIZED), ("b", "layer boosted ×100", PAPER_B),
        ("c", "image size", PAPER_C + ["", ""])]
    # Header rows sit right above their block's lines; the top header numbers the figure columns.
    md_lines = out["md"].splitlines()
    assert md_lines[0] == "| block | row | method | 1 | 2 | 3 | 4 | 5 |"
    assert md_lines[4].startswith("| a | 1 | B |") and md_lines[8].startswith("| b |  | *layer boosted")


def test_the_numbers_are_the_unlabelled_tables_numbers(paper_file):
    ratings = load_ratings(paper_file)
    *_, labelled = render(ratings)
    *_, plain = render(ratings, labels=False)
    headers, lines = csv_lines(labelled["csv"])
    assert len(headers) == 4 and lines == list(csv.DictReader(io.StringIO(plain["csv"])))
    # The same cells shaded in every format, and as many as the frame says.
    tf = table_frame(ratings, 1)
    shaded = int(tf[[c for c in tf.columns if c.startswith("shade_")]].fillna(False).to_numpy().sum())
    assert shaded > 0
    assert labelled["tex"].count("\\cellcolor{gray!25}") == shaded == labelled["html"].count('class="shade"')
    assert labelled["md"].count("**") // 2 == shaded


def test_an_unknown_design_without_labels_is_numbered_and_says_so(paper_file, tmp_path):
    frame = pd.read_csv(paper_file)
    frame = frame[~((frame["block"] == "c") & (frame["column"] == 3))]  # no longer the paper's design
    path = tmp_path / "other.csv"
    frame.to_csv(path, index=False)
    labels, cap, _, out = render(load_ratings(path))
    assert labels.source == "none" and not labels.rows
    assert "Columns are numbered c1" in cap and "--manifest" in cap
    assert out["md"].splitlines()[0] == "| block | row | method | c1 | c2 | c3 | c4 | c5 |"
    assert markdown_headers(out["md"]) == {} and html_headers(out["html"]) == {} and latex_headers(out["tex"]) == {}
    assert csv_lines(out["csv"])[0] == []


def test_labels_come_from_the_file_when_it_has_them(paper_file, tmp_path):
    frame = pd.read_csv(paper_file)
    frame["column_label"] = [f"{b}/{c} & 50%_#{m[0]}" for b, c, m in zip(frame["block"], frame["column"], frame["method"])]
    path = tmp_path / "labelled.csv"
    frame.to_csv(path, index=False)
    labels, cap, _, out = render(load_ratings(path))
    assert labels.source == "file" and "from the ratings file" in cap
    heads = markdown_headers(out["md"])
    # The methods' labels differ in every block: one row per method, labels verbatim.
    assert heads["c"] == {"column (B)": ["c/1 & 50%_#b", "c/2 & 50%_#b", "c/3 & 50%_#b"],
                          "column (N)": ["c/1 & 50%_#n", "c/2 & 50%_#n", "c/3 & 50%_#n"]}
    assert "c/1 \\& 50\\%\\_\\#b" in out["tex"]


def test_the_manifest_names_columns_of_any_lambda_sweep(study_run, tmp_path):
    cells = [{k: v for k, v in c.items() if k != "column_label"} for c in design_cells(study_run)]
    path = tmp_path / "sim.csv"
    from_design(cells, 4, 0.5, seed=2).to_csv(path, index=False)
    assert load_ratings(path).manifest is None and column_labels(load_ratings(path)).source == "none"
    ratings = load_ratings(path, study_run / "manifest.json")
    labels, cap, _, out = render(ratings)
    # tests/conftest.py SERVER_STUDY: baseline = [1e-2, 1e-5], normalized = [1.0, 1e-3].
    assert labels.source == "manifest" and "from the run's manifest" in cap
    assert markdown_headers(out["md"]) == {"a": {"λos (B)": ["1e-2", "1e-5"], "λos (N)": ["1", "1e-3"]}}


# --- pdflatex --------------------------------------------------------------------------------

DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[table]{xcolor}\n\\begin{document}\n" \
           "\\input{table.tex}\n\\end{document}\n"


def pdflatex(tex: str, folder: Path) -> str:
    """Compile the table as is inside a bare article; return the log.  Without pdflatex the
    test skips on a developer machine and fails in CI (CI=true), where .ci/run installs TeX Live."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is required in CI (.ci/run installs texlive-latex-base and texlive-latex-recommended)")
        pytest.skip("no pdflatex here (apt-get install texlive-latex-base texlive-latex-recommended)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.tex").write_text(tex, encoding="utf-8")
    (folder / "doc.tex").write_text(DOCUMENT, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                         check=False, cwd=folder, capture_output=True, text=True, timeout=300)
    log = (folder / "doc.log").read_text(encoding="latin-1") if (folder / "doc.log").exists() else run.stdout
    assert run.returncode == 0 and (folder / "doc.pdf").stat().st_size > 0, log[-3000:]
    return log


def test_the_latex_table_compiles_with_booktabs_and_xcolor(paper_file, tmp_path):
    *_, out = render(load_ratings(paper_file))
    assert out["tex"].isascii()
    log = pdflatex(out["tex"], tmp_path / "paper")
    assert "Overfull \\hbox" not in log  # the paper's table fits an article's text width
    assert "booktabs.sty" in log and "xcolor.sty" in log and "colortbl.sty" in log


def test_hostile_labels_and_captions_still_compile(paper_file, tmp_path):
    frame = pd.read_csv(paper_file)
    frame["column_label"] = [f"{{x}}_^~$\\ & % # Ästhetik 画 λ{c}" for c in frame["column"]]
    frame["flags"] = ["odd_flag&%" if i < 3 else "" for i in range(len(frame))]
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    ratings = load_ratings(path, exclude_flags=("odd_flag&%",))
    *_, out = render(ratings)
    assert out["tex"].isascii() and "Asthetik" in out["tex"]
    pdflatex(out["tex"], tmp_path / "hostile")
