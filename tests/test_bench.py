"""``stylestudy bench`` on CPU at tiny size: the fast path matches the plain reference.

Tolerances (32 px, 8 iterations): float32 engine vs reference PSNR > 35 dB and final loss within
5%; bf16 autocast PSNR > 25 dB and final loss within 25% (bf16 changes the images measurably:
that is why it is behind a flag).
"""

from __future__ import annotations

import json

import pytest

from stylestudy.engine.produce.bench import psnr, run_bench, vgg_flops


def test_vgg_flops_matches_the_known_count():
    # VGG-19 conv layers at 224 px: 19.5 GMACs forward -> 39 GFLOP; x2 for the input-gradient backward.
    assert vgg_flops(224, 224, "relu5_4") == pytest.approx(2 * 39.0e9, rel=0.02)
    assert vgg_flops(512, 512) == pytest.approx(0.4e12, rel=0.05)


@pytest.mark.slow
def test_engine_matches_reference_float32(tmp_path, capsys):
    from stylestudy.cli import main

    out = tmp_path / "b.json"
    assert main(["bench", "--size", "32", "--iterations", "8", "--problems", "3", "--device", "cpu", "--quiet",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for key in ("reference_s_per_image", "engine_s_per_image", "speedup", "min_psnr_db", "max_final_loss_ratio",
                "peak_mem_mb_per_problem", "min_final_loss_ratio", "order"):
        assert key in data
    assert data["speedup"] == pytest.approx(data["reference_s_per_image"] / data["engine_s_per_image"])
    assert data["min_psnr_db"] > 35 and abs(data["max_final_loss_ratio"] - 1) < 0.05
    assert abs(data["min_final_loss_ratio"] - 1) < 0.05 and data["min_final_loss_ratio"] <= data["max_final_loss_ratio"]
    ratios = [p["final_loss_ratio"] for p in data["per_problem"]]
    assert (min(ratios), max(ratios)) == (data["min_final_loss_ratio"], data["max_final_loss_ratio"])
    assert data["problems"] == 3 and data["batch"] == 3
    assert "speedup (reference / engine)" in capsys.readouterr().out


@pytest.mark.slow
def test_bf16_autocast_parity():
    result = run_bench(size=32, iterations=8, problems=2, device="cpu", bf16=True, progress=False)
    assert result.fast_path == "bf16"
    assert result.min_psnr_db > 25 and abs(result.max_final_loss_ratio - 1) < 0.25


@pytest.mark.slow
def test_bench_measures_the_ray_executor_against_local(tmp_path, capsys):
    """``bench --executor ray --json``: the Ray figures are in the JSON, consistent with each other
    and with the printed line, and the tasks' images are bit-identical to the local engine's
    (PSNR = inf), as docs/measurements/performance.md reports."""
    from tests.conftest import import_or_missing

    import_or_missing("ray", "pip install -e '.[cluster]'")
    from stylestudy.cli import main

    out = tmp_path / "b.json"
    assert main(["bench", "--size", "32", "--iterations", "4", "--problems", "4", "--device", "cpu", "--quiet",
                 "--executor", "ray", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"ray_s_per_image", "ray_overhead_ratio", "ray_min_psnr_db", "engine_s_per_image"} <= set(data)
    assert data["problems"] == 4 and data["ray_s_per_image"] > 0
    assert data["ray_overhead_ratio"] == pytest.approx(data["ray_s_per_image"] / data["engine_s_per_image"])
    assert data["ray_min_psnr_db"] == float("inf")
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ray executor:"))
    assert line == (f"ray executor: {data['ray_s_per_image']:.3f} s/image = {data['ray_overhead_ratio']:.2f}x the "
                    f"local engine (tasks' images vs local: min PSNR inf dB)")
    print(f"bench ray: {data['ray_s_per_image']:.3f} vs {data['engine_s_per_image']:.3f} s/image, "
          f"{data['ray_overhead_ratio']:.2f}x")


def test_psnr():
    import torch

    a = torch.zeros(1, 3, 4, 4)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
