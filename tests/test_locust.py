"""The Locust file speaks the participant protocol: a short headless run against a real server
completes trials without a failure, and the ratings land in the database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer

LOCUSTFILE = Path(__file__).parent / "benchmarks" / "locustfile.py"


@pytest.mark.slow
def test_locust_participants_complete_the_study(run_copy, tmp_path):
    with LiveServer(run_copy) as server:
        # No race against a clock: the run ends when all 6 participants are done (the locustfile quits
        # then); -t is only a ceiling far above the ~1 s this takes on an idle machine.
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "6", "-r",
                                 "6", "-t", "240s", "--host", server.url, "--json-file", str(tmp_path / "l"),  # Locust adds .json
                                 "--only-summary"],
                                env=dict(os.environ, STYLESTUDY_PACE="0", STYLESTUDY_QUIT_WHEN_DONE="1"),
                                capture_output=True, text=True, timeout=300)
        print(f"locust: 6 participants x 4 trials in {time.monotonic() - start:.1f} s (process included)")
        export = requests.get(server.url + "/admin/export.csv", headers={"Authorization": "Bearer live-admin-token-0123456789"},
                              timeout=30).text
    # The JSON is written at shutdown, from the final counts (the CSV is a periodic snapshot).
    stats = {r["name"]: r for r in json.loads((tmp_path / "l.json").read_text())}
    assert result.returncode == 0 and sum(r["num_failures"] for r in stats.values()) == 0, result.stderr[-2000:]
    assert stats["/start (join)"]["num_requests"] == 6
    assert stats["/api/trials/[n]"]["num_requests"] == 6 * 4  # every participant finished its 4 trials
    rows = list(csv.DictReader(export.splitlines()))
    assert len(rows) == 6 * 4 * 2 and len({r["participant_id"] for r in rows}) == 6
