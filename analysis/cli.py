"""``stylestudy analyze``, ``audit-table`` and ``simulate`` (registered through entry points)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.options import decimals, integer, integers, number
from stylestudy.engine.study.schema import PROTOCOLS
from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT

INPUT_FORMATS = ("auto", "export", "ratings", "pairwise", "sureal")  # analysis.sources.foreign reads them


def qualities(text: str) -> dict[str, float]:
    """``name=value,...`` -> {name: value} (argparse type)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected method=number,..., e.g. adain=0,ours=0.8; got {part!r}") from None
        if not math.isfinite(out[name.strip()]) or not name.strip():
            raise argparse.ArgumentTypeError(f"expected method=number with a finite number, got {part!r}")
    if len(out) < 2:
        raise argparse.ArgumentTypeError("give at least two methods, e.g. adain=0,ours=0.8")
    return out


def correlation(text: str) -> float:
    """A correlation threshold in [-1, 1] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [-1, 1], e.g. 0.3; got {text!r}") from None
    if not -1 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [-1, 1], e.g. 0.3; got {text}")
    return value


def protocols(text: str) -> list[str]:
    """``acr,pairwise`` -> a list of protocol names (argparse type)."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in PROTOCOLS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"protocols are {', '.join(PROTOCOLS)}; got {text!r}")
    return names


def register_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="Table 1 layout, significance tests, rater checks, figures and report",
                       description="Reads ratings (an exported CSV, or a run directory's database) and writes the "
                                   "Table 1 layout (Markdown/LaTeX/HTML/CSV), per-cell and omnibus tests, rater "
                                   "screening and agreement, figures, report.html and summary.json.")
    p.add_argument("source", help="a run directory (reads its live database), an exported ratings CSV, a plain ratings "
                                  "or pairwise CSV, or a sureal dataset (.py, read without running it, or .json)")
    p.add_argument("--format", dest="input_format", choices=INPUT_FORMATS, default="auto",
                   help="the file's layout: export, ratings (participant,item,method,score), pairwise "
                        "(participant,item,a,b,winner) or sureal; auto (default): by extension and header; see "
                        "docs/reference/input-formats.md")
    p.add_argument("--method-from", default=None, metavar="REGEX",
                   help="sureal datasets: the method is what REGEX finds in each asset's name (its first group that "
                        "matched, else the whole match), e.g. 'hrc\\d+'; default: every asset is its own method")
    p.add_argument("--db", default=None, help="with a run directory: its database URL (default $STYLESTUDY_DB, "
                                              "else sqlite:///RUN_DIR/ratings.sqlite)")
    p.add_argument("--duplicates", choices=["error", "first", "mean"], default="error",
                   help="a participant's second rating of one condition: error (default), keep the first, or "
                        "average; the report counts them")
    p.add_argument("--out", default="report", help="output folder (default report/)")
    p.add_argument("--ddof", type=int, choices=[0, 1], default=1, help="standard deviation: 1 = sample (default)")
    p.add_argument("--decimals", type=decimals, default=(1, 2), help="decimals of mean,std (default 1,2 as in the paper)")
    p.add_argument("--exclude-flags", default=",".join(EXCLUDED_BY_DEFAULT),
                   help=f"ratings with any of these flags are left out (counted; default {','.join(EXCLUDED_BY_DEFAULT)}); "
                        "'' keeps all")
    p.add_argument("--screen", choices=["flag", "bt500", "loo", "both"], default="flag",
                   help="rater screening (Table 1 studies): flag only (default), or exclude the raters BT.500 rejects "
                        "(bt500), whose correlation with the others' MOS is below --rater-min-r (loo), or either (both)")
    p.add_argument("--manifest", default=None, help="manifest.json for labels and thresholds (run dirs have one)")
    p.add_argument("--compare-paper", action="store_true", help="put the paper's Table 1 beside ours")
    p.add_argument("--seed", type=integer(0), default=0, help="bootstrap seed")
    p.add_argument("--bootstrap", type=integer(100, 100_000), default=1000,
                   help="pairwise: bootstrap resamples of participants for the Bradley-Terry CIs (default 1000)")
    p.add_argument("--rater-min-r", type=correlation, default=0.3,
                   help="acr/paired: flag a rater whose Pearson r with the others' MOS (leave-one-out) is below this "
                        "(default 0.3); the report shows the ranking with and without flagged raters")
    p.add_argument("--mixed-slopes", choices=["items", "maximal", "lrt"], default="items",
                   help="the mixed model's random method slopes: by participant always, by item where a likelihood "
                        "ratio at 0.2 supports them (items, default: holds the level in the calibration; a moderate "
                        "item x method variance on few items is dropped too, and the model then speaks about the "
                        "study's items); all of them (maximal, Barr et al. 2013: for claims beyond the study's items, "
                        "conservative when a slope variance is 0); each only where supported (lrt, Matuschek et al. "
                        "2017: overstates when it drops the participants' slopes); see the README")
    p.add_argument("--generalise", choices=["participants", "items"], default="participants",
                   help="which population the mixed model speaks for: participants like these, on these items "
                        "(participants, default; as the per-participant tests), or items like these too (items: "
                        "every item slope kept, i.e. --mixed-slopes maximal; little power with fewer than ~6 "
                        "items); the report's first lines name the choice; see the README")
    p.add_argument("--mixed-variances", choices=["unrestricted", "bounded"], default="unrestricted",
                   help="a participant or rater x method variance the mixed model estimates at 0: refitted as the "
                        "repeated-measures ANOVA, participants' means fixed and the rater x method variance free to go "
                        "below 0 (unrestricted, default, as SAS's NOBOUND: holds the level) or cut at 0 (bounded: "
                        "lme4/lmerTest's fit, conservative then); see the README")
    p.add_argument("--metrics", default=None, metavar="FILE",
                   help="a 'stylestudy metrics' CSV: adds 'Do objective metrics agree with the participants?' "
                        "(P.1401 correlations with bootstrap CIs) and metric_agreement.csv")
    p.set_defaults(func=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    options = AnalyzeOptions(out=Path(args.out), ddof=args.ddof, decimals=args.decimals,
                             exclude_flags=tuple(f for f in args.exclude_flags.split(",") if f),
                             screen=args.screen, compare_paper=args.compare_paper, seed=args.seed,
                             duplicates=args.duplicates, db_url=args.db, bootstrap=args.bootstrap,
                             rater_min_r=args.rater_min_r, mixed_slopes=args.mixed_slopes,
                             mixed_variances=args.mixed_variances, generalise=args.generalise,
                             input_format=args.input_format, method_from=args.method_from,
                             metrics=Path(args.metrics) if args.metrics else None)
    summary = analyze(args.source, options, args.manifest)
    print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    print(f"report: {Path(summary['out']) / 'report.html'}")
    return 0


MAX_MULTISETS = 2_000_000  # rating multisets audit-table enumerates (n=10, k=5: 1,001)


def register_audit_table(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit-table", help="check a published mean±std table for consistency with n integer ratings",
                       description="For each cell, which rating multisets of n ratings on 1..k give the printed mean "
                                   "and std under ddof=0 and ddof=1 (exhaustive; GRIM/GRIMMER/SPRITE-style).")
    p.add_argument("table", nargs="?", default=None, help="CSV block,row,method,column,mean,std (default: the paper's)")
    p.add_argument("-n", type=integer(2, 100), default=10, help="ratings per cell, 2..100 (default 10)")
    p.add_argument("-k", type=integer(2, 11), default=5, help="scale points, 2..11 (default 5)")
    p.add_argument("--out", default=None, help="write the per-cell audit as CSV")
    p.set_defaults(func=_run_audit)


def _run_audit(args: argparse.Namespace) -> int:
    from stylestudy.analysis.table1.audit import audit_summary, audit_table, load_published

    if math.comb(args.n + args.k - 1, args.k - 1) > MAX_MULTISETS:
        raise StyleStudyError(f"-n {args.n} -k {args.k} means {math.comb(args.n + args.k - 1, args.k - 1):,} rating "
                              f"multisets to enumerate (at most {MAX_MULTISETS:,}); lower -n or -k")
    audit = audit_table(load_published(args.table), args.n, args.k)
    cols = ["block", "row", "method", "column", "mean", "std", "verdict", "multisets_ddof0", "multisets_ddof1",
            "n_that_fit", "example_ddof0", "example_ddof1"]
    print(audit[cols].to_string(index=False))
    print()
    print(audit_summary(audit, args.n))
    if args.out:
        from stylestudy.analysis.render.csv_files import write_csv

        write_csv(audit, Path(args.out))
    return 0


def register_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="synthetic ratings (export format, marked synthetic): from the paper's "
                                        "table, or for a study with a chosen effect; power")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--from-paper", action="store_true", help="a Table 1 that could have been")
    mode.add_argument("--study", default=None, help="a study folder or run directory")
    p.add_argument("--table", default=None, help="with --from-paper: another published table CSV")
    p.add_argument("--participants", type=integer(2), default=10)
    p.add_argument("--effect", type=number(), default=0.5, help="with --study: normalized - baseline, rating points")
    p.add_argument("--qualities", type=qualities, default=None,
                   help="with --study RUN_DIR: each method's planted quality in rating points, e.g. "
                        "adain=0,wct=0.3,ours=0.8; simulates the run's protocol trial by trial (any methods)")
    p.add_argument("--protocol", type=protocols, default=None,
                   help="with --qualities: simulate under these protocols instead of the run's own, e.g. acr,pairwise "
                        "(--power then compares them)")
    p.add_argument("--sampling", choices=["balanced", "adaptive"], default=None,
                   help="with --qualities and the pairwise protocol: balanced plans or adaptive pairs chosen by "
                        "expected information gain, as the server chooses them (default: the run's own)")
    p.add_argument("--seed", type=integer(0), default=0)
    p.add_argument("--pairings", type=integer(0), default=0,
                   help="with --from-paper: report omnibus p-values over this many random pairings")
    p.add_argument("--power", type=integers(2), default=None, help="with --study: participant counts, e.g. 5,10,20,40")
    p.add_argument("--reps", type=integer(1), default=200, help="simulated studies per power point")
    p.add_argument("-o", "--output", required=True, help="ratings CSV to write")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    import pandas as pd

    from stylestudy.analysis.table1 import simulate
    from stylestudy.engine.study.files import atomic_write_bytes

    if args.sampling and args.qualities is None:
        raise StyleStudyError("--sampling chooses how simulated participants get their pairs: give --study RUN "
                              "--qualities ... as well")
    if args.from_paper:
        from stylestudy.analysis.table1.audit import load_published

        table = load_published(args.table)
        cells, notes = simulate.reconstruct_cells(table, args.participants, 5, args.seed)
        frame = simulate.from_published(table, args.participants, 5, args.seed, cells)
        for note in notes:
            print("note:", note)
        if args.pairings:
            pv = simulate.pairing_pvalues(table, args.pairings, args.participants, 5, args.seed)
            print(f"omnibus p-values over {args.pairings} random pairings (min / median / max):")
            for scope, part in pv.groupby("scope"):
                print(f"  {scope:10s} Wilcoxon {part.p_wilcoxon.min():.3g} / {part.p_wilcoxon.median():.3g} / "
                      f"{part.p_wilcoxon.max():.3g}; t-test {part.p_ttest.min():.3g} / {part.p_ttest.median():.3g} / "
                      f"{part.p_ttest.max():.3g}")
    elif args.qualities is not None:
        from stylestudy.engine.study.manifest import StudyManifest

        manifest = StudyManifest.load(args.study)
        unknown = sorted(set(manifest.methods) ^ set(args.qualities))
        if unknown:
            raise StyleStudyError(f"--qualities must name each method of the run exactly ({', '.join(manifest.methods)}); "
                                  f"check {', '.join(unknown)}")
        frames, powers = [], []
        for kind in args.protocol or [manifest.protocol.kind]:
            run = simulate.with_protocol(manifest, kind, args.sampling)
            frames.append(simulate.from_protocol(run, args.qualities, args.participants, args.seed))
            if args.power:
                powers.append(simulate.protocol_power(run, args.qualities, args.power, args.reps, args.seed))
        if powers:
            table = pd.concat(powers, ignore_index=True)
            print(table.to_string(index=False, na_rep="-"))
            for kind, part in table.groupby("protocol", sort=False):
                enough = part[part["power all"] >= 0.8]
                print(f"{kind}: 80% power to separate every pair of methods with different qualities at "
                      + (f"{int(enough['participants'].min())} participants" if len(enough)
                         else f"more than {max(args.power)} participants"))
        frame = frames[0]
        if len(frames) > 1:
            print(f"(the ratings file holds the first protocol, {args.protocol[0]})")
    else:
        cells = simulate.design_cells(args.study)
        frame = simulate.from_design(cells, args.participants, args.effect, args.seed)
        if args.power:
            table = simulate.power(cells, args.effect, args.power, args.reps, args.seed)
            print(table.to_string(index=False))
            enough = table[table["power"] >= 0.8]
            print(f"80% power at effect {args.effect:+g}: "
                  + (f"{int(enough['participants'].min())} participants" if len(enough) else "not reached in this range"))
    atomic_write_bytes(args.output, frame.to_csv(index=False).encode())
    print(f"wrote {len(frame)} synthetic ratings of {frame['participant_id'].nunique()} participants to {args.output}")
    return 0
