"""Synthetic ratings in the export format, clearly marked (``synthetic`` = 1, participant ids
``synthetic-NN``), for pipeline checks, a "Table 1 that could have been", and power estimates.

* ``from_published``: for every cell of a published table, a rating multiset consistent with
  its mean±std (see ``analysis.table1.audit``; a cell consistent with neither formula gets the nearest
  multiset, and is listed); the multiset is dealt to the n participants in a random order, so
  which participant gave which rating - the pairing across cells - is random, with a seed.
* ``from_design``: a study's rated cells with a chosen effect of the normalized method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stylestudy.analysis.ratings.stats import paired_test, participant_differences, wilcoxon_exact
from stylestudy.analysis.table1.audit import audit_cell, multisets
from stylestudy.engine.study.manifest import StudyManifest, condition_id
from stylestudy.evalserver.export import COLUMNS
from stylestudy.evalserver.flags import Flag


def _rows(cells: list[dict], ratings: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """cells[i] x participants ratings[i, participant] -> export rows (both methods of a cell = one trial)."""
    n = ratings.shape[1]
    keys = sorted({(c["block"], c["row"], c["column"]) for c in cells})
    trials = {(participant, key): int(t) + 1
              for participant in range(n) for key, t in zip(keys, rng.permutation(len(keys)))}
    out = []
    first = {}
    for i, c in enumerate(cells):
        key = (c["block"], c["row"], c["column"])
        for participant in range(n):
            pos = first.setdefault((participant, key), int(rng.integers(1, 3)))
            position = pos if c["method"] == "baseline" else 3 - pos
            out.append({
                "participant_id": f"synthetic-{participant + 1:02d}", "external_id": "",
                "trial": trials[(participant, key)],
                "pair_id": f"{c['block']}{c['row']}c{c['column']}", "block": c["block"], "row": c["row"],
                "column": c["column"], "column_label": c.get("column_label", f"c{c['column']}"), "method": c["method"],
                "condition_id": condition_id(c["block"], c["row"], c["column"], c["method"]),
                "image_id": f"synthetic-{c['block']}{c['row']}c{c['column']}-{c['method']}", "position": position,
                "rating": int(ratings[i, participant]), "response_ms": "", "shown_ms": "", "flags": "", "rated_at": "",
                "synthetic": 1,
            })
    return pd.DataFrame(out, columns=COLUMNS + ["synthetic"]).sort_values(["participant_id", "trial", "position"])


def reconstruct_cells(table: pd.DataFrame, n: int = 10, k: int = 5, seed: int = 0) -> tuple[list[dict], list[str]]:
    """One consistent multiset per cell (random among the consistent ones); notes for cells
    that needed the nearest multiset instead."""
    rng = np.random.default_rng(seed)
    counts_all, mean_all, sd0_all, sd1_all = multisets(n, k)
    cells, notes = [], []
    for _, r in table.iterrows():
        a = audit_cell(r["mean"], r["std"], n, k)
        candidates = np.concatenate([a.ddof0, a.ddof1]) if len(a.ddof0) + len(a.ddof1) else np.empty((0, k), int)
        if len(candidates) == 0:
            distance = np.abs(mean_all - r["mean"]) * 10 + np.minimum(np.abs(sd0_all - r["std"]), np.abs(sd1_all - r["std"]))
            candidates = counts_all[[int(np.argmin(distance))]]
            notes.append(f"{r['block']}{r['row']} {r['method']} c{r['column']}: {r['mean']}±{r['std']} is consistent with "
                         "no multiset; used the nearest")
        counts = candidates[int(rng.integers(len(candidates)))]
        cells.append({"block": r["block"], "row": int(r["row"]), "column": int(r["column"]), "method": r["method"],
                      "multiset": np.repeat(np.arange(1, k + 1), counts)})
    return cells, notes


def from_published(table: pd.DataFrame, n: int = 10, k: int = 5, seed: int = 0,
                   cells: list[dict] | None = None) -> pd.DataFrame:
    """A synthetic ratings file whose cell means/stds reproduce the table; random pairing."""
    cells = cells if cells is not None else reconstruct_cells(table, n, k, seed)[0]
    rng = np.random.default_rng(seed + 1)
    ratings = np.stack([rng.permutation(c["multiset"]) for c in cells])
    return _rows(cells, ratings, rng)


def pairing_pvalues(table: pd.DataFrame, pairings: int = 200, n: int = 10, k: int = 5, seed: int = 0) -> pd.DataFrame:
    """Omnibus p-values (per-participant mean difference, all blocks and per block) over many
    random pairings of the same reconstructed multisets; ``p_ttest`` is the headline rule of
    ``analysis.ratings.stats.paired_test`` (the exact test where t is undefined)."""
    cells, _ = reconstruct_cells(table, n, k, seed)
    rows = []
    for i in range(pairings):
        frame = from_published(table, n, k, seed + 1000 + i, cells)
        for block in [None, *sorted(frame["block"].unique())]:
            d = participant_differences(frame, block).to_numpy(float)
            rows.append({"pairing": i, "scope": "all blocks" if block is None else f"block {block}",
                         "p_wilcoxon": wilcoxon_exact(d)[1],
                         "p_ttest": paired_test(d, effect_cis=False)["p"]})
    return pd.DataFrame(rows)


def design_cells(source: str | Path) -> list[dict]:
    """Rated cells of a study folder (or of a run directory's manifest)."""
    source = Path(source)
    if (source / "manifest.json").is_file():
        return [{"block": c.block, "row": c.row, "column": c.column, "method": c.method,
                 "column_label": c.column_label} for c in StudyManifest.load(source).rated]
    from stylestudy.engine.study.jobs import expand_jobs
    from stylestudy.engine.study.studyfile import load_study

    return [{"block": j.block, "row": j.row_index, "column": j.column, "method": j.method,
             "column_label": j.column_label} for j in expand_jobs(load_study(source)) if not j.briefing]


def from_design(cells: list[dict], participants: int, effect: float, seed: int = 0, k: int = 5,
                noise: float = 0.8, rater_sd: float = 0.4, rater_method_sd: float = 0.0) -> pd.DataFrame:
    """Ratings = round(cell level + effect (normalized only) + rater bias [+ the rater's own
    N(0, rater_method_sd) liking of each method] + noise), clipped to 1..k."""
    rng = np.random.default_rng(seed)
    keys = sorted({(c["block"], c["row"], c["column"]) for c in cells})
    level = dict(zip(keys, rng.uniform(1.5, k - 1.0, len(keys))))
    bias = rng.normal(0, rater_sd, participants)
    taste = {m: rng.normal(0, rater_method_sd, participants) for m in ("baseline", "normalized")} \
        if rater_method_sd else {}
    ratings = np.stack([
        np.clip(np.rint(level[(c["block"], c["row"], c["column"])] + (effect if c["method"] == "normalized" else 0)
                        + bias + taste.get(c["method"], 0.0) + rng.normal(0, noise, participants)), 1, k)
        for c in cells
    ])
    return _rows(cells, ratings, rng)


def power(cells: list[dict], effect: float, participants: list[int], reps: int = 200, seed: int = 0,
          alpha: float = 0.05) -> pd.DataFrame:
    """Fraction of simulated studies whose omnibus headline test (per-participant mean
    difference, all blocks; ``analysis.ratings.stats.paired_test``: paired t, or the exact test where t
    is undefined, so a unanimous effect counts as found) gives p < alpha: the power at each
    number of participants."""
    rows = []
    for n in participants:
        hits = 0
        for r in range(reps):
            d = participant_differences(from_design(cells, n, effect, seed + 7919 * r + n)).to_numpy(float)
            p = paired_test(d, effect_cis=False)["p"] if len(d) else 1.0
            hits += bool(p < alpha)
        rows.append({"participants": n, "effect": effect, "power": hits / reps, "reps": reps})
    return pd.DataFrame(rows)


# --- any methods, any protocol (imported runs; acr, pairwise, paired with a reference) -----------

PROTOCOL_NOISE = 0.8  # sd of one judgment, rating points (the same latent scale for every protocol)
PROTOCOL_RATER_SD = 0.4  # sd of a participant's overall leniency (cancels in a pairwise choice)
TIE_BAND = 0.25  # pairwise with "No preference": a perceived difference under this x noise is a tie


def with_protocol(manifest: StudyManifest, kind: str | None, sampling: str | None = None) -> StudyManifest:
    """The same run under another protocol (to compare protocols before recruiting); ``sampling``:
    pairwise ``balanced`` or ``adaptive`` (other protocols are always balanced)."""
    kind = kind or manifest.protocol.kind
    sampling = (sampling or manifest.protocol.sampling) if kind == "pairwise" else "balanced"
    if kind == manifest.protocol.kind and sampling == manifest.protocol.sampling:
        return manifest
    protocol = dict(manifest.study.get("protocol", {}), kind=kind, sampling=sampling)
    if sampling != "adaptive":
        protocol["stop_when"] = []
    study = dict(manifest.study, protocol=protocol)
    if kind == "paired" and not manifest.protocol.reference_method:
        study["protocol"]["reference_method"] = manifest.methods[0]
    return StudyManifest(manifest.run_dir, dict(manifest.document(), study=study), manifest.source)


def from_protocol(manifest: StudyManifest, qualities: dict[str, float], participants: int, seed: int = 0,
                  noise: float = PROTOCOL_NOISE, rater_sd: float = PROTOCOL_RATER_SD,
                  rater_method_sd: float = 0.0) -> pd.DataFrame:
    """Synthetic participants taking the run's protocol, trial by trial as the server plans it.

    Each judgment perceives ``item level + quality[method] + participant leniency + N(0, noise)``
    (a Thurstone model), plus, with ``rater_method_sd``, a participant's own N(0, sd) liking of each
    method (rater x method disagreement, which the headline tests must survive; it does not cancel
    in a pairwise choice): ``paired``/``acr`` round it to the scale, ``pairwise`` prefers the image
    perceived higher (leniency and item level cancel; "No preference" within ``TIE_BAND`` x noise
    when offered).  Attention checks are answered as asked."""
    from stylestudy.analysis.pairwise.adaptive_simulation import SimulatedSampler
    from stylestudy.evalserver.schedule import trial_plan

    unknown = sorted(set(manifest.methods) - set(qualities))
    if unknown:
        raise ValueError(f"no quality given for method(s) {', '.join(unknown)}")
    protocol = manifest.protocol
    k = len(protocol.scale)
    rng = np.random.default_rng(seed)
    centre = float(np.mean([qualities[m] for m in manifest.methods]))
    items = sorted({c.pair_id for c in manifest.rated})
    level = dict(zip(items, rng.uniform(2.0, k - 1.0, len(items)) - centre))
    rows = []
    sampler = SimulatedSampler(manifest)  # adaptive pairwise: each pair chosen as the server would
    for participant in range(participants):
        pid = f"synthetic-{participant + 1:02d}"
        leniency = rng.normal(0, rater_sd)
        taste = {m: rng.normal(0, rater_method_sd) for m in manifest.methods} if rater_method_sd else {}
        for trial, entry in enumerate(trial_plan(manifest, seed * 100_003 + participant, ordinal=participant), start=1):
            entry = sampler.fill(participant, seed * 100_003 + participant, trial, entry)
            conditions = [manifest.by_id[c] for c in entry["conditions"]]
            perceived = [level[c.pair_id] + qualities[c.method] + taste.get(c.method, 0.0) + leniency
                         + rng.normal(0, noise) for c in conditions]
            flags = [Flag.REPEAT] if entry["role"] == "repeat" else []
            if entry["protocol"] == "pairwise":
                if entry["attention"]:
                    ratings = [int(entry["attention"] == 1), int(entry["attention"] == 2)]
                elif protocol.no_preference and abs(perceived[0] - perceived[1]) < TIE_BAND * noise:
                    ratings, flags = [0, 0], flags + ["no_preference"]
                else:
                    ratings = [int(perceived[0] > perceived[1]), int(perceived[0] <= perceived[1])]
                sampler.record(entry, 0 if ratings == [0, 0] else 1 if ratings[0] else 2)
            elif entry["attention"]:
                ratings = [entry["attention"]] * len(conditions)
            else:
                ratings = [int(np.clip(np.rint(v), 1, k)) for v in perceived]
            for position, (c, rating) in enumerate(zip(conditions, ratings), start=1):
                rows.append({
                    "participant_id": pid, "external_id": "", "trial": trial, "pair_id": entry["pair_id"],
                    "condition_id": c.id, "block": "attention" if entry["role"] == "attention" else c.block,
                    "row": c.row, "column": c.column, "column_label": c.column_label, "method": c.method,
                    "image_id": c.image_id, "position": position, "rating": rating, "response_ms": "", "shown_ms": "",
                    "flags": ";".join(flags), "rated_at": "", "row_label": c.row_label,
                    "attention": int(entry["role"] == "attention"), "protocol": entry["protocol"],
                    "role": entry["role"], "synthetic": 1,
                })
    return pd.DataFrame(rows, columns=COLUMNS + ["row_label", "attention", "protocol", "role", "synthetic"])


def protocol_power(manifest: StudyManifest, qualities: dict[str, float], participants: list[int],
                   reps: int = 100, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Per participant count: the fraction of simulated studies in which each method pair is
    told apart (Holm-corrected p < alpha, in the planted direction), and in which all are.
    The tests are the report's headline tests, with one rule for a unanimous effect (the exact
    test where t is undefined; ``analysis.ratings.stats.paired_test``): per-participant method means
    (acr), per-participant preference shares (pairwise), within-trial differences from the
    reference (paired)."""
    from stylestudy.analysis.protocols import pair_decisions

    kind = manifest.protocol.kind
    rows = []
    for n in participants:
        hits: dict[str, int] = {}
        everything = 0
        for r in range(reps):
            frame = from_protocol(manifest, qualities, n, seed + 7919 * r + n)
            decided = pair_decisions(frame, manifest, qualities, alpha)
            for name, ok in decided.items():
                hits[name] = hits.get(name, 0) + ok
            everything += bool(decided) and all(decided.values())
        rows.append({"protocol": kind, "participants": n, "trials_each": int(frame.groupby("participant_id")["trial"].max().max()),
                     **{f"power {k}": v / reps for k, v in hits.items()},
                     "power all": everything / reps if hits else float("nan"), "reps": reps})
    return pd.DataFrame(rows)
