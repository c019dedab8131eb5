"""``analyze`` on ratings it did not make: the plain ratings and pairwise layouts and sureal's
dataset files, checked against hand computation and against sureal's own MOS; a dataset file is
never run; the output CSVs neutralise formulas as the exports do."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stylestudy.cli import main
from tests.conftest import import_or_missing

RATINGS = """participant,item,method,score
ann,boat,adain,2
ann,boat,ours,4
ann,cat,adain,1
ann,cat,ours,5
bob,boat,adain,3
bob,boat,ours,3
bob,cat,adain,2
bob,cat,ours,4
cy,boat,adain,1
cy,boat,ours,5
cy,cat,adain,2
cy,cat,ours,3
"""

# unequal participation: ann compares adain/ours four times, bob and cy once each
PAIRWISE = """participant,item,a,b,winner
ann,boat,adain,ours,ours
ann,boat,ours,adain,ours
ann,cat,adain,ours,tie
ann,cat,adain,ours,adain
bob,boat,adain,ours,adain
cy,cat,ours,adain,ours
ann,boat,adain,wct,wct
bob,boat,adain,wct,adain
cy,boat,wct,adain,
"""

SUREAL = """# a dataset in sureal's layout (code that is read, never run)
dataset_name = 'ladder'
ref_dir = 'ref'
ref_videos = [{'content_id': 0, 'content_name': 'src01', 'path': ref_dir + '/src01.yuv'},
              {'content_id': 1, 'content_name': 'src02', 'path': ref_dir + '/src02.yuv'}]
dis_videos = [{'asset_id': 0, 'content_id': 0, 'os': {'s1': 1, 's2': 2, 's3': 2}, 'path': 'src01_hrc01.yuv'},
              {'asset_id': 1, 'content_id': 0, 'os': {'s1': 4, 's2': 5, 's3': 4.5}, 'path': 'src01_hrc02.yuv'},
              {'asset_id': 2, 'content_id': 1, 'os': {'s1': 2, 's2': 1, 's3': 3}, 'path': 'src02_hrc01.yuv'},
              {'asset_id': 3, 'content_id': 1, 'os': {'s1': 5, 's2': 4, 's3': -(-4)}, 'path': 'src02_hrc02.yuv'}]
"""

SUREAL_PC = """dataset_name = 'pc'
ref_videos = [{'content_id': 0, 'content_name': 'caps', 'path': 'caps.png'}]
dis_videos = [{'asset_id': 0, 'content_id': 0, 'path': 'caps1.png',
               'os': {('s1', 1): 1, ('s1', 2): 1, ('s2', 1): 0.5, ('s3', 2): 1}},
              {'asset_id': 1, 'content_id': 0, 'path': 'caps2.png',
               'os': {('s1', 2): 1, ('s2', 0): 0.5, ('s3', 0): 1, ('s3', 2): 1}},
              {'asset_id': 2, 'content_id': 0, 'path': 'caps3.png',
               'os': {('s2', 0): 1, ('s2', 1): 1}}]
"""


def _analyze(tmp_path: Path, name: str, text: str, *extra: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    out = tmp_path / f"out-{name}"
    assert main(["analyze", str(path), "--out", str(out), "--bootstrap", "200", *extra]) == 0
    return out


def test_ratings_layout_gives_the_hand_computed_mos(tmp_path):
    out = _analyze(tmp_path, "ratings.csv", RATINGS)
    ranking = pd.read_csv(out / "ranking.csv").set_index("method")
    assert ranking.loc["ours", "mos"] == pytest.approx((4 + 5 + 3 + 4 + 5 + 3) / 6)
    assert ranking.loc["adain", "mos"] == pytest.approx((2 + 1 + 3 + 2 + 1 + 2) / 6)
    # three participants: the CI is the t interval of the participants' means on 2 df
    means = np.array([(4 + 5) / 2, (3 + 4) / 2, (5 + 3) / 2])
    half = 4.302652729911275 * means.std(ddof=1) / np.sqrt(3)
    assert ranking.loc["ours", "ci_low"] == pytest.approx(means.mean() - half)
    # its upper end (5.24) lies beyond the 1-5 scale: clipped to the scale's top
    assert means.mean() + half > 5 and ranking.loc["ours", "ci_high"] == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "acr" and summary["counts"]["usable"] == 12
    assert "ratings file" in summary["source"]


def test_a_trial_with_two_methods_is_the_paired_design(tmp_path):
    rows = ["participant,item,method,score,trial"]
    for p, (ref, other) in enumerate([(3, 4), (2, 4), (3, 5), (2, 3)]):
        for t, item in enumerate(["boat", "cat"], start=1):
            rows += [f"p{p},{item},photo,{ref},{t}", f"p{p},{item},ours,{other},{t}"]
    out = _analyze(tmp_path, "paired.csv", "\n".join(rows) + "\n")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "paired"
    differences = pd.read_csv(out / "reference_differences.csv")
    assert differences["mean_diff"].abs().iloc[0] == pytest.approx((1 + 2 + 2 + 1) / 4)


def test_pairwise_layout_gives_the_hand_computed_shares(tmp_path):
    out = _analyze(tmp_path, "pairwise.csv", PAIRWISE)
    tests = pd.read_csv(out / "pair_tests.csv")
    pair = tests[(tests["a"] == "adain") & (tests["b"] == "ours")].iloc[0]
    # adain vs ours: ann ours, ours, tie, adain; bob adain; cy ours -> adain 1 + 0.5 + 1 of 6
    assert pair["comparisons"] == 6 and pair["ties"] == 1
    assert pair["pooled_share_a"] == pytest.approx(2.5 / 6)  # the share of all comparisons
    # the headline: the average participant's share (ann 1.5 of 4, bob 1 of 1, cy 0 of 1)
    assert pair["participant_share_a"] == pytest.approx((1.5 / 4 + 1 + 0) / 3)
    wct = tests[(tests["a"] == "adain") & (tests["b"] == "wct")].iloc[0]
    assert wct["comparisons"] == 2  # cy's comparison has no answer: missing, not a comparison
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "pairwise" and summary["counts"]["missing"] == 2  # its two rows
    # a is Image 1: of the 7 decisive answers, a (the first named) won 5
    assert summary["position_bias"]["decisive"] == 7 and summary["position_bias"]["image1_share"] == pytest.approx(5 / 7)


def test_sureal_dataset_mos_is_the_mean_of_its_scores_and_sureals_own(tmp_path):
    out = _analyze(tmp_path, "ladder.py", SUREAL)
    per_condition = pd.read_csv(out / "condition_mos.csv").set_index("method")
    assert per_condition.loc["src01_hrc02", "mos"] == pytest.approx((4 + 5 + 4.5) / 3)
    assert per_condition.loc["src02_hrc02", "mos"] == pytest.approx((5 + 4 + 4) / 3)
    sureal = import_or_missing("sureal.dataset_reader", "pip install -e '.[test]'")
    from sureal.subjective_model import MosModel

    from stylestudy.analysis.sources.sureal_dataset import read_dataset

    dataset = type("Dataset", (), read_dataset(tmp_path / "ladder.py"))
    theirs = MosModel(sureal.RawDatasetReader(dataset)).run_modeling()["quality_scores"]
    names = [Path(v["path"]).stem for v in dataset.dis_videos]
    assert [per_condition.loc[n, "mos"] for n in names] == pytest.approx(list(theirs))


def test_method_from_maps_assets_to_shared_methods(tmp_path):
    out = _analyze(tmp_path, "ladder.py", SUREAL, "--method-from", r"hrc\d+")
    ranking = pd.read_csv(out / "ranking.csv").set_index("method")
    assert sorted(ranking.index) == ["hrc01", "hrc02"]
    assert ranking.loc["hrc02", "mos"] == pytest.approx((4 + 5 + 4.5 + 5 + 4 + 4) / 6)
    assert ranking.loc["hrc02", "participants"] == 3


def test_sureal_paired_comparison_dataset(tmp_path):
    out = _analyze(tmp_path, "pc.py", SUREAL_PC)
    tests = pd.read_csv(out / "pair_tests.csv")
    one_two = tests[(tests["a"] == "caps1") & (tests["b"] == "caps2")].iloc[0]
    # s1: caps1 won; s2: a tie (both halves, one comparison); s3: caps2 won
    assert one_two["comparisons"] == 3 and one_two["ties"] == 1 and one_two["pooled_share_a"] == pytest.approx(1.5 / 3)
    one_three = tests[(tests["a"] == "caps1") & (tests["b"] == "caps3")].iloc[0]
    assert one_three["comparisons"] == 3 and one_three["pooled_share_a"] == pytest.approx(2 / 3)  # s1, s3 won; s2 lost
    assert "Position: not known (the input does not say which image was shown first)" in (out / "report.md").read_text()


def test_the_json_analyze_writes_reads_back_to_the_same_mos(tmp_path):
    first = _analyze(tmp_path, "ratings.csv", RATINGS)
    again = _analyze(tmp_path, "sureal_dataset.json", (first / "sureal_dataset.json").read_text())
    a, b = (pd.read_csv(o / "ranking.csv").set_index("method")["mos"] for o in (first, again))
    assert a.to_dict() == pytest.approx(b.to_dict())


def test_a_dataset_file_is_never_run(tmp_path, capsys):
    """A literal that is a call (here one that would create a file) is refused, and nothing ran."""
    sentinel = tmp_path / "ran"
    evil = SUREAL.replace("'ladder'", f"__import__('pathlib').Path({str(sentinel)!r}).touch()")
    path = tmp_path / "evil.py"
    path.write_text(evil, encoding="utf-8")
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "evil.py, line 2: a call is code, not a literal" in err and len(err.strip().splitlines()) == 1
    assert not sentinel.exists()


def test_format_overrides_the_detection(tmp_path, capsys):
    path = tmp_path / "scores.txt"
    path.write_text(RATINGS, encoding="utf-8")
    assert main(["analyze", str(path), "--format", "export", "--out", str(tmp_path / "o")]) == 2
    assert "lacks column(s) participant_id" in capsys.readouterr().err
    assert main(["analyze", str(path), "--format", "ratings", "--out", str(tmp_path / "o")]) == 0


def test_output_csvs_neutralise_formulas(tmp_path):
    """Names that are spreadsheet formulas reach every CSV only as text (a leading apostrophe),
    and ``restore`` gives them back."""
    from stylestudy.evalserver.spreadsheet_cells import restore

    evil = {"adain": "=HYPERLINK(\"http://x\")", "ours": "@SUM(A1)", "boat": "+cmd|' /C calc'!A0", "cat": "-2+3"}
    text = RATINGS
    for plain, formula in evil.items():
        text = text.replace(f",{plain},", f",\"{formula.replace(chr(34), chr(34) * 2)}\",")
    out = _analyze(tmp_path, "evil.csv", text)
    seen = set()
    for path in out.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not _is_number(cell)):
                        pytest.fail(f"{path.name}: {cell!r} would be a formula")
                    seen.add(restore(cell))
    assert set(evil.values()) <= seen


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference" / "input-formats.md"
# each error line the docs page shows, and the input that gives it
DOCUMENTED_ERRORS = {
    "evil.py": ("dataset_name = 'x'\nref_videos = list()\n", []),
    "ratings.csv": None,  # several, below
    "pairwise.csv": ("participant,item,a,b,winner\np1,x,a,b,a\np1,x,a,b,c\n", []),
    "export.csv": None,
    "photo.csv": (b"\x89PNG\r\n\x1a\n" + bytes(100), []),
    "notes.csv": ("who,what\n1,2\n", []),
}
RATINGS_ERRORS = [("participant,item,method,score\np1,x,a,3\np1,x,b,good\n", []),
                  ("participant,item,method,score,scale_max\np1,x,a,3,5\np1,x,b,6,5\n", []),
                  ("participant,item,method,score\np1,x,a,3\np1,x,a,4\np1,x,b,2\n", [])]


def _export_errors() -> list[tuple[str, list[str]]]:
    frame = pd.read_csv(pd.io.common.StringIO(RATINGS), dtype=str, keep_default_na=False)
    from stylestudy.analysis.sources import foreign

    export = foreign.ratings_rows(Path("r.csv"), frame)
    return [(export.assign(row="").to_csv(index=False), []), (export.assign(row_label="").to_csv(index=False), []),
            (export.iloc[:0].to_csv(index=False), [])]


def test_the_documented_errors_are_the_real_ones(tmp_path, monkeypatch, capsys):
    """Every error line on docs/reference/input-formats.md, produced by the real command."""
    documented = {line for line in DOCS.read_text(encoding="utf-8").splitlines()
                  if line.startswith("stylestudy analyze: error: ")}
    monkeypatch.chdir(tmp_path)
    cases = [(n, *c) for n, c in DOCUMENTED_ERRORS.items() if c is not None]
    cases += [("ratings.csv", *c) for c in RATINGS_ERRORS] + [("export.csv", *c) for c in _export_errors()]
    produced = set()
    for name, content, extra in cases:
        Path(name).write_bytes(content if isinstance(content, bytes) else content.encode())
        assert main(["analyze", name, "--out", "out", *extra]) == 2
        produced.add(capsys.readouterr().err.strip())
    assert produced == documented


def test_the_documented_examples_run(tmp_path):
    blocks = DOCS.read_text(encoding="utf-8").split("```csv\n")[1:]
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        out = _analyze(tmp_path, f"example{i}.csv", block.split("```")[0])
        assert json.loads((out / "summary.json").read_text())["protocol"] == ["acr", "paired", "pairwise"][i]


def test_the_command_line_offers_the_formats_the_reader_knows():
    from stylestudy.analysis import cli
    from stylestudy.analysis.sources import foreign

    assert cli.INPUT_FORMATS == foreign.INPUT_FORMATS


LUKAS = Path(__file__).resolve().parent / "data" / "lukas_pc_excerpt.py"  # a public dataset, cut to 168 comparisons


def test_a_public_paired_comparison_dataset_counts_as_sureal_does(tmp_path):
    """Lukas_SPIE14 (Netflix/sureal's resource/dataset, with its permission notice), one image and
    six subjects: every pair's comparisons and wins as sureal's own PairedCompDatasetReader reads
    the file."""
    out = tmp_path / "out"
    assert main(["analyze", str(LUKAS), "--method-from", r"(\d+)$", "--out", str(out), "--bootstrap", "200"]) == 0
    tests = pd.read_csv(out / "pair_tests.csv", dtype={"a": str, "b": str})
    assert int(tests["comparisons"].sum()) == 168 and int(tests["ties"].sum()) == 0
    reader = import_or_missing("sureal.dataset_reader", "pip install -e '.[test]'")
    from stylestudy.analysis.sources.sureal_dataset import read_dataset

    scores = reader.PairedCompDatasetReader(type("Dataset", (), read_dataset(LUKAS))).opinion_score_3darray
    wins = np.nansum(scores, axis=2)  # wins[i, j]: subjects' wins of asset i over asset j
    for t in tests.itertuples():
        i, j = int(t.a) - 1, int(t.b) - 1  # Caps1 is asset 0
        assert t.comparisons == wins[i, j] + wins[j, i]
        assert t.pooled_share_a == pytest.approx(wins[i, j] / (wins[i, j] + wins[j, i]))


def test_a_spreadsheets_csv_with_a_byte_order_mark_and_capitalised_names(tmp_path, capsys):
    header, _, rest = RATINGS.partition("\n")
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeff Participant ,Item,METHOD,Score\n".encode() + rest.encode())
    assert main(["analyze", str(path), "--out", str(tmp_path / "o")]) == 0
    ranking = pd.read_csv(tmp_path / "o" / "ranking.csv").set_index("method")
    assert ranking.loc["ours", "mos"] == pytest.approx(24 / 6)
    (tmp_path / "semi.csv").write_text(RATINGS.replace(",", ";"))
    assert main(["analyze", str(tmp_path / "semi.csv"), "--out", str(tmp_path / "s")]) == 2
    assert "its columns are separated by ';': save it comma-separated" in capsys.readouterr().err
