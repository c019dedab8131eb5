"""A participant that takes the study through the server's HTTP interface.

Used by the demo (simulated participants), the concurrency tests and the latency benchmark.
It speaks exactly what the browser page speaks: consent form, briefing, ``/api/state``,
``/api/trials/N``, and fetches both images of each trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

# Every request of this client says it is a script, not a person's browser: the server stores the
# user agent per participant, and the analysis names such participants' ratings as simulated.
SIMULATED_USER_AGENT = "stylestudy-simulated-participant"


class AlreadyStarted(RuntimeError):
    """The external id has started in another client: without that client's cookie (or, where the
    study allows it, the same SESSION_ID) the server does not hand its session over."""


class StudyClient:
    def __init__(self, base_url: str, external_id: str | None = None, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.external_id = external_id
        self.http = requests.Session()
        self.http.headers["User-Agent"] = f"{SIMULATED_USER_AGENT} ({self.http.headers['User-Agent']})"
        self.timeout = timeout
        self.latencies: list[float] = []

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        start = time.perf_counter()
        response = self.http.request(method, self.base + path, timeout=self.timeout, allow_redirects=False, **kwargs)
        self.latencies.append(time.perf_counter() - start)
        return response

    def join(self) -> None:
        """Consent and start (or resume: this client keeps its cookie, which a known external id needs)."""
        data = {"consent": "yes"}
        if self.external_id:
            data["PROLIFIC_PID"] = self.external_id
        response = self._call("POST", "/start", data=data)
        if response.status_code == 409:
            raise AlreadyStarted(f"start failed: 409 {self.external_id} has already started in another client")
        if response.status_code != 302:
            raise RuntimeError(f"start failed: {response.status_code} {response.text[:200]}")
        if response.headers["Location"].endswith("/briefing"):
            self._call("POST", "/briefing")

    def state(self) -> dict:
        response = self._call("GET", "/api/state")
        response.raise_for_status()
        return response.json()

    def image(self, url: str) -> bytes:
        """One stimulus, as the browser fetches it."""
        response = self._call("GET", url)
        response.raise_for_status()
        return response.content

    def submit(self, trial: int, ratings: list[int | None] | None = None, shown_ms: list[float] | None = None,
               response_ms: list[float | None] | None = None, choice: int | None = None, images: int = 2) -> dict:
        """One trial's answers: ``ratings`` (paired, acr) or ``choice`` (pairwise: 1, 2, 0 = no
        preference, None = no answer)."""
        body: dict = {"ratings": ratings} if ratings is not None else {"choice": choice}
        answers = len(ratings) if ratings is not None else 1
        body.update(shown_ms=shown_ms or [None] * images, response_ms=response_ms or [None] * answers, blur=False)
        response = self._call("POST", f"/api/trials/{trial}", json=body)
        response.raise_for_status()
        return response.json()

    def take(self, rate: Callable[[dict, int], list[int | None] | int | None], image_ms: float | None = None,
             max_trials: int | None = None, fetch_images: bool = True) -> int:
        """Answer trials until done (or ``max_trials``); ``rate(state, trial)`` gives the ratings
        (one per image) or, on a pairwise trial, the choice.  Returns the number of trials submitted."""
        submitted = 0
        while max_trials is None or submitted < max_trials:
            state = self.state()
            if state["done"]:
                break
            if fetch_images:
                for url in state["images"]:
                    self.image(url)
            images = len(state["images"])
            shown = [image_ms if image_ms is not None else state["image_ms"]] * images
            answer = rate(state, state["trial"])
            if state.get("protocol") == "pairwise":
                self.submit(state["trial"], choice=answer, shown_ms=shown, response_ms=[state["rating_ms"] / 3],
                            images=images)
            else:
                self.submit(state["trial"], answer, shown_ms=shown, response_ms=[state["rating_ms"] / 3] * len(answer),
                            images=images)
            submitted += 1
        return submitted
