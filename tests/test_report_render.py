"""The one renderer: a document of sections becomes report.md and a self-contained report.html
with the same words, escaped for each format, figures embedded once, one stylesheet."""

from __future__ import annotations

import base64

import pandas as pd

from stylestudy.analysis.render.document import TEMPLATES, Document, Prepared, Section, Table, cell_text, render

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_cells_in_words():
    assert cell_text(0.123456) == "0.123" and cell_text((0.5, 1.25)) == "[0.5, 1.25]" and cell_text(3) == "3"
    assert Table.of(pd.DataFrame({"a": [1.0 / 3], "b": ["x"]})).rows == [["0.333", "x"]]


def test_markdown_and_html_say_the_same_and_escape_for_their_format(tmp_path):
    figure = tmp_path / "fig" / "ranking.png"
    figure.parent.mkdir()
    figure.write_bytes(PNG)
    out = tmp_path / "out"
    out.mkdir()
    doc = Document("stylestudy analysis", True, ["Ratings from a <b>file</b>."], [
        Section("Scores", ["First paragraph.", ["one", "two"]], Table(["method", "note"], [["a|b", "<script>"]]),
                [figure]),
        Section("Laid out elsewhere", table=Prepared("| x |\n|---|\n| 1 |\n", "<table class=t><tr><td>1</td></tr></table>")),
        Section("Empty", table=Table(["m"], [])),
    ])
    render(doc, out)
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert md.startswith("# stylestudy analysis (SYNTHETIC DATA)\n")
    assert "| method | note |\n|---|---|\n| a\\|b | <script> |" in md  # a pipe would split the cell
    assert "- one\n- two" in md and "![ranking](../fig/ranking.png)" in md and "| x |\n|---|\n| 1 |" in md
    assert "## Empty\n\n(none)" in md
    assert '<span class="synthetic">SYNTHETIC DATA</span>' in page
    assert "<td>&lt;script&gt;</td>" in page and "<script>" not in page  # words are escaped ...
    assert "<table class=t><tr><td>1</td></tr></table>" in page  # ... a prepared table is not
    assert "<p>Ratings from a &lt;b&gt;file&lt;/b&gt;.</p>" in page and "<li>one</li><li>two</li>" in page
    assert page.count("data:image/png;base64,") == 1 and f'alt="ranking" src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert (TEMPLATES / "report.css").read_text().strip() in page  # the one stylesheet, inline
    assert "<h2>Empty</h2>\n</body>" in page.replace("\n\n", "\n")  # an empty table is left out of the page
