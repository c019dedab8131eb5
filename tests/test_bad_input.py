"""Every numeric option of every command, given a value outside its range: one line that names
the option (or the size) and what is allowed, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import pytest

from stylestudy.cli import main

C, S = "{content}", "{style}"
TRANSFER = ["transfer", C, S, "--out", "{out}", "--method", "normalized", "--lambda-os", "1e-3", "--size", "32",
            "--iterations", "1", "--device", "cpu"]
INSPECT = ["inspect", C, S, "--size", "32", "--device", "cpu"]

CASES = [
    # transfer / inspect: sizes, weights, λos, iterations, steps, seeds, choices
    (TRANSFER + ["--size", "8"], "argument --size: must be an integer ≥ 16, got 8"),
    (TRANSFER + ["--size", "16"], "object image is 16x12 px after resizing, but layers up to relu5_4 need at least "
                                  "16 px on each side; use a size of at least 22"),
    (TRANSFER + ["--style-size", "4"], "argument --style-size: must be an integer ≥ 16"),
    (TRANSFER + ["--lambda-os", "0"], "argument --lambda-os: must be a finite number > 0"),
    (TRANSFER + ["--lambda-os=-1e-3"], "argument --lambda-os: must be a finite number > 0"),
    (TRANSFER + ["--lambda-os", "nan"], "argument --lambda-os: must be a finite number > 0"),
    (TRANSFER + ["--lambda-os", "inf"], "argument --lambda-os: must be a finite number > 0"),
    (TRANSFER + ["--style-weights", "0,0,0,0,0"], "argument --style-weights: must be finite numbers ≥ 0, not all zero"),
    (TRANSFER + ["--style-weights=-1,1,1,1,1"], "argument --style-weights: must be finite numbers ≥ 0"),
    (TRANSFER + ["--style-weights", "0.2,0.2"], "2 style weights for 5 style layers"),
    (TRANSFER + ["--content-weights", "0"], "argument --content-weights: must be finite numbers ≥ 0, not all zero"),
    (TRANSFER + ["--iterations", "0"], "argument --iterations: must be an integer ≥ 1, got 0"),
    (TRANSFER + ["--lr", "0"], "argument --lr: must be a finite number > 0"),
    (TRANSFER + ["--seed", "-1"], "argument --seed: must be an integer ≥ 0"),
    (TRANSFER + ["--nominal-scale", "-5"], "argument --nominal-scale: must be a finite number > 0"),
    (TRANSFER + ["--method", "fancy"], "argument --method: invalid choice: 'fancy'"),
    (TRANSFER + ["--optimizer", "sgd"], "argument --optimizer: invalid choice"),
    (TRANSFER + ["--init", "zeros"], "argument --init: invalid choice"),
    (TRANSFER + ["--pooling", "min"], "argument --pooling: invalid choice"),
    (TRANSFER + ["--style-layers", "relu9_9"], "unknown VGG-19 layer(s) relu9_9"),
    (INSPECT + ["--size", "0"], "argument --size: must be an integer ≥ 16, got 0"),
    (INSPECT + ["--size", "16"], "use a size of at least 22"),
    (INSPECT + ["--content-layers", "conv0"], "unknown VGG-19 layer(s) conv0"),
    # generation and bench
    (["generate", "{study}", "--batch", "0"], "argument --batch: must be 'auto' or an integer ≥ 1, got '0'"),
    (["generate", "{study}", "--batch", "many"], "argument --batch: must be 'auto' or an integer ≥ 1"),
    (["bench", "--size", "8"], "argument --size: must be an integer ≥ 16"),
    (["bench", "--iterations", "0"], "argument --iterations: must be an integer ≥ 1"),
    (["bench", "--problems", "11"], "argument --problems: must be an integer from 1 to 10, got 11"),
    (["bench", "--batch", "-1"], "argument --batch: must be 'auto' or an integer ≥ 1"),
    (["fetch-images", "{study}", "--timeout", "0"], "argument --timeout: must be a finite number > 0"),
    # server
    (["serve", "{study}", "--port", "0"], "argument --port: must be an integer from 1 to 65535, got 0"),
    (["serve", "{study}", "--port", "70000"], "argument --port: must be an integer from 1 to 65535"),
    (["demo", "--port", "-3"], "argument --port: must be an integer from 1 to 65535"),
    (["demo", "--participants", "1"], "argument --participants: must be an integer ≥ 2, got 1"),
    # analysis
    (["analyze", "{study}", "--ddof", "2"], "argument --ddof: invalid choice: 2"),
    (["analyze", "{study}", "--decimals", "1"], "argument --decimals: must be two integers from 0 to 6"),
    (["analyze", "{study}", "--decimals", "1,9"], "argument --decimals: must be two integers from 0 to 6"),
    (["analyze", "{study}", "--seed", "-2"], "argument --seed: must be an integer ≥ 0"),
    (["analyze", "{study}", "--duplicates", "last"], "argument --duplicates: invalid choice"),
    (["analyze", "{study}", "--screen", "strict"], "argument --screen: invalid choice"),
    (["analyze", "{study}", "--bootstrap", "5"], "argument --bootstrap: must be an integer from 100 to 100000, got 5"),
    (["analyze", "{study}", "--rater-min-r", "2"], "argument --rater-min-r: must be a number in [-1, 1], e.g. 0.3; got 2"),
    (["simulate", "--study", "{study}", "--qualities", "a=1,b=x", "--out", "{out}"],
     "argument --qualities: expected method=number,..., e.g. adain=0,ours=0.8; got 'b=x'"),
    (["simulate", "--study", "{study}", "--qualities", "a=1", "--out", "{out}"],
     "argument --qualities: give at least two methods"),
    (["simulate", "--study", "{study}", "--qualities", "a=1,b=inf", "--out", "{out}"],
     "argument --qualities: expected method=number with a finite number"),
    (["simulate", "--study", "{study}", "--qualities", "a=0,b=1", "--protocol", "ranking", "--out", "{out}"],
     "argument --protocol: protocols are paired, acr, pairwise; got 'ranking'"),
    (["audit-table", "-n", "1"], "argument -n: must be an integer from 2 to 100, got 1"),
    (["audit-table", "-k", "1"], "argument -k: must be an integer from 2 to 11, got 1"),
    (["audit-table", "-n", "100", "-k", "11"], "rating multisets to enumerate (at most 2,000,000); lower -n or -k"),
    (["simulate", "--from-paper", "--out", "{out}", "--participants", "1"], "argument --participants: must be an "
                                                                         "integer ≥ 2"),
    (["simulate", "--from-paper", "--out", "{out}", "--pairings", "-1"], "argument --pairings: must be an integer ≥ 0"),
    (["simulate", "--study", "{study}", "--out", "{out}", "--effect", "nan"], "argument --effect: must be a finite number"),
    (["simulate", "--study", "{study}", "--out", "{out}", "--power", "1,5"], "argument --power: must be an integer ≥ 2"),
    (["simulate", "--study", "{study}", "--out", "{out}", "--reps", "0"], "argument --reps: must be an integer ≥ 1"),
    (["simulate", "--study", "{study}", "--out", "{out}", "--seed", "x"], "argument --seed: must be an integer ≥ 0"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[f"{a[0]} {' '.join(a[-2:])}" for a, _ in CASES])
def test_bad_value_is_one_line_exit_2(argv, message, content_path, style_path, tmp_path, capsys):
    out = tmp_path / "out.png"
    study = tmp_path / "study"
    study.mkdir()
    argv = [a.format(content=content_path, style=style_path, out=out, study=study) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not any(tmp_path.rglob("*.csv"))
