"""The run's stimuli manifest as the server sees it: pairs to rate, briefing images, protocol.

The server reads ``RUN_DIR/manifest.json`` (written by ``stylestudy generate``) and nothing
of the engine, so it starts fast and installs without the GPU stack.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from engine.errors import StyleStudyError
from engine.study import Protocol  # pure Python: the study file's protocol section

class StudyManifest:
    """Stimuli by id, rated pairs in figure order, briefing stimuli, and the protocol."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        path = self.run_dir / "manifest.json"
        if not path.is_file():
            raise StyleStudyError(f"no manifest at {path}; run: stylestudy generate STUDY --out {self.run_dir}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.study = data["study"]
            stimuli = data["stimuli"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StyleStudyError(f"{path} is not a stylestudy manifest ({exc}); regenerate it") from None
        self.stimuli = {s["id"]: s for s in stimuli}
        pairs: dict[str, list[dict]] = {}
        for s in stimuli:
            if not s["briefing"]:
                pairs.setdefault(s["pair_id"], []).append(s)
        self.pairs = {pid: sorted(members, key=lambda s: s["method"]) for pid, members in pairs.items()
                      if len(members) == 2}
        order = lambda s: (s["block"], s["row"], s["column"], s["method"])  # noqa: E731
        self.briefing = sorted((s for s in stimuli if s["briefing"]), key=order)
        self.protocol = Protocol(**self.study.get("protocol", {}))  # validated when the study was loaded
        if not self.pairs:
            raise StyleStudyError(f"{path} has no complete baseline/normalized pairs to rate; finish generation first")

    @property
    def title(self) -> str:
        return self.study.get("title") or self.study.get("name", "study")

    def stimulus_file(self, stimulus_id: str) -> Path:
        return self.run_dir / self.stimuli[stimulus_id]["path"]

    def trial_plan(self, seed: int) -> list[dict]:
        """The participant's trials: pairs in random order, each pair's two images in random
        order, attention checks at random places.  Deterministic in ``seed``."""
        rng = random.Random(seed)
        pair_ids = sorted(self.pairs)
        rng.shuffle(pair_ids)
        plan = []
        for pid in pair_ids:
            members = [s["id"] for s in self.pairs[pid]]
            rng.shuffle(members)
            plan.append({"pair_id": pid, "stimuli": members, "attention": None})
        for k in range(self.protocol.attention_checks):
            pid = rng.choice(sorted(self.pairs))
            members = [s["id"] for s in self.pairs[pid]]
            rng.shuffle(members)
            expected = rng.randint(1, len(self.protocol.scale))
            plan.insert(rng.randint(1, len(plan)), {"pair_id": f"attention-{k + 1}", "stimuli": members,
                                                    "attention": expected})
        return plan


def seed_for(external_or_public_id: str) -> int:
    """A stable seed from the participant's id (so a participant's order is reproducible)."""
    return int.from_bytes(hashlib.sha256(external_or_public_id.encode()).digest()[:4], "big")
