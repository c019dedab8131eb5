"""The rating server under load, measured with Locust (tests/benchmarks/locustfile.py).

    python -m tests.benchmarks.server_load RUN_DIR [--setups serve-sqlite gunicorn4-postgresql]
        [--users 50 200] [--paces 15 0] [--seconds 60] [--kill9]

For each setup (``serve-sqlite``: ``stylestudy serve`` on SQLite; ``gunicorn1-sqlite``: gunicorn
-w 1 --threads 16; ``gunicorn4-sqlite`` and ``gunicorn4-postgresql``: gunicorn -w 4 --threads 4,
the latter on a throwaway PostgreSQL) and
each number of participants and pace (seconds per trial; 15 is the paper's, 0 flat out), it
starts a fresh copy of the run, lets every participant arrive in the same second (the join
burst), runs for ``--seconds`` and prints p50/p99 of the join (consent + briefing POSTs) and of
the steady-state requests (state, images, submissions), with failures; under gunicorn also the
server's own time for the join requests (its access log's request durations), which leaves out
the queueing a load generator on the same two cores adds.  The join target is a p99 under 300 ms.  ``--kill9`` then kills the whole server (-9) mid-run, restarts it and
compares the submissions Locust saw acknowledged with the trials the export holds.

Everything runs on this machine: the load generator shares its cores with the server.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.conftest import LiveServer, PostgresServer

JOIN = ("/start (join)", "/briefing (join)")
STEADY = ("/api/state", "/s/[image]", "/api/trials/[n]")
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _percentiles(rows: list[dict], names: tuple[str, ...]) -> tuple[int, float, float, int]:
    """Requests, p50, p99 (ms) and failures over the named request kinds, from Locust's
    per-kind percentiles weighted by count (a close, documented approximation)."""
    picked = [r for r in rows if r["Name"] in names and int(r["Request Count"])]
    n = sum(int(r["Request Count"]) for r in picked)
    if not n:
        return 0, float("nan"), float("nan"), 0
    p50 = sum(float(r["50%"]) * int(r["Request Count"]) for r in picked) / n
    p99 = max(float(r["99%"]) for r in picked)
    return n, p50, p99, sum(int(r["Failure Count"]) for r in picked)


def run_locust(url: str, users: int, pace: float, seconds: float, out: Path) -> list[dict]:
    env = dict(os.environ, STYLESTUDY_PACE=str(pace))
    subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r",
                    str(users), "-t", f"{int(seconds)}s", "--host", url, "--csv", str(out), "--only-summary",
                    "--stop-timeout", "5"], env=env, capture_output=True, text=True, timeout=seconds + 120)
    return list(csv.DictReader(open(f"{out}_stats.csv")))


SETUPS = {  # name -> (gunicorn workers (0: stylestudy serve), threads per worker)
    "serve-sqlite": (0, 0), "gunicorn1-sqlite": (1, 16), "gunicorn4-sqlite": (4, 4), "gunicorn4-postgresql": (4, 4)}


def _server(run: Path, setup: str, db_url: str | None, port: int | None = None) -> LiveServer:
    workers, threads = SETUPS[setup]
    return LiveServer(run, gunicorn_workers=workers, env={"STYLESTUDY_DB": db_url} if db_url else {}, port=port,
                      threads=threads or 4)


def measure(run_dir: Path, setup: str, users: int, pace: float, seconds: float, postgres: PostgresServer | None,
            tmp: Path) -> dict:
    run = tmp / f"run-{setup}-{users}-{pace}"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("*.sqlite*", "admin_token", ".*_key"))
    db_url = postgres.new_database() if setup.endswith("postgresql") else None
    server = _server(run, setup, db_url)
    access = tmp / f"access-{setup}-{users}-{pace}.log"
    if setup.startswith("gunicorn"):  # server-side time per request, without the load generator's queueing
        server.cmd += ["--access-logfile", str(access), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]
    with server:
        rows = run_locust(server.url, users, pace, seconds, tmp / f"locust-{setup}-{users}-{pace}")
    join, steady = _percentiles(rows, JOIN), _percentiles(rows, STEADY)
    return {"setup": setup, "users": users, "pace": pace, "join": join, "steady": steady,
            "server_join": _server_side(access, ("POST /start", "POST /briefing"))}


def _server_side(log: Path, prefixes: tuple[str, ...]) -> tuple[float, float]:
    """p50 and p99 (ms) of the server's own time for the requests starting with ``prefixes``."""
    if not log.is_file():
        return float("nan"), float("nan")
    times = sorted(int(parts[3]) / 1000 for parts in (line.split() for line in log.read_text().splitlines())
                   if len(parts) == 4 and f"{parts[0]} {parts[1]}".startswith(prefixes))
    if not times:
        return float("nan"), float("nan")
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def kill9(run_dir: Path, setup: str, users: int, pace: float, seconds: float, postgres: PostgresServer | None,
          tmp: Path) -> dict:
    """Acknowledged submissions vs trials in the export after a kill -9 of the whole server."""
    run = tmp / f"kill-{setup}"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("*.sqlite*", "admin_token", ".*_key"))
    db_url = postgres.new_database() if setup.endswith("postgresql") else None
    server = _server(run, setup, db_url).start()
    env = dict(os.environ, STYLESTUDY_PACE=str(pace))
    out = tmp / f"locust-kill-{setup}"
    locust = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
                               "-r", str(users), "-t", f"{int(seconds)}s", "--host", server.url, "--csv", str(out),
                               "--only-summary"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds / 2)
    os.killpg(server.proc.pid, signal.SIGKILL)  # the whole server: master and workers
    server.proc.wait(10)
    locust.wait(seconds + 60)
    rows = list(csv.DictReader(open(f"{out}_stats.csv")))
    submits = next((r for r in rows if r["Name"] == "/api/trials/[n]"), None)
    acknowledged = int(submits["Request Count"]) - int(submits["Failure Count"]) if submits else 0
    server = _server(run, setup, db_url, port=server.port).start()
    try:
        text = requests.get(server.url + "/admin/export.csv", headers={"Authorization": "Bearer live-admin-token-0123456789"},
                            timeout=60).text
    finally:
        server.kill()
    rated = list(csv.DictReader(text.splitlines()))
    trials = {(r["participant_id"], r["trial"]) for r in rated}
    duplicates = len(rated) - len({(r["participant_id"], r["trial"], r["position"]) for r in rated})
    return {"setup": setup, "acknowledged": acknowledged, "exported_trials": len(trials), "duplicates": duplicates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--setups", nargs="+", default=["serve-sqlite", "gunicorn4-postgresql"],
                        choices=list(SETUPS))
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--paces", type=float, nargs="+", default=[15.0, 0.0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill9", action="store_true")
    args = parser.parse_args()
    postgres = PostgresServer().start() if any(s.endswith("postgresql") for s in args.setups) else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("| setup | participants | pace (s/trial) | join requests | join p50 / p99 (ms) | join p50 / p99 "
                  "server-side (ms) | steady requests | steady p50 / p99 (ms) | failures |")
            print("|---|---|---|---|---|---|---|---|---|")
            for setup in args.setups:
                for users in args.users:
                    for pace in args.paces:
                        m = measure(Path(args.run_dir), setup, users, pace, args.seconds, postgres, Path(tmp))
                        (jn, j50, j99, jf), (sn, s50, s99, sf) = m["join"], m["steady"]
                        k50, k99 = m["server_join"]
                        inside = "–" if k50 != k50 else f"{k50:.0f} / {k99:.0f}"
                        print(f"| {setup} | {users} | {pace:g} | {jn} | {j50:.0f} / {j99:.0f} | {inside} | {sn} | "
                              f"{s50:.0f} / {s99:.0f} | {jf + sf} |", flush=True)
            if args.kill9:
                for setup in args.setups:
                    k = kill9(Path(args.run_dir), setup, max(args.users), args.paces[-1], args.seconds, postgres,
                              Path(tmp))
                    print(f"kill -9 mid-run, {setup}: {k['acknowledged']} submissions acknowledged, "
                          f"{k['exported_trials']} trials exported, {k['duplicates']} duplicate rows", flush=True)
    finally:
        if postgres:
            postgres.cleanup()


if __name__ == "__main__":
    main()
