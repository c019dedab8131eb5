"""A participant's schedule: which conditions each trial shows, in which order.

Trials are keyed by condition ids (``engine.manifest``), never by image: two conditions that
show the same picture are two trials, each rated once.
"""

from __future__ import annotations

import hashlib
import random

from engine.manifest import StudyManifest


def trial_plan(manifest: StudyManifest, seed: int) -> list[dict]:
    """Pairs in random order, each pair's two conditions in random order, attention checks at
    random places: ``[{"pair_id", "conditions": [first, second], "attention": None | k}]``.
    Deterministic in ``seed``."""
    rng = random.Random(seed)
    pairs = manifest.pairs
    pair_ids = sorted(pairs)
    rng.shuffle(pair_ids)
    plan = []
    for pid in pair_ids:
        members = [c.id for c in pairs[pid]]
        rng.shuffle(members)
        plan.append({"pair_id": pid, "conditions": members, "attention": None})
    for k in range(manifest.protocol.attention_checks):
        pid = rng.choice(sorted(pairs))
        members = [c.id for c in pairs[pid]]
        rng.shuffle(members)
        expected = rng.randint(1, len(manifest.protocol.scale))
        plan.insert(rng.randint(1, len(plan)), {"pair_id": f"attention-{k + 1}", "conditions": members,
                                                "attention": expected})
    return plan


def seed_for(external_or_public_id: str) -> int:
    """A stable seed from the participant's id (so a participant's order is reproducible); 31 bits,
    so it fits a signed 32-bit INTEGER column in every database."""
    return int.from_bytes(hashlib.sha256(external_or_public_id.encode()).digest()[:4], "big") & 0x7FFFFFFF
