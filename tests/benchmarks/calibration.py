"""Do the reported tests hold their level, and do the MOS intervals cover?

    nice -n 10 python -m tests.benchmarks.calibration [--sims 500] [--coverage-sims 500] [--protocols table1,acr,...]
        [--unequal-sims 2000]

Under H0 (every method of equal quality) each protocol's data are simulated as the server would
collect them (``analysis.table1.simulate.from_protocol``; the paper's Table 1 design by
``from_design``), with and without rater x method disagreement (each participant's own N(0, 0.5)
liking of each method), at 10 and 30 participants.  For each protocol's headline test and for
the mixed model the table gives the false-positive rate at alpha = 0.05: the share of all method
comparisons (3 pairs of 3 methods; 2 differences from the reference; 1 for Table 1) with p <
0.05, over ``--sims`` simulated studies (0 skips the table).  Beside it, the old mixed model
(``rating ~ method + (1 | participant) + (1 | item)`` with a z-test) on the same data.
Target: within [3.5%, 6.5%].

Unequal participation (``--unequal-sims``): one pairwise method pair, half the participants making
4x the comparisons, with and without a difference between the halves; level and CI coverage of the
average participant's share (the headline) and of the share of all comparisons (``unequal_study``).

Coverage: how often the 95% CI of each method's MOS (ACR, clustered by participant) contains
the true MOS (the expected rating of that method over participants and noise, on the same items,
computed exactly from the normal model the simulation uses), at 5, 10 and 30 participants.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from tests.conftest import IMPORT_ITEMS, IMPORT_METHODS, _pattern

ALPHA = 0.05


def _runs(root: Path) -> dict:
    from stylestudy.engine.study.importer import import_images
    from stylestudy.engine.study.manifest import StudyManifest

    source = root / "src"
    for m, method in enumerate(IMPORT_METHODS):
        (source / method).mkdir(parents=True)
        for i, item in enumerate(IMPORT_ITEMS):
            _pattern(24, 20, 100 + 10 * m + i).save(source / method / f"{item}.png")
    runs = {}
    for protocol in ("acr", "paired", "pairwise"):
        extra = f'reference_method = "{IMPORT_METHODS[0]}"\n' if protocol == "paired" else ""
        study = root / f"{protocol}.toml"
        study.write_text(f'[study]\nname = "calibration"\n[protocol]\nimage_seconds = 0.25\nrating_seconds = 2.0\n{extra}')
        import_images(source, root / protocol, protocol, study)
        runs[protocol] = StudyManifest.load(root / protocol)
    return runs


def _old_mixed(data: pd.DataFrame, methods: list[str], against: str | None = None) -> list[float]:
    """The model analysis used before: random intercepts only, Wald z-test; every pair, or
    only the pairs with ``against``."""
    from stylestudy.analysis.models.lmm import method_model

    fit = method_model(data, methods, "intercepts").fit(satterthwaite=False)
    ps = []
    for a in range(len(methods)):
        for b in range(a + 1, len(methods)):
            if against is not None and against not in (methods[a], methods[b]):
                continue
            c = np.zeros(len(methods))
            c[a] += a > 0
            c[b] -= b > 0
            ps.append(float(2 * sps.norm.sf(abs(c @ fit.beta) / np.sqrt(c @ fit.cov_beta @ c))))
    return ps


def one_study(kind: str, runs: dict, participants: int, rm_sd: float, seed: int,
              mixed: bool = True, selection: str = "items", variances: str = "unrestricted",
              generalise: str = "participants") -> dict[str, list[float]]:
    """p-values of every comparison under H0: headline, and (``mixed``) the mixed model (``generalise``
    "participants", the default: items fixed; "items": random) and the old mixed model."""
    from stylestudy.analysis.models.lmm import MethodsFit
    from stylestudy.analysis.pairwise import preference, preference_tests
    from stylestudy.analysis.ratings import scores
    from stylestudy.analysis.ratings.stats import mixed_model, paired_test, participant_differences
    from stylestudy.analysis.table1.simulate import from_design, from_protocol

    if kind == "table1":
        cells = [{"block": b, "row": 1, "column": c, "method": m} for b in "ab" for c in (1, 2, 3)
                 for m in ("baseline", "normalized")]
        frame = from_design(cells, participants, 0.0, seed, rater_method_sd=rm_sd)
        frame["flags"] = ""
        headline = [paired_test(participant_differences(frame).to_numpy(float), effect_cis=False)["p"]]  # omnibus
        if not mixed:
            return {"headline": headline}
        fit = mixed_model(frame, selection, variances, generalise)
        mixed = fit.contrasts["p"].tolist()[:1] if isinstance(fit, MethodsFit) else []  # named degenerate data: no test
        data = frame.assign(cell=frame["block"] + frame["row"].astype(str) + frame["column"].astype(str))
        old = _old_mixed(data.rename(columns={"participant_id": "participant", "cell": "item"}), ["normalized", "baseline"])
        return {"headline": headline, "mixed": mixed, "old mixed": old}
    manifest = runs[kind]
    methods = manifest.methods
    frame = from_protocol(manifest, {m: 0.0 for m in methods}, participants, seed, rater_method_sd=rm_sd)
    usable = frame[frame["role"].eq("rated") & frame["rating"].notna()].copy()
    usable["rating"] = usable["rating"].astype(float)
    if kind == "pairwise":
        tests = preference_tests.share_tests(preference.comparisons(usable), methods, effect_cis=False)
        return {"headline": tests["p"].tolist()}
    one = scores.one_per_condition(usable)
    if kind == "acr":
        headline = scores.participant_pair_tests(one, methods, wilcoxon=False)["p"].tolist()
    else:
        headline = scores.reference_differences(usable, methods[0], wilcoxon=False)["p"].tolist()
    if not mixed:
        return {"headline": headline}
    fit = scores.mixed_contrasts(usable if kind == "paired" else one, methods, selection, variances,
                                 generalise)  # as the report
    contrasts = fit.contrasts if isinstance(fit, MethodsFit) else pd.DataFrame(columns=["a", "b", "p"])  # none: no test
    data = one.rename(columns={"participant_id": "participant", "row_label": "item"})
    if kind == "paired":  # the comparisons the design is about: each method against the reference
        contrasts = contrasts[(contrasts["a"] == methods[0]) | (contrasts["b"] == methods[0])]
    return {"headline": headline, "mixed": contrasts["p"].tolist(),
            "old mixed": _old_mixed(data, methods, methods[0] if kind == "paired" else None)}


PROTOCOLS = ("table1", "acr", "paired", "pairwise")


def false_positive_table(runs: dict, sims: int, protocols: tuple[str, ...] = PROTOCOLS,
                         mixed_sims: int | None = None, selection: str = "items",
                         variances: str = "unrestricted") -> pd.DataFrame:
    """The mixed models (slow: several REML fits each) run on the first ``mixed_sims`` studies."""
    mixed_sims = sims if mixed_sims is None else mixed_sims
    rows = []
    for kind in protocols:
        for participants in (10, 30):
            for rm_sd in (0.5, 0.0):
                t0 = time.perf_counter()
                pooled: dict[str, list[float]] = {}
                for s in range(sims):
                    for name, ps in one_study(kind, runs, participants, rm_sd, 10_000 + s, s < mixed_sims,
                                              selection, variances).items():
                        pooled.setdefault(name, []).extend(ps)
                row = {"protocol": kind, "participants": participants, "rater x method sd": rm_sd, "studies": sims,
                       **_rates(pooled)}
                rows.append(row)
                print(row, f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return pd.DataFrame(rows)


def _rates(pooled: dict[str, list[float]]) -> dict:
    """Per test: the share of its p-values below ALPHA and how many tests it is over."""
    out = {}
    for name, ps in pooled.items():
        out[f"{name} FPR"] = float(np.mean(np.asarray(ps) < ALPHA))
        out[f"{name} tests"] = len(ps)
    return out


ITEM_METHOD_SDS = (0.3, 0.5)
ITEM_COUNTS = (4, 6, 12)


def item_method_study(participants: int, items: int, im_sd: float, rm_sd: float, seed: int,
                      methods: tuple[str, ...] = ("a", "b", "c"), default_mixed: bool = False,
                      only_default: bool = False) -> dict[str, list[float]]:
    """One study with item x method variance, each test judged against the null it claims.

    ``rating = item level + participant leniency + participant x method (SD rm_sd) + item x
    method (SD im_sd) + N(0, 0.8)``, unrounded (rounding would make "equal on these items" only
    approximately true).  Two versions of the same draw: "population", the item x method effects
    as drawn (the methods are equal over a population of items, not on these: the null of a test
    over items like these, ``--generalise items``); "these items", the same effects centred per
    method over the study's items (equal on these items: the null of the per-participant tests
    and, with ``default_mixed``, of the default mixed model, whose items are fixed: off by default).
    ``only_default``: the per-participant test and the default mixed model on "these items" only
    (the --generalise items model, a random-items fit, is most of the time)
    Every method pair of each; the per-participant test on the population version too, as the
    review measured it (not its claim)."""
    from stylestudy.analysis.models.lmm import MethodsFit, fit_methods, generalise_slopes
    from stylestudy.analysis.ratings.stats import paired_test

    rng = np.random.default_rng(seed)
    level = rng.uniform(2, 4, items)
    leniency = rng.normal(0, 0.4, participants)
    rm = rng.normal(0, rm_sd, (participants, len(methods)))
    im = rng.normal(0, im_sd, (items, len(methods)))
    noise = rng.normal(0, 0.8, (participants, len(methods), items))
    p_idx, m_idx, i_idx = np.meshgrid(np.arange(participants), np.arange(len(methods)), np.arange(items), indexing="ij")

    def frame(effects: np.ndarray) -> pd.DataFrame:
        rating = level[None, None, :] + leniency[:, None, None] + rm[:, :, None] + effects.T[None, :, :] + noise
        return pd.DataFrame({"participant": np.char.add("p", p_idx.ravel().astype(str)),
                             "method": np.asarray(methods)[m_idx.ravel()], "item": np.char.add("i", i_idx.ravel().astype(str)),
                             "rating": rating.ravel()})

    def per_participant(data: pd.DataFrame) -> list[float]:
        means = data.groupby(["participant", "method"])["rating"].mean().unstack()
        return [paired_test((means[a] - means[b]).to_numpy(float), effect_cis=False)["p"]
                for k, a in enumerate(methods) for b in methods[k + 1:]]

    def mixed(data: pd.DataFrame, generalise: str) -> list[float]:
        fit = fit_methods(data, list(methods), selection=generalise_slopes(generalise, "items"), generalise=generalise)
        return fit.contrasts["p"].tolist() if isinstance(fit, MethodsFit) else []

    population, these = frame(im), frame(im - im.mean(axis=0))
    if only_default:
        return {"per-participant (these items)": per_participant(these),
                "mixed, default (these items)": mixed(these, "participants")}
    return {"per-participant (these items)": per_participant(these),
            **({"mixed, default (these items)": mixed(these, "participants")} if default_mixed else {}),
            "mixed, --generalise items (population)": mixed(population, "items"),
            "per-participant (population; not its claim)": per_participant(population)}


def item_method_table(sims: int, participants: int = 10, rm_sd: float = 0.3,
                      im_sds: tuple[float, ...] = ITEM_METHOD_SDS, counts: tuple[int, ...] = ITEM_COUNTS,
                      default_mixed: bool = False, only_default: bool = False) -> pd.DataFrame:
    rows = []
    for im_sd in im_sds:
        for items in counts:
            t0 = time.perf_counter()
            pooled: dict[str, list[float]] = {}
            for s in range(sims):
                for name, ps in item_method_study(participants, items, im_sd, rm_sd, 40_000 + s,
                                                    default_mixed=default_mixed, only_default=only_default).items():
                    pooled.setdefault(name, []).extend(ps)
                if (s + 1) % 20 == 0 and s + 1 < sims:  # so far (a long run shows its progress)
                    print(f"  sd {im_sd}, {items} items, {s + 1} studies:",
                          {name: f"{np.mean(np.asarray(ps) < ALPHA):.3f}" for name, ps in pooled.items()}, flush=True)
            row = {"item x method sd": im_sd, "items": items, "participants": participants,
                   "rater x method sd": rm_sd, "studies": sims, **_rates(pooled)}
            rows.append(row)
            print(row, f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return pd.DataFrame(rows)


UNEQUAL_LIGHT = 5  # comparisons of the one method pair by the light half; the heavy half makes 4x as many
UNEQUAL_TASTE_SD = 0.5  # each participant's own liking of a over b, on the logit scale


def _mean_expit(mu: float, sd: float) -> float:
    """E[expit(mu + N(0, sd))] by Gauss–Hermite quadrature (the share a participant's taste gives on average)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(w @ (1 / (1 + np.exp(-(mu + sd * x)))) / w.sum())


def unequal_study(participants: int, difference: bool, seed: int, drawn: bool = False) -> dict:
    """One pairwise study of one method pair: half the participants make ``UNEQUAL_LIGHT`` comparisons,
    half 4x as many (``drawn``: each participant heavy with probability 1/2, as when who stays
    longer is not planned; otherwise exactly the second half).  Without a difference both halves prefer a with probability 1/2 (plus taste);
    with one, the light half 0.3 and the heavy half 0.7 (logit scale, plus taste): the average
    participant's share is still 1/2 (its null holds), the share of all comparisons is not."""
    from stylestudy.analysis.pairwise import preference_tests

    rng = np.random.default_rng(seed)
    heavy = rng.random(participants) < 0.5 if drawn else np.arange(participants) >= participants // 2
    counts = np.where(heavy, 4 * UNEQUAL_LIGHT, UNEQUAL_LIGHT)
    centre = np.where(heavy, 1, -1) * (np.log(0.7 / 0.3) if difference else 0.0)
    prob = 1 / (1 + np.exp(-(centre + rng.normal(0, UNEQUAL_TASTE_SD, participants))))
    comps = pd.DataFrame({"participant_id": np.repeat([f"p{i}" for i in range(participants)], counts),
                          "a": "a", "b": "b", "outcome": (rng.random(counts.sum()) < np.repeat(prob, counts)) * 1.0})
    return preference_tests.share_tests(comps, ["a", "b"], effect_cis=False).iloc[0].to_dict()


def unequal_participation_table(sims: int, sizes: tuple[int, ...] = (10, 30)) -> pd.DataFrame:
    """Level and coverage of both pairwise quantities with unequal participation (``unequal_study``).
    Truths: the average participant's share is 1/2 in both designs; the share of all comparisons is
    1/2 without a difference and (E_light + 4 E_heavy) / 5 with one (E: ``_mean_expit``)."""
    rows = []
    for drawn, difference in itertools.product((False, True), (False, True)):
        logit = np.log(0.7 / 0.3) if difference else 0.0
        pooled_truth = (_mean_expit(-logit, UNEQUAL_TASTE_SD) + 4 * _mean_expit(logit, UNEQUAL_TASTE_SD)) / 5
        for participants in sizes:
            t0 = time.perf_counter()
            r = pd.DataFrame([unequal_study(participants, difference, 50_000 + s, drawn) for s in range(sims)])
            rows.append({"heavy half": "drawn" if drawn else "fixed", "groups differ": difference,
                         "participants": participants, "studies": sims,
                         "participant share FPR": float((r["p"] < ALPHA).mean()),
                         "participant share CI coverage": float(((r["ci_low"] <= 0.5) & (0.5 <= r["ci_high"])).mean()),
                         "pooled share truth": pooled_truth,
                         "pooled share p < 0.05": float((r["p_pooled"] < ALPHA).mean()),
                         "pooled share CI coverage": float(((r["pooled_ci_low"] <= pooled_truth)
                                                            & (pooled_truth <= r["pooled_ci_high"])).mean())})
            print(rows[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return pd.DataFrame(rows)


def _expected_rating(mu: float, sd: float, k: int) -> float:
    """E[clip(round(X), 1, k)] for X ~ N(mu, sd)."""
    edges = np.concatenate([[-np.inf], np.arange(1.5, k, 1.0), [np.inf]])
    probs = np.diff(sps.norm.cdf((edges - mu) / sd))
    return float(probs @ np.arange(1, k + 1))


def mos_coverage(runs: dict, sims: int, rm_sd: float = 0.0) -> pd.DataFrame:
    from stylestudy.analysis.ratings import scores
    from stylestudy.analysis.table1.simulate import PROTOCOL_NOISE, PROTOCOL_RATER_SD, from_protocol

    manifest = runs["acr"]
    methods = manifest.methods
    k = len(manifest.protocol.scale)
    qualities = dict(zip(methods, (-0.5, 0.0, 0.8)))
    items = sorted({c.pair_id for c in manifest.rated})
    sd = float(np.sqrt(PROTOCOL_NOISE**2 + PROTOCOL_RATER_SD**2 + rm_sd**2))
    rows = []
    for participants in (5, 10, 30):
        hits = total = 0
        for s in range(sims):
            seed = 20_000 + s
            frame = from_protocol(manifest, qualities, participants, seed, rater_method_sd=rm_sd)
            centre = float(np.mean(list(qualities.values())))
            level = np.random.default_rng(seed).uniform(2.0, k - 1.0, len(items)) - centre  # as from_protocol draws
            usable = frame[frame["role"].eq("rated")].copy()
            usable["rating"] = usable["rating"].astype(float)
            table = scores.method_mos(scores.one_per_condition(usable), methods).set_index("method")
            for m in methods:
                truth = np.mean([_expected_rating(lv + qualities[m], sd, k) for lv in level])
                hits += table.loc[m, "ci_low"] <= truth <= table.loc[m, "ci_high"]
                total += 1
        rows.append({"participants": participants, "rater x method sd": rm_sd, "studies": sims,
                     "MOS CI coverage": hits / total, "intervals": total})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=500)
    parser.add_argument("--coverage-sims", type=int, default=500)
    parser.add_argument("--mixed-sims", type=int, default=None, help="studies the mixed models run on (default --sims)")
    parser.add_argument("--selection", choices=("items", "maximal", "lrt"), default="items",
                        help="the mixed model's random slopes: item slopes selected by likelihood ratio (default), "
                             "all kept, or all selected")
    parser.add_argument("--variances", choices=("unrestricted", "bounded"), default="unrestricted",
                        help="a participant or rater x method variance at 0: refitted free (default) or cut (lme4)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="a subset, e.g. table1,acr (to split runs)")
    parser.add_argument("--item-sims", type=int, default=0,
                        help="studies per item x method row (SD 0.3 and 0.5; 4, 6 and 12 items); 0 skips them")
    parser.add_argument("--item-sds", default=",".join(map(str, ITEM_METHOD_SDS)), help="a subset, e.g. 0.3")
    parser.add_argument("--item-counts", default=",".join(map(str, ITEM_COUNTS)), help="a subset, e.g. 4,6")
    parser.add_argument("--item-default-mixed", action="store_true",
                        help="the item rows also run the default mixed model on the these-items version (twice the time)")
    parser.add_argument("--unequal-sims", type=int, default=0,
                        help="studies per unequal-participation row (half the participants 4x the comparisons); 0 skips")
    parser.add_argument("--item-only-default", action="store_true",
                        help="the item rows run only the per-participant test and the default mixed model (these items)")
    args = parser.parse_args()
    if args.unequal_sims:
        unequal = unequal_participation_table(args.unequal_sims)
        print("\nPairwise with unequal participation (half the participants 4x the comparisons):")
        print(unequal.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.item_sims:
        items = item_method_table(args.item_sims, im_sds=tuple(float(v) for v in args.item_sds.split(",")),
                                  counts=tuple(int(v) for v in args.item_counts.split(",")),
                                  default_mixed=args.item_default_mixed, only_default=args.item_only_default)
        print("\nFalse-positive rates with item x method variance, each test against the null it claims:")
        print(items.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    with tempfile.TemporaryDirectory() as tmp:
        runs = _runs(Path(tmp))
        coverage = pd.concat([mos_coverage(runs, args.coverage_sims, rm) for rm in (0.0, 0.5)]) \
            if args.coverage_sims else pd.DataFrame()
        fpr = false_positive_table(runs, args.sims, tuple(args.protocols.split(",")), args.mixed_sims,
                                   args.selection, args.variances) \
            if args.sims else pd.DataFrame()
    pd.set_option("display.width", 200)
    if len(fpr):
        print("\nFalse-positive rates under H0 (alpha = 0.05):")
        print(fpr.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if len(coverage):
        print("\nMOS 95% CI coverage (ACR, 3 methods x 4 items):")
        print(coverage.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
