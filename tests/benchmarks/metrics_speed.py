"""Speed of ``stylestudy metrics``: N stimuli of SIZE px (an imported run, two methods, with
``_content/`` and ``_style/`` references per item), every metric, from an empty cache.

    nice -n 10 python -m tests.benchmarks.metrics_speed [--images 500] [--size 512] [--device auto] [--batch 8]

Prints images per second and seconds per image (wall clock), and the seconds of a second run
that reads everything from the cache.  The issue's size is 500 images at 512 px on a GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from stylestudy.engine.metrics.table import compute_metrics
from stylestudy.engine.study.importer import import_images
from tests.conftest import _pattern


def make_run(root: Path, images: int, size: int) -> Path:
    source = root / "source"
    items = [f"item{i:04d}" for i in range((images + 1) // 2)]
    for folder in ("a", "b", "_content", "_style"):
        (source / folder).mkdir(parents=True)
    for i, item in enumerate(items):
        for k, folder in enumerate(("a", "b", "_content", "_style")):
            _pattern(size, size * 3 // 4, 10_000 + 4 * i + k).save(source / folder / f"{item}.png")
    study = root / "study.toml"
    study.write_text('[study]\nname = "speed"\n[protocol]\nkind = "acr"\n')
    import_images(source, root / "run", "acr", study)
    return root / "run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), args.images, args.size)
        first = compute_metrics(run, device=args.device, batch=args.batch, progress=False)
        started = time.perf_counter()
        again = compute_metrics(run, device=args.device, batch=args.batch, progress=False)
        cached = time.perf_counter() - started
    print(f"{first.images} images of {args.size}x{args.size * 3 // 4} px, {len(first.metrics)} metrics, batch "
          f"{args.batch}, device {first.device}: {first.seconds:.1f}s = {first.images / first.seconds:.2f} images/s "
          f"({first.seconds / first.images:.3f} s/image); second run from the cache ({again.computed} computed): "
          f"{cached:.1f}s")


if __name__ == "__main__":
    main()
