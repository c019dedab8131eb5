"""``analyze`` at real sizes (issue #30): seconds and peak memory per size, target <= 60 s and <= 2 GB.

    nice -n 10 python -m tests.benchmarks.analysis_scale [--sizes acr,pairwise,paired] [--bootstrap 1000] [--keep DIR]

Sizes: acr 100 methods x 20 items x 60 participants (every condition rated); pairwise 50 methods x
20 items x 200 participants x 50 comparisons each; paired 10 methods (a reference and 9 others) x 20
items x 200 participants.  Each size's ratings are simulated by ``table1.simulate.from_protocol`` on a
run made by ``stylestudy import`` (tiny pictures), written as a CSV, then analysed in a fresh Python
process, so its peak resident memory (``resource.getrusage``, ``ru_maxrss``) is the analysis' own.
Prints per size: rows, wall seconds, CPU seconds (less inflated by a busy shared machine) and peak MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {  # protocol: (methods, items, participants, pairwise comparisons per participant)
    "acr": (100, 20, 60, 0),
    "pairwise": (50, 20, 200, 50),
    "paired": (10, 20, 200, 0),
}


def make_run(root: Path, protocol: str, methods: int, items: int, per_participant: int) -> Path:
    """A run of ``methods`` x ``items`` tiny distinct pictures under ``protocol`` (by ``stylestudy import``)."""
    from stylestudy.engine.study.importer import import_images
    from tests.conftest import _pattern

    source = root / "src"
    names = [f"m{i:03d}" for i in range(methods)]
    for m, method in enumerate(names):
        (source / method).mkdir(parents=True, exist_ok=True)
        for i in range(items):
            path = source / method / f"item{i:02d}.png"
            if not path.exists():
                _pattern(16, 12, 1000 * m + i).save(path)
    extra = f'reference_method = "{names[0]}"\n' if protocol == "paired" else ""
    extra += f"pairs_per_participant = {per_participant}\n" if per_participant else ""
    study = root / f"{protocol}.toml"
    study.write_text(f'[study]\nname = "scale"\n[protocol]\nimage_seconds = 0.25\nrating_seconds = 2.0\n{extra}')
    run = root / protocol
    import_images(source, run, protocol, study)
    return run


def simulate(root: Path, protocol: str) -> Path:
    """The size's ratings as ``ROOT/PROTOCOL.csv`` (planted qualities 0.02 apart: many near ties)."""
    from stylestudy.analysis.table1.simulate import from_protocol
    from stylestudy.engine.study.manifest import StudyManifest

    methods, items, participants, per = SIZES[protocol]
    manifest = StudyManifest.load(make_run(root, protocol, methods, items, per))
    frame = from_protocol(manifest, {m: 0.02 * i for i, m in enumerate(manifest.methods)}, participants, seed=1)
    path = root / f"{protocol}.csv"
    frame.to_csv(path, index=False)
    return path


def analyse(root: Path, protocol: str, bootstrap: int) -> dict:
    """Run ``analyze`` once (in this process); seconds, CPU seconds and this process's peak MB."""
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    t0, c0 = time.perf_counter(), time.process_time()
    analyze(root / f"{protocol}.csv", AnalyzeOptions(out=root / f"{protocol}-report", bootstrap=bootstrap),
            root / protocol)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write each size's run, CSV and report under this folder")
    parser.add_argument("--analyse", nargs=2, metavar=("ROOT", "PROTOCOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.analyse:
        print(json.dumps(analyse(Path(args.analyse[0]), args.analyse[1], args.bootstrap)))
        return
    print("size, rows, analyze wall s, CPU s, peak MB (target <= 60 s, <= 2048 MB)")
    for protocol in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            tmp = str(args.keep / protocol) if args.keep else scratch
            Path(tmp).mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            rows = sum(1 for _ in simulate(Path(tmp), protocol).open()) - 1
            made = time.perf_counter() - t0
            out = subprocess.run([sys.executable, "-m", "tests.benchmarks.analysis_scale", "--bootstrap",
                                  str(args.bootstrap), "--analyse", tmp, protocol], capture_output=True, text=True)
            if out.returncode:
                print(f"  {protocol}: analyze failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            methods, items, participants, per = SIZES[protocol]
            size = f"{methods}x{items}x{participants}" + (f"x{per}" if per else "")
            print(f"  {protocol:8s} {size:14s} {rows:7d} rows  {r['seconds']:6.1f} s  {r['cpu']:6.1f} s CPU  "
                  f"{r['peak_mb']:6.0f} MB  (simulated in {made:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
