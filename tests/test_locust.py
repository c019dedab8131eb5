"""The Locust file speaks the participant protocol: a short headless run against a real server
completes trials without a failure, and the ratings land in the database."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import LiveServer

LOCUSTFILE = Path(__file__).parent / "benchmarks" / "locustfile.py"


@pytest.mark.slow
def test_locust_participants_complete_the_study(run_copy, tmp_path):
    with LiveServer(run_copy) as server:
        result = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "6", "-r",
                                 "6", "-t", "8s", "--host", server.url, "--csv", str(tmp_path / "l"), "--only-summary"],
                                env=dict(os.environ, STYLESTUDY_PACE="0"), capture_output=True, text=True, timeout=90)
        export = requests.get(server.url + "/admin/export.csv", headers={"Authorization": "Bearer live-token"},
                              timeout=30).text
    stats = {r["Name"]: r for r in csv.DictReader((tmp_path / "l_stats.csv").open())}
    assert stats["Aggregated"]["Failure Count"] == "0", result.stderr[-2000:]
    assert int(stats["/start (join)"]["Request Count"]) == 6
    assert int(stats["/api/trials/[n]"]["Request Count"]) == 6 * 4  # every participant finished its 4 trials
    rows = list(csv.DictReader(export.splitlines()))
    assert len(rows) == 6 * 4 * 2 and len({r["participant_id"] for r in rows}) == 6
