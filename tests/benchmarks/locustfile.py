"""Participants under load, in Locust (the ecosystem's load tool), speaking the page's protocol.

    locust -f tests/benchmarks/locustfile.py --headless -u 200 -r 200 -t 120s --host http://127.0.0.1:5000

Each simulated participant consents (with a unique PROLIFIC_PID), finishes the briefing, then
for every trial asks for the state, fetches both images, waits ``STYLESTUDY_PACE`` seconds
(default 15: two 5-second displays and the 5-second rating window, the paper's pace; 0 = flat
out) and submits both ratings; when the study says done, the user stops (and with
``STYLESTUDY_QUIT_WHEN_DONE=1`` the run ends once every user has, as the test uses it).  Requests are named
by kind ("/s/[image]", "/api/trials/[n]"), so Locust's table is one line per kind.  ``-r`` equal
to ``-u`` makes everyone arrive in the same second: the join burst.  The client is Locust's
FastHttpUser (geventhttpclient), which costs the shared CPU far less than requests would.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import FastHttpUser, task
from locust.exception import StopUser

PACE = float(os.environ.get("STYLESTUDY_PACE", "15"))
QUIT_WHEN_DONE = os.environ.get("STYLESTUDY_QUIT_WHEN_DONE") == "1"  # end the run once every user finished
_ids = itertools.count(1)
_finished = itertools.count(1)


class Participant(FastHttpUser):  # geventhttpclient: a cheap client, so the server is what is measured
    wait_time = staticmethod(lambda: 0)  # the pace is inside the trial, as the page's timers are

    def on_start(self) -> None:
        self.pid = f"locust-{os.getpid()}-{next(_ids)}"
        self.client.get(f"/?PROLIFIC_PID={self.pid}", name="/ (welcome)")
        self.client.post("/start", data={"consent": "yes", "PROLIFIC_PID": self.pid}, name="/start (join)",
                         allow_redirects=False)
        self.client.post("/briefing", name="/briefing (join)", allow_redirects=False)

    @task
    def trial(self) -> None:
        with self.client.get("/api/state", name="/api/state", catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"state {reply.status_code}")
                return
            state = reply.json()
        if state["done"]:
            runner = self.environment.runner
            if QUIT_WHEN_DONE and runner is not None and next(_finished) >= runner.target_user_count:
                import gevent

                gevent.spawn(runner.quit)  # the test waits for the study, not for a clock
            raise StopUser()
        for url in state["images"]:
            self.client.get(url, name="/s/[image]")
        if PACE:
            self._sleep(PACE)
        ratings = [random.randint(1, len(state["scale"])) for _ in state["images"]]
        body = {"ratings": ratings, "shown_ms": [state["image_ms"]] * 2, "response_ms": [1500.0, 2500.0]}
        with self.client.post(f"/api/trials/{state['trial']}", json=body, name="/api/trials/[n]",
                              catch_response=True) as reply:
            if reply.status_code != 200 or reply.json().get("duplicate"):
                reply.failure(f"submit {reply.status_code}")

    def _sleep(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)
