"""Request latency and throughput of the rating server under N concurrent participants.

    python -m tests.benchmarks.server_latency RUN_DIR [--participants 50 200] [--gunicorn 4]

Starts the server on loopback (a copy of RUN_DIR, fresh database), lets N simulated participants
take the whole study at once through the HTTP interface (images fetched, no waiting), and prints
p50/p99 latency of every request and requests/s.  The reference in the same process is one
participant alone: the ratio says what the concurrency costs each request.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evalserver.client import StudyClient
from tests.conftest import LiveServer


def run_load(url: str, n: int, prefix: str) -> tuple[list[float], float]:
    def one(i: int) -> list[float]:
        client = StudyClient(url, f"{prefix}-{i}")
        client.join()
        client.take(lambda state, trial: [3, 4])
        return client.latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        latencies = [x for lat in pool.map(one, range(n)) for x in lat]
    return latencies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--participants", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--gunicorn", type=int, default=0, help="gunicorn workers (0 = stylestudy serve)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run_dir, run, ignore=shutil.ignore_patterns("*.sqlite*"))
        with LiveServer(run, gunicorn_workers=args.gunicorn) as server:
            ref, _ = run_load(server.url, 1, "ref")
            ref_p50 = statistics.median(ref)
            print(f"server: {'gunicorn -w %d' % args.gunicorn if args.gunicorn else 'stylestudy serve (Flask threaded)'}")
            print(f"reference (1 participant): p50 {ref_p50 * 1000:.1f} ms over {len(ref)} requests")
            for n in args.participants:
                lat, wall = run_load(server.url, n, f"load{n}")
                lat.sort()
                p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                print(f"{n:4d} participants: {len(lat)} requests in {wall:.1f}s = {len(lat) / wall:.0f} req/s; "
                      f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; p50 / reference p50 = {p50 / ref_p50:.1f}x")


if __name__ == "__main__":
    main()
