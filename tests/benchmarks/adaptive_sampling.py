"""Adaptive vs balanced pairwise sampling: comparisons needed, and the time a selection takes.

    python -m tests.benchmarks.adaptive_sampling [--seeds 10] [--methods 8] [--items 20]
        [--participants 120] [--spread 3] [--qualities uniform|even] [--target methods|items|ranking|ranking+methods]
        [--jobs 1] [--server-participants 200] [--postgres] [--skip-accuracy] [--skip-server]

1. Accuracy (``--seeds`` simulated studies per sampler).  Planted Thurstone Case V scores in JOD:
   method qualities drawn uniformly from 0..``--spread`` JOD per seed (so some neighbours are
   close, others far apart; ``--qualities even``: evenly spaced over that range in a random
   order) plus a per-item deviation N(0, 0.5²); a simulated participant prefers a over b with
   probability Φ((s_a − s_b)/σ), σ = 1.4826 (1 JOD = 75%).  Participants take 28 trials each, one after
   another: ``balanced`` = the server's fixed plans (``evalserver.schedule``), ``adaptive`` = the
   server's choice (``evalserver.adaptive.next_entry`` via ``analysis.pairwise.adaptive_simulation``)
   with ``[protocol] adaptive_target = --target``.  Every 7 comparisons both are scored with the
   same estimator (the Laplace posterior of ``evalserver.pairwise_posterior``) against the
   planted scores, in two ways: ``methods`` = the ranking's centred method scores against the
   planted method scores (mean over items, centred); ``items`` = every item's centred
   (item, method) scores against the planted ones (RMSE over all of them, Kendall τ = the mean
   over items of each item's τ; ASAP's view, every condition ranked).  Printed: comparisons
   until Kendall τ ≥ 0.9 and until RMSE ≤ 0.3 JOD hold from then on, per seed, with the ratio
   adaptive / balanced (goal ≤ 0.5): its median and mean over the seeds both samplers reached,
   and each sampler's median over all seeds with a seed not reached counting as beyond the cap,
   their ratio with a 95% bootstrap interval over seeds (``--jobs`` runs seeds in parallel
   processes; the figures do not depend on it), and each sampler's mean RMSE at a few points.
2. Selection time per trial as methods × items grow (the posterior fit and the choice, in
   process, random counts), median and p99.
3. Server side: a real app (Flask test client, SQLite; PostgreSQL too with ``--postgres``) with
   10 methods × 50 items and ``--server-participants`` participants who all hold a trial in
   flight, then answer, for several rounds; p50/p99 of ``GET /api/state`` when it assigns a pair
   (the whole request in process: database reads, fit, choice, commit), wall-clock and CPU time
   (on a shared machine the wall clock includes waiting for a core; the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats as sps
from scipy.special import ndtr

from stylestudy.analysis.pairwise.adaptive_simulation import SimulatedSampler
from stylestudy.engine.study.importer import import_images
from stylestudy.engine.study.manifest import StudyManifest
from stylestudy.engine.study.schema import ADAPTIVE_TARGETS
from stylestudy.evalserver.adaptive import Design, choose, participant_rng
from stylestudy.evalserver.pairwise_posterior import SIGMA, fit, ranking
from stylestudy.evalserver.schedule import trial_plan

TAU_GOAL, RMSE_GOAL = 0.9, 0.3
ITEM_DEVIATION = 0.5  # JOD: sd of a method's item scores around its quality (the posterior's ITEM_SD)
CHECK_EVERY = 7  # comparisons between two scorings


def make_run(root: Path, methods: int, items: int, **protocol) -> StudyManifest:
    """A pairwise run of tiny distinct images, imported as a user would."""
    src = root / "src"
    rng = np.random.default_rng(0)
    for m in range(methods):
        (src / f"m{m:02d}").mkdir(parents=True)
        for i in range(items):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(src / f"m{m:02d}" / f"i{i:03d}.png")
    lines = ["[study]", 'name = "bench"', "[protocol]", 'kind = "pairwise"', "image_seconds = 0.25"]
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in protocol.items()]
    (root / "study.toml").write_text("\n".join(lines) + "\n")
    import_images(src, root / "run", "pairwise", root / "study.toml")
    return StudyManifest.load(root / "run")


def planted(design: Design, seed: int, spread: float, qualities: str = "uniform") -> np.ndarray:
    """(item, method) scores: the methods' qualities (``"uniform"``: drawn over 0..spread, so two
    can be too close for any study to order; ``"even"``: spread evenly over 0..spread in a random
    order), plus every item's own deviation."""
    rng = np.random.default_rng(seed)
    m = len(design.methods)
    quality = rng.uniform(0.0, spread, m) if qualities == "uniform" else rng.permutation(np.linspace(0.0, spread, m))
    return quality[None, :] + rng.normal(0, ITEM_DEVIATION, (len(design.items), m))


def crossing(values: list[float], ok) -> int | None:
    """Index of the first checkpoint from which ``ok`` holds at every later one."""
    first = None
    for k, v in enumerate(values):
        if ok(v):
            first = k if first is None else first
        else:
            first = None
    return first


def accuracy_run(manifest: StudyManifest, sampling: str, seed: int, participants: int, spread: float,
                 target: str = ADAPTIVE_TARGETS[0], qualities: str = "uniform") -> tuple[dict, dict]:
    """Comparisons until each goal holds from then on (None: not within the cap), keyed
    ``(evaluation, "tau" | "rmse")``; and each key's value at every scoring."""
    protocol = dict(manifest.study["protocol"], sampling=sampling, adaptive_target=target)
    run = StudyManifest(manifest.run_dir, dict(manifest.document(), study=dict(manifest.study, protocol=protocol)),
                        manifest.source)
    sampler = SimulatedSampler(run)
    design = sampler.design
    scores = planted(design, seed, spread, qualities)
    centred = scores - scores.mean(1, keepdims=True)
    rng = np.random.default_rng(10_000 + seed)
    by_id = {c.id: (design.item_index[c.pair_id], design.method_index[c.method]) for c in run.rated
             if c.pair_id in design.item_index}
    comparisons, values = [], {key: [] for key in GOALS}
    n = 0
    for p in range(participants):
        pseed = seed * 100_003 + p
        for trial, entry in enumerate(trial_plan(run, pseed, ordinal=p), start=1):
            served = sampler.fill(p, pseed, trial, entry)
            (k, i), (_, j) = by_id[served["conditions"][0]], by_id[served["conditions"][1]]
            first_wins = rng.random() < ndtr((scores[k, i] - scores[k, j]) / SIGMA)
            sampler.record(served, 1 if first_wins else 2)
            n += 1
            if n % CHECK_EVERY == 0:
                post = sampler.posterior()
                comparisons.append(n)
                for key, value in score(post, design, centred).items():
                    values[key].append(value)
    out = {}
    for key, values_k in values.items():
        first = crossing(values_k, GOALS[key])
        out[key] = comparisons[first] if first is not None else None
    return out, values


GOALS = {("methods", "tau"): lambda v: v >= TAU_GOAL, ("methods", "rmse"): lambda v: v <= RMSE_GOAL,
         ("items", "tau"): lambda v: v >= TAU_GOAL, ("items", "rmse"): lambda v: v <= RMSE_GOAL}


def score(post, design: Design, centred: np.ndarray) -> dict:
    """Kendall τ and RMSE of the estimate against the planted scores, for both evaluations."""
    est = ranking(post, list(design.methods)).score
    target = centred.mean(0)
    items = post.mean - post.mean.mean(1, keepdims=True)
    return {("methods", "tau"): sps.kendalltau(est, target).statistic,
            ("methods", "rmse"): float(np.sqrt(np.mean((est - target) ** 2))),
            ("items", "tau"): float(np.mean([sps.kendalltau(a, b).statistic for a, b in zip(items, centred)])),
            ("items", "rmse"): float(np.sqrt(np.mean((items - centred) ** 2)))}


CURVE_AT = (28, 56, 112, 224, 448, 896)  # comparisons at which mean RMSEs are printed


def _seed_pair(job: tuple) -> tuple[int, tuple, tuple]:
    manifest_dir, seed, participants, spread, target, qualities = job
    manifest = StudyManifest.load(manifest_dir)
    b = accuracy_run(manifest, "balanced", seed, participants, spread, qualities=qualities)
    a = accuracy_run(manifest, "adaptive", seed, participants, spread, target, qualities)
    return seed, b, a


def accuracy(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_run(Path(tmp), args.methods, args.items, pairs_per_participant=args.trials)
        cap = args.participants * args.trials
        print(f"accuracy: {args.methods} methods x {args.items} items, {args.trials} trials per participant, "
              f"up to {args.participants} participants, {args.seeds} seeds, qualities {args.qualities} over 0..{args.spread} JOD, "
              f"adaptive_target = {args.target}")
        jobs = [(manifest.run_dir, seed, args.participants, args.spread, args.target, args.qualities)
                for seed in range(args.seeds)]
        rows, curves = [], {"balanced": [], "adaptive": []}
        start = time.perf_counter()
        with ProcessPoolExecutor(args.jobs) as pool:
            for seed, (b, b_values), (a, a_values) in pool.map(_seed_pair, jobs):
                rows.append((seed, b, a))
                curves["balanced"].append(b_values)
                curves["adaptive"].append(a_values)
                print(f"  seed {seed}: " + "; ".join(f"{ev} {goal}: balanced {b[ev, goal]}, adaptive {a[ev, goal]}"
                                                     for ev, goal in GOALS)
                      + f"  ({time.perf_counter() - start:.0f} s in all)", flush=True)
        for ev, goal in GOALS:
            name = f"{ev}: " + (f"Kendall tau >= {TAU_GOAL}" if goal == "tau" else f"RMSE <= {RMSE_GOAL} JOD")
            pairs = [(b[ev, goal], a[ev, goal]) for _, b, a in rows if b[ev, goal] is not None and a[ev, goal] is not None]
            only = {"adaptive": sum(b[ev, goal] is None and a[ev, goal] is not None for _, b, a in rows),
                    "balanced": sum(b[ev, goal] is not None and a[ev, goal] is None for _, b, a in rows)}
            left_out = (f"; left out: {only['adaptive']} seed(s) reached by adaptive only, {only['balanced']} by "
                        f"balanced only, {len(rows) - len(pairs) - sum(only.values())} by neither")
            print(f"{name}: over all {len(rows)} seeds, counting a seed not reached as beyond the cap: "
                  + censored_medians([b[ev, goal] for _, b, a in rows], [a[ev, goal] for _, b, a in rows], cap))
            if not pairs:
                print(f"{name}: no seed reached by both samplers within the cap" + left_out)
                continue
            bal, ada = np.array(pairs, dtype=float).T
            print(f"{name}: balanced median {np.median(bal):.0f} (mean {bal.mean():.0f}), adaptive median "
                  f"{np.median(ada):.0f} (mean {ada.mean():.0f}); ratio adaptive/balanced median "
                  f"{np.median(ada / bal):.2f}, mean {np.mean(ada / bal):.2f} over {len(pairs)} seeds"
                  + (left_out if len(pairs) < len(rows) else ""))
        for ev in ("methods", "items"):
            at = [n for n in CURVE_AT if n <= cap]
            text = "; ".join(f"{sampler} " + ", ".join(
                f"{np.mean([values[ev, 'rmse'][n // CHECK_EVERY - 1] for values in runs]):.3f}" for n in at)
                for sampler, runs in curves.items())
            print(f"{ev}: mean RMSE over the seeds after {', '.join(map(str, at))} comparisons: {text}")


def censored_medians(balanced: list[int | None], adaptive: list[int | None], cap: int,
                     resamples: int = 4000) -> str:
    """Each sampler's median comparisons over all seeds, a seed not reached (None) counting as
    more than any reached one, their ratio when both medians are reached, and a 95% percentile
    bootstrap interval of the ratio over seeds.  In each resample the ratio is bounded from above:
    adaptive's median with its seeds not reached as infinite, over balanced's with its seeds not
    reached at the cap (which is at most the true median): the interval errs towards adaptive
    needing more."""
    def median(values, missing: float = np.inf) -> float:
        return float(np.median([missing if v is None else v for v in values]))

    def ratio(balanced_draw: list, adaptive_draw: list) -> float:
        a = median(adaptive_draw)
        return a / median(balanced_draw, cap) if np.isfinite(a) else np.inf

    b, a = median(balanced), median(adaptive)
    text = lambda v: f"{v:.0f}" if np.isfinite(v) else "beyond the cap"  # noqa: E731
    point = f"{a / b:.2f}" if np.isfinite(a) and np.isfinite(b) else "undetermined"
    rng = np.random.default_rng(0)
    n = len(balanced)
    draws = [rng.integers(0, n, n) for _ in range(resamples)]
    boot = np.array([ratio([balanced[k] for k in d], [adaptive[k] for k in d]) for d in draws])
    lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")  # no interpolation between infinities
    fmt = lambda v: f"{v:.2f}" if np.isfinite(v) else "inf"  # noqa: E731
    return (f"median balanced {text(b)}, adaptive {text(a)}; ratio of the medians {point}, "
            f"95% bootstrap interval over seeds [{fmt(lo)}, {fmt(hi)}]")


def selection_time(sizes: list[tuple[int, int]], repeats: int = 200) -> None:
    print("selection time (fit + choice, in process, random counts):")
    for m, n in sizes:
        design = Design(tuple(f"i{k}" for k in range(n)), tuple(f"m{k}" for k in range(m)))
        rng = np.random.default_rng(0)
        wins = rng.poisson(2.0, (n, m, m)).astype(float) * (1 - np.eye(m))
        times = []
        for r in range(repeats):
            start = time.perf_counter()
            choose(design, fit(wins), [], {}, participant_rng(1, r))
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(f"  {m:3d} methods x {n:4d} items ({design.size:6d} pairs): median {statistics.median(times):6.2f} ms, "
              f"p99 {times[int(0.99 * (len(times) - 1))]:6.2f} ms")


def server_side(participants: int, rounds: int, db_url: str | None, label: str, target: str = ADAPTIVE_TARGETS[0]) -> None:
    from stylestudy.evalserver.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_run(Path(tmp), 10, 50, sampling="adaptive", pairs_per_participant=rounds, adaptive_target=target)
        app = create_app(manifest.run_dir, db_url, admin_token="bench")
        clients = []
        for p in range(participants):
            c = app.test_client()
            c.post("/start", data={"consent": "yes", "PROLIFIC_PID": f"bench-{p}"})
            c.post("/briefing")
            clients.append(c)
        times, cpu = [], []
        for _ in range(rounds):
            states = []
            for c in clients:  # every participant holds a trial: all of them in flight at once
                start, start_cpu = time.perf_counter(), time.process_time()
                states.append(c.get("/api/state").get_json())
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
            for c, s in zip(clients, states):
                c.post(f"/api/trials/{s['trial']}", json={"choice": 1 + s["trial"] % 2, "shown_ms": [250, 250],
                                                         "response_ms": [500]})
        times.sort()
        cpu.sort()
        print(f"server ({label}, adaptive_target = {target}, 10 methods x 50 items, {participants} participants, "
              f"{rounds} rounds): "
              f"GET /api/state assigning a pair: wall p50 {statistics.median(times):.1f} ms, "
              f"p99 {times[int(0.99 * (len(times) - 1))]:.1f} ms; this process's CPU time p50 "
              f"{statistics.median(cpu):.1f} ms, p99 {cpu[int(0.99 * (len(cpu) - 1))]:.1f} ms "
              f"(the database server's own time on PostgreSQL not included) over {len(times)} requests; "
              f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--methods", type=int, default=8)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--spread", type=float, default=3.0, help="JOD range of the planted method qualities")
    parser.add_argument("--qualities", choices=("uniform", "even"), default="uniform",
                        help="planted method qualities drawn uniformly over the range, or spread evenly over it")
    parser.add_argument("--trials", type=int, default=28, help="trials per participant")
    parser.add_argument("--participants", type=int, default=120, help="cap per simulated study")
    parser.add_argument("--jobs", type=int, default=1, help="seeds simulated in parallel processes")
    parser.add_argument("--target", choices=ADAPTIVE_TARGETS, default=ADAPTIVE_TARGETS[0],
                        help="[protocol] adaptive_target of the adaptive sampler (accuracy and server; the "
                             "selection time uses the default)")
    parser.add_argument("--server-participants", type=int, default=200)
    parser.add_argument("--server-rounds", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="also measure the server on a throwaway PostgreSQL")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy(args)
    selection_time([(4, 10), (8, 20), (10, 50), (16, 50), (10, 200), (20, 100)])
    if not args.skip_server:
        server_side(args.server_participants, args.server_rounds, None, "SQLite", args.target)
        if args.postgres:
            from tests.conftest import PostgresServer

            pg = PostgresServer().start()
            try:
                server_side(args.server_participants, args.server_rounds, pg.new_database(), "PostgreSQL", args.target)
            finally:
                pg.cleanup()


if __name__ == "__main__":
    main()
