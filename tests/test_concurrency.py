"""Real concurrent clients against a real server process; kill -9 and restart loses nothing."""

from __future__ import annotations

import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from stylestudy.evalserver.client import StudyClient
from tests.conftest import LiveServer


def _rater(seed: int):
    rng = random.Random(seed)
    given = {}

    def rate(state, trial):
        given[trial] = [rng.randint(1, 5), rng.choice([None, rng.randint(1, 5)])]
        return given[trial]

    return rate, given


def _export(server: LiveServer) -> list[dict]:
    import csv
    import io

    import requests

    text = requests.get(server.url + "/admin/export.csv", headers={"Authorization": "Bearer live-admin-token-0123456789"}, timeout=30).text
    return list(csv.DictReader(io.StringIO(text)))


def _db_env(db_url: str | None) -> dict:
    return {"STYLESTUDY_DB": db_url} if db_url else {}


@pytest.mark.parametrize("workers", [0, 2], ids=["flask", "gunicorn-2-workers"])
def test_many_participants_at_once(run_copy, workers, db_url):
    n = 24
    with LiveServer(run_copy, gunicorn_workers=workers, env=_db_env(db_url)) as server:
        def participant(i):
            client = StudyClient(server.url, f"conc-{i}")
            client.join()
            rate, given = _rater(i)
            # Every submission is sent twice at once, as a double-click would.
            while True:
                state = client.state()
                if state["done"]:
                    return given
                ratings = rate(state, state["trial"])
                with ThreadPoolExecutor(2) as pool:
                    replies = list(pool.map(lambda _: client.submit(state["trial"], ratings), range(2)))
                assert sorted(r["duplicate"] for r in replies) == [False, True]

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(participant, range(n)))
        rows = _export(server)
    assert len(rows) == n * 8
    keys = [(r["external_id"], r["trial"], r["position"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for i, given in enumerate(results):
        mine = {(int(r["trial"]), int(r["position"])): r["rating"] for r in rows if r["external_id"] == f"conc-{i}"}
        for trial, (a, b) in given.items():
            assert mine[(trial, 1)] == str(a) and mine[(trial, 2)] == ("" if b is None else str(b))


def test_kill_9_loses_no_committed_rating(run_copy, db_url):
    server = LiveServer(run_copy, env=_db_env(db_url)).start()
    clients = [StudyClient(server.url, f"crash-{i}") for i in range(10)]
    committed = {}
    try:
        for i, c in enumerate(clients):
            c.join()
            rate, given = _rater(100 + i)
            c.take(rate, max_trials=2)
            committed[c.external_id] = dict(given)
        server.kill(signal.SIGKILL)
        server = LiveServer(run_copy, port=server.port, env=_db_env(db_url)).start()
        rows = _export(server)
        assert len(rows) == 10 * 2 * 2
        for c in clients:
            mine = {(int(r["trial"]), int(r["position"])): r["rating"] for r in rows if r["external_id"] == c.external_id}
            for trial, (a, b) in committed[c.external_id].items():
                assert mine[(trial, 1)] == str(a) and mine[(trial, 2)] == ("" if b is None else str(b))
        # Participants resume where they were: with their cookie, also through the study link with
        # their id; the id alone (a new browser) does not take the session over.
        clients[0].join()
        assert clients[0].state()["trial"] == 3
        with pytest.raises(RuntimeError, match="start failed: 409"):
            StudyClient(server.url, "crash-0").join()
        assert clients[1].state()["trial"] == 3
        rate, _ = _rater(7)
        assert clients[1].take(rate) == 2
        assert len(_export(server)) == 10 * 2 * 2 + 4
    finally:
        server.kill()


def test_kill_9_while_submissions_are_in_flight_keeps_every_acknowledged_rating_once(run_copy, db_url):
    """Real clients keep submitting from 8 threads; the server is killed (SIGKILL) mid-stream, once
    24 submissions were acknowledged and while at least one more is being sent.  After a restart the export
    holds every acknowledged submission exactly once with the acknowledged ratings (acknowledged =
    committed); a submission whose reply never came is stored whole (both ratings) or not at all;
    nothing else is stored."""
    import threading

    import requests

    server = LiveServer(run_copy, env=_db_env(db_url)).start()
    acknowledged: dict[tuple[str, int], list] = {}  # (participant, trial) -> ratings the server confirmed
    attempted: dict[tuple[str, int], list] = {}  # every submission sent, confirmed or not
    lock, killed = threading.Lock(), threading.Event()
    enough = 24

    errors: list[BaseException] = []  # a thread's exception would otherwise vanish with it

    def worker(w: int) -> None:
        try:
            clients_until_killed(w)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    def clients_until_killed(w: int) -> None:
        rng = random.Random(w)
        for n in range(1000):  # one participant after another until the server is gone
            pid = f"flight-{w}-{n}"
            try:
                client = StudyClient(server.url, pid, timeout=20)
                client.join()
                while not (state := client.state())["done"]:
                    ratings = [rng.randint(1, 5), rng.randint(1, 5)]
                    with lock:
                        attempted[(pid, state["trial"])] = ratings
                    reply = client.submit(state["trial"], ratings)  # a bare acknowledgement: no stored values
                    assert reply["ok"] and not reply["duplicate"] and reply["trial"] == state["trial"]
                    with lock:
                        acknowledged[(pid, state["trial"])] = ratings
            except (requests.RequestException, RuntimeError):  # refused, reset, or cut mid-reply by the kill
                if killed.is_set():
                    return
                raise

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    try:
        for t in threads:
            t.start()
        while True:
            with lock:
                if len(acknowledged) >= enough and len(attempted) > len(acknowledged):  # one is in flight
                    in_flight = len(attempted) - len(acknowledged)
                    killed.set()
                    server.kill(signal.SIGKILL)
                    break
            assert any(t.is_alive() for t in threads), "the clients stopped before the kill"
            time.sleep(0.005)
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        if errors:
            raise errors[0]
        print(f"killed after {len(acknowledged)} acknowledged submissions, {in_flight} in flight at the kill")
        server = LiveServer(run_copy, port=server.port, env=_db_env(db_url)).start()
        rows = _export(server)
    finally:
        server.kill()
    stored: dict[tuple[str, int], dict[int, str]] = {}
    for r in rows:
        positions = stored.setdefault((r["external_id"], int(r["trial"])), {})
        assert int(r["position"]) not in positions, f"stored twice: {r}"
        positions[int(r["position"])] = r["rating"]
    assert set(acknowledged) <= set(stored), f"acknowledged but lost: {sorted(set(acknowledged) - set(stored))}"
    assert set(stored) <= set(attempted), f"stored but never sent: {sorted(set(stored) - set(attempted))}"
    for key, positions in stored.items():  # whole submissions, exactly as sent
        assert positions == {1: str(attempted[key][0]), 2: str(attempted[key][1])}, key
    assert len(rows) == 2 * len(stored) and len(stored) - len(acknowledged) <= in_flight
