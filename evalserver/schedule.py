"""A participant's schedule: which conditions each trial shows, in which order, per protocol.

Trials are keyed by condition ids (``engine.manifest``), never by image: two conditions that
show the same picture are two trials, each rated once.  Every plan entry is
``{"pair_id", "conditions": [shown first/left, ...], "attention": None | expected answer,
"role": "rated" | "attention" | "repeat", "protocol": kind}``; the database allows one row per
(participant, pair_id, condition), so ``pair_id`` names what a trial compares:

* ``paired`` (the paper's): the cell's id when it has two methods; with more methods, the
  reference against each other one, ``<cell>:<reference>|<other>``.
* ``acr``: the condition's cell; hidden repeats ``repeat-K``.
* ``pairwise``: ``<cell>:<method a>|<method b>``; every method pair gets the same number of
  trials per participant (to within one, the extra ones rotating over the pairs); with fewer
  trials than items, consecutive participants take consecutive runs of one fixed item order per
  method pair, so over participants each item meets each method pair equally often.

* ``pairwise`` with ``sampling = "adaptive"``: placeholders ``adaptive-K`` (``"sampling":
  "adaptive"``, no conditions yet); the server gives each its pair when it is first served
  (``evalserver.adaptive_store``), and the pair_id then becomes ``<cell>:<method a>|<method b>``.

Attention checks are ``attention-K`` and ask for a given answer.  Deterministic in ``seed``.
"""

from __future__ import annotations

import hashlib
import random
from itertools import combinations

from stylestudy.engine.study.manifest import StudyManifest


def _entry(pair_id: str, conditions: list[str], kind: str, role: str = "rated", attention: int | None = None) -> dict:
    return {"pair_id": pair_id, "conditions": conditions, "attention": attention, "role": role, "protocol": kind}


def _paired(manifest: StudyManifest, rng: random.Random) -> list[dict]:
    reference = manifest.protocol.reference_method
    plan = []
    for cell in sorted(manifest.cells):
        members = manifest.cells[cell]
        if len(members) == 2:
            comparisons = [(cell, [c.id for c in members])]
        else:
            ref = next((c for c in members if c.method == reference), None)
            if ref is None:
                continue  # a cell the reference did not fill cannot be paired
            comparisons = [(f"{cell}:{ref.method}|{c.method}", [ref.id, c.id]) for c in members if c is not ref]
        for pair_id, ids in comparisons:
            plan.append(_entry(pair_id, ids, "paired"))
    rng.shuffle(plan)
    for entry in plan:
        rng.shuffle(entry["conditions"])
    return plan


def _acr(manifest: StudyManifest, rng: random.Random) -> list[dict]:
    plan = [_entry(c.pair_id, [c.id], "acr") for c in manifest.rated]
    rng.shuffle(plan)
    repeats = min(manifest.protocol.repeats, len(plan))
    for k, cid in enumerate(rng.sample([e["conditions"][0] for e in plan], repeats), start=1):
        at = next(i for i, e in enumerate(plan) if e["role"] == "rated" and e["conditions"] == [cid])
        # later than the original, at least two other trials in between when there is room
        plan.insert(rng.randint(min(at + 3, len(plan)), len(plan)), _entry(f"repeat-{k}", [cid], "acr", role="repeat"))
    return plan


def _pairwise(manifest: StudyManifest, rng: random.Random, ordinal: int) -> list[dict]:
    methods = manifest.methods
    full = sorted(cell for cell, members in manifest.cells.items() if len(members) == len(methods))
    random.Random(0).shuffle(full)  # the run's item order: the same for every participant
    pairs = list(combinations(methods, 2))
    budget = min(manifest.protocol.pairs_per_participant or len(full) * len(pairs), len(full) * len(pairs))
    base, extra = divmod(budget, len(pairs))

    def gets_extra(j: int, o: int) -> bool:  # the extra trials rotate over the method pairs, `extra` at a time
        # (a shift of one per participant gave 200 participants x 50 of 1225 pairs only 249 pairs)
        return (j - o * extra) % len(pairs) < extra

    plan = []
    for j, (a, b) in enumerate(pairs):
        # participants take consecutive runs of the item order, so over consecutive participants
        # every item is shown for every method pair equally often (to within one)
        cycles, rest = divmod(ordinal, len(pairs))
        before = base * ordinal + cycles * extra + sum(gets_extra(j, o) for o in range(ordinal - rest, ordinal))
        start = before + j * len(full) // len(pairs)
        for k in range(base + gets_extra(j, ordinal)):
            cell = full[(start + k) % len(full)]
            by_method = {c.method: c.id for c in manifest.cells[cell]}
            ids = [by_method[a], by_method[b]]
            rng.shuffle(ids)
            plan.append(_entry(f"{cell}:{a}|{b}", ids, "pairwise"))
    rng.shuffle(plan)
    return plan


def _adaptive(manifest: StudyManifest) -> list[dict]:
    methods = manifest.methods
    full = sum(len(members) == len(methods) for members in manifest.cells.values())
    possible = full * len(methods) * (len(methods) - 1) // 2
    budget = min(manifest.protocol.pairs_per_participant or possible, possible)
    return [dict(_entry(f"adaptive-{k}", [], "pairwise"), sampling="adaptive") for k in range(1, budget + 1)]


def _attention_templates(manifest: StudyManifest, rng: random.Random) -> list[dict]:
    """Adaptive plans have no pairs yet: attention checks show a random method pair of a random item."""
    full = sorted(cell for cell, members in manifest.cells.items() if len(members) == len(manifest.methods))
    out = []
    for _ in range(manifest.protocol.attention_checks):
        members = rng.sample(list(manifest.cells[rng.choice(full)]), 2)
        out.append({"conditions": [c.id for c in members]})
    return out


def trial_plan(manifest: StudyManifest, seed: int, ordinal: int = 0) -> list[dict]:
    """The participant's trials in order (see the module docstring); attention checks at random
    places, each repeating a rated trial's conditions with an instruction.  ``ordinal``: the
    participant's number (0, 1, ...), which spreads a pairwise subset's items over participants."""
    rng = random.Random(seed)
    kind = manifest.protocol.kind
    if kind == "pairwise" and manifest.protocol.sampling == "adaptive":
        plan = _adaptive(manifest)
        rated = _attention_templates(manifest, rng) if plan else []
    else:
        plan = _pairwise(manifest, rng, ordinal) if kind == "pairwise" else {"paired": _paired, "acr": _acr}[kind](manifest, rng)
        rated = [e for e in plan if e["role"] == "rated"]
    for k in range(manifest.protocol.attention_checks if rated else 0):
        template = rng.choice(rated)
        members = list(template["conditions"])
        rng.shuffle(members)
        expected = rng.randint(1, 2) if kind == "pairwise" else rng.randint(1, len(manifest.protocol.scale))
        plan.insert(rng.randint(1, len(plan)), _entry(f"attention-{k + 1}", members, kind, "attention", expected))
    return plan


def seed_for(external_or_public_id: str) -> int:
    """A stable seed from the participant's id (so a participant's order is reproducible); 31 bits,
    so it fits a signed 32-bit INTEGER column in every database."""
    return int.from_bytes(hashlib.sha256(external_or_public_id.encode()).digest()[:4], "big") & 0x7FFFFFFF
