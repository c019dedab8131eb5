"""How long ``analyze`` takes on a realistic study: 6 methods x 6 items, 40 simulated participants,
every protocol (acr, paired with a reference, pairwise), and the exact Wilcoxon test by the
rank-sum recursion against enumerating every sign flip.

    nice -n 10 python -m tests.benchmarks.analyze_speed [--participants 40] [--methods 6] [--items 6]

Prints seconds per protocol (the whole ``analyze``: tables, tests, mixed model, figures, report;
wall clock and this process's CPU time, which a busy shared machine inflates less)
and, for the exact signed-rank p, microseconds by recursion vs by enumeration at n = 12..20 (the
enumeration doubles per participant; the old code enumerated up to n = 20).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

from tests.conftest import _pattern


def _enumerated_p(d: np.ndarray) -> float:
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    signs = np.array(list(itertools.product([0, 1], repeat=len(d))), dtype=bool)
    null = signs @ ranks
    return min(1.0, 2 * min(np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)))


def wilcoxon_timing() -> None:
    from stylestudy.analysis.ratings.stats import wilcoxon_exact

    rng = np.random.default_rng(0)
    print("exact signed-rank p: n, recursion us, enumeration us, ratio, |difference|")
    for n in (12, 16, 20):
        d = rng.integers(-3, 4, n).astype(float)
        d[d == 0] = 1.0
        t0 = time.perf_counter()
        p = wilcoxon_exact(d)[1]
        t1 = time.perf_counter()
        q = _enumerated_p(d)
        t2 = time.perf_counter()
        print(f"  {n:3d} {1e6 * (t1 - t0):10.0f} {1e6 * (t2 - t1):14.0f} {(t2 - t1) / (t1 - t0):8.0f}x {abs(p - q):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--methods", type=int, default=6)
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--protocols", default="acr,paired,pairwise")
    parser.add_argument("--no-wilcoxon", action="store_true", help="skip the enumeration timing")
    args = parser.parse_args()
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze
    from stylestudy.analysis.table1.simulate import from_protocol
    from stylestudy.engine.study.importer import import_images
    from stylestudy.engine.study.manifest import StudyManifest

    if not args.no_wilcoxon:
        wilcoxon_timing()
    methods = [f"m{i}" for i in range(args.methods)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "src"
        for m, method in enumerate(methods):
            (source / method).mkdir(parents=True)
            for i in range(args.items):
                _pattern(24, 20, 100 + 10 * m + i).save(source / method / f"item{i}.png")
        print(f"analyze, {args.participants} participants x {args.methods} methods x {args.items} items:")
        for protocol in args.protocols.split(","):
            extra = f'reference_method = "{methods[0]}"\n' if protocol == "paired" else ""
            study = root / f"{protocol}.toml"
            study.write_text(f'[study]\nname = "speed"\n[protocol]\nimage_seconds = 0.25\nrating_seconds = 2.0\n{extra}')
            run = root / protocol
            import_images(source, run, protocol, study)
            manifest = StudyManifest.load(run)
            qualities = {m: 0.2 * i for i, m in enumerate(methods)}
            frame = from_protocol(manifest, qualities, args.participants, seed=1)
            frame.to_csv(root / f"{protocol}.csv", index=False)
            t0, c0 = time.perf_counter(), time.process_time()
            analyze(root / f"{protocol}.csv", AnalyzeOptions(out=root / f"{protocol}-report"), run)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"  {protocol:9s} {len(frame):6d} rows  {seconds:6.1f} s wall, {cpu:6.1f} s CPU", flush=True)


if __name__ == "__main__":
    main()
