"""Real tiny transfers with the bundled VGG-19, and the transfer/inspect command lines."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from stylestudy.cli import main
from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.device import get_extractor
from stylestudy.engine.neural.optimise import run_transfer
from stylestudy.engine.neural.problem import Problem

ITERS = 6


@pytest.fixture(scope="module")
def extractor():
    return get_extractor("caffe", "cpu")


@pytest.mark.slow
@pytest.mark.parametrize("method,lambda_os", [("baseline", 1e-4), ("normalized", 1e-2)])
def test_transfer_lowers_the_loss(extractor, content_path, style_path, method, lambda_os):
    cfg = TransferConfig(method=method, lambda_os=lambda_os, size=64, iterations=ITERS)
    problem = Problem.from_files(content_path, style_path, cfg.size, None, "cpu")
    assert problem.size_hw == (48, 64)
    result = run_transfer(extractor, problem, cfg, progress=False)
    total = result.trace.total
    assert len(total) == ITERS + 1 and total[-1] < 0.5 * total[0]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(total, total[1:]))  # strong Wolfe: monotone
    assert result.evaluations >= ITERS
    assert result.trace.content["relu4_2"][0] == 0.0  # x starts at the object image
    assert not np.allclose(result.image.numpy(), problem.content.numpy())


def test_lbfgs_with_stepping_costs_no_extra_evaluations(extractor, content_path, style_path):
    """One-iteration steps + the cache give exactly torch's LBFGS run in one call."""
    import torch

    cfg = TransferConfig(method="normalized", lambda_os=1e-2, size=32, iterations=4)
    problem = Problem.from_files(content_path, style_path, cfg.size, None, "cpu")
    ours = run_transfer(extractor, problem, cfg, progress=False)

    from stylestudy.engine.neural.problem import build_loss

    loss = build_loss(extractor, problem, cfg)
    x = problem.content.clone().requires_grad_(True)
    evals = 0

    def closure():
        nonlocal evals
        evals += 1
        x.grad = None
        value = loss(extractor(x, loss.layers))[0].sum()
        value.backward()
        return value

    opt = torch.optim.LBFGS([x], lr=1, max_iter=4, max_eval=10**6, history_size=100, tolerance_grad=0,
                            tolerance_change=0, line_search_fn="strong_wolfe")
    opt.step(closure)
    torch.testing.assert_close(ours.image, x.detach(), rtol=1e-5, atol=1e-6)
    assert ours.evaluations == evals


def test_cli_transfer_writes_png_and_sidecar(tmp_path, content_path, style_path, capsys):
    out = tmp_path / "out.png"
    rc = main(["transfer", str(content_path), str(style_path), "--out", str(out), "--method", "normalized",
               "--lambda-os", "1e-3", "--size", "40", "--iterations", "3", "--device", "cpu",
               "--style-weights", "0.2,0.2,0.2,20,0.2"])
    assert rc == 0
    img = Image.open(out)
    assert img.mode == "RGB" and img.size == (40, 30)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["config"]["style_weights"] == [0.2, 0.2, 0.2, 20.0, 0.2]
    assert side["weights"]["name"] == "caffe" and len(side["weights"]["sha256"]) == 64
    assert side["iterations"] == 3 and side["evaluations"] >= 3 and side["device"] == "cpu"
    assert set(side["final_losses"]["style"]) == {"relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"}
    assert len(side["trace"]["total"]) == 4 and side["trace"]["total"][-1] == side["final_losses"]["total"]
    assert {"torch", "torchvision", "pillow", "numpy"} <= set(side["versions"])
    assert "wrote" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_inspect_json_shape(content_path, style_path, capsys):
    rc = main(["inspect", str(content_path), str(style_path), "--size", "48", "--json", "-", "--device", "cpu"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["size"] == [36, 48] and rep["weights"] == "caffe"
    layers = set(rep["content_layers"]) | set(rep["style_layers"])
    assert set(rep["power"]["content"]) == set(rep["power"]["style"]) == layers
    for method in ("baseline", "normalized"):
        assert set(rep[method]["content"]) == set(rep["content_layers"])
        assert set(rep[method]["style"]) == set(rep["style_layers"])
        assert rep[method]["content"]["relu4_2"] == 0.0  # x = o by default
    # Baseline = normalized * E_G / (2HWC)^2: both are the same ||G_s - G_x||^2, scaled differently,
    # with E_G = ||G(phi_j(s))||^2 of the style image (recomputed here in float64 from its feature
    # maps) and H, W, C of phi_j(x) at 36x48 (VGG-19 halves H and W at each pool before a block).

    problem = Problem.from_files(content_path, style_path, 48, None, torch.device("cpu"))
    feats = get_extractor("caffe", torch.device("cpu"))(problem.style, rep["style_layers"])
    channels = {"relu1_2": 64, "relu2_2": 128, "relu3_4": 256, "relu4_4": 512, "relu5_4": 512}
    assert rep["style_layers"] == list(channels)
    for block, (j, c) in enumerate(channels.items()):
        f = feats[j][0].double().flatten(1).numpy()  # C x (H W) of the style image
        energy = float(((f @ f.T) ** 2).sum())
        h, w = 36 // 2**block, 48 // 2**block
        ratio = rep["baseline"]["style"][j] / rep["normalized"]["style"][j]
        assert ratio == pytest.approx(energy / (2 * h * w * c) ** 2, rel=1e-4), j


def test_cli_inspect_with_image_and_table(content_path, style_path, capsys):
    rc = main(["inspect", str(content_path), str(style_path), "--size", "32", "--image", str(style_path),
               "--device", "cpu", "--style-layers", "relu1_1,relu2_1"])
    out = capsys.readouterr().out
    assert rc == 0 and "relu2_1" in out and "relu3_4" not in out and "normalized" in out


@pytest.mark.parametrize("args,expect", [
    (["--lambda-os", "1e-3", "--style-layers", "relu9_9"], "unknown VGG-19 layer"),
    (["--lambda-os", "1e-3", "--style-weights", "0.2,x"], "comma-separated numbers"),
    (["--lambda-os", "1e-3", "--style-weights", "0.2,0.2"], "2 style weights for 5 style layers"),
    (["--lambda-os", "-1"], "argument --lambda-os: must be a finite number > 0"),
])
def test_cli_bad_arguments_one_line_exit_2(tmp_path, content_path, style_path, capsys, args, expect):
    rc = main(["transfer", str(content_path), str(style_path), "--out", str(tmp_path / "o.png"),
               "--method", "baseline", "--size", "32", "--iterations", "1", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expect in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_cli_corrupt_image_subprocess(tmp_path, style_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    proc = subprocess.run([sys.executable, "-m", "stylestudy", "transfer", str(bad), str(style_path), "--out",
                           str(tmp_path / "o.png"), "--method", "baseline", "--lambda-os", "1e-3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot read image" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("method", ["baseline", "normalized"])
def test_batched_equals_separate_runs(extractor, image_dir, content_path, style_path, method):
    """B problems in one batch, each with its own L-BFGS state, give the images of B separate runs.

    Tolerance, in [0, 1] pixel units after 5 iterations at 32 px: max 5e-3, mean 2e-4 (batched
    convolutions sum in another order, and L-BFGS amplifies float32 rounding slowly).
    """
    from stylestudy.engine.neural.optimise import run_transfers

    base = 1e-4 if method == "baseline" else 1e-2
    lambdas = [base, base * 10, base / 10]
    style_weights = [None, [0.2, 0.2, 0.2, 20.0, 0.2], None]
    cfgs = [TransferConfig(method=method, lambda_os=lam, size=32, iterations=5, style_weights=w)
            for lam, w in zip(lambdas, style_weights)]
    from tests.conftest import _pattern

    _pattern(50, 50, 3).save(image_dir / "style3.png")
    problems = [Problem.from_files(content_path, style_path if i != 1 else image_dir / "style3.png", 32, None, "cpu")
                for i in range(3)]
    batched = run_transfers(extractor, problems, cfgs, progress=False)
    for problem, cfg, res in zip(problems, cfgs, batched):
        single = run_transfer(extractor, problem, cfg, progress=False)
        assert res.batch_size == 3 and single.batch_size == 1
        diff = (res.image - single.image).abs()
        assert diff.max().item() < 5e-3 and diff.mean().item() < 2e-4, (diff.max().item(), diff.mean().item())
        assert res.trace.total[-1] == pytest.approx(single.trace.total[-1], rel=1e-3)
        assert res.evaluations == single.evaluations
    # The problems really differed (other style image and layer weights: other pixels).
    assert (batched[0].image - batched[1].image).abs().max().item() > 1e-3


def test_non_finite_loss_stops_at_last_finite_iterate():
    """A NaN during the line search ends the run with the last finite x, and says so."""
    import torch

    from stylestudy.engine.neural.losses import Partials
    from stylestudy.engine.neural.optimise import _Objective, _optimise

    calls = {"n": 0}
    finite_points: list[torch.Tensor] = []

    def evaluate(x):
        calls["n"] += 1
        loss = (x - 3).pow(2).sum() * (float("nan") if calls["n"] > 4 else 1.0)
        if calls["n"] <= 4:
            finite_points.append(x.clone())
        return loss, 2 * (x - 3), Partials({}, {})

    x = torch.zeros(1, 3, 2, 2, requires_grad=True)
    trace = _optimise(x, _Objective(x, evaluate), TransferConfig(method="baseline", lambda_os=1, iterations=10),
                      lambda v: None)
    assert trace.stopped and "non-finite" in trace.stopped
    assert all(math.isfinite(v) for v in trace.total) and len(trace.total) < 11
    # The trace holds the start and each completed iteration; the stop names the next one.
    it = int(re.search(r"during iteration (\d+); kept iteration (\d+)", trace.stopped).group(1))
    assert trace.stopped.endswith(f"kept iteration {it - 1}") and len(trace.total) == it
    assert trace.total[0] == 12 * 3.0**2 and trace.total[-1] < trace.total[0]  # it moved towards x = 3
    # x is exactly the last accepted iterate: a point evaluated while the loss was finite, whose loss
    # is the trace's last value (not the NaN trial point where the run stopped).
    assert any(torch.equal(x.detach(), p) for p in finite_points)
    assert float((x.detach() - 3).pow(2).sum()) == trace.total[-1]
