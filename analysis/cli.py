"""``stylestudy analyze``, ``audit-table`` and ``simulate`` (registered through entry points)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.options import add_out_option, decimals, integer, integers, number
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
    parser = sub.add_parser("analyze", help="Table 1 layout, significance tests, rater checks, figures and report",
                            description="Reads ratings (an exported CSV, or a run directory's database) and writes the "
                                        "Table 1 layout (Markdown/LaTeX/HTML/CSV), per-cell and omnibus tests, rater "
                                        "screening and agreement, figures, report.html and summary.json.")
    parser.add_argument("source", help="a run directory (reads its live database), an exported ratings CSV, a plain "
                                       "ratings or pairwise CSV, or a sureal dataset (.py, read without running it, or "
                                       ".json)")
    parser.add_argument("--format", dest="input_format", choices=INPUT_FORMATS, default="auto",
                        help="the file's layout: export, ratings (participant,item,method,score), pairwise "
                             "(participant,item,a,b,winner) or sureal; auto (default): by extension and header; see "
                             "docs/reference/input-formats.md")
    parser.add_argument("--method-from", default=None, metavar="REGEX",
                        help="sureal datasets: the method is what REGEX finds in each asset's name (its first group "
                             "that matched, else the whole match), e.g. 'hrc\\d+'; default: every asset is its own "
                             "method")
    parser.add_argument("--db", default=None, help="with a run directory: its database URL (default $STYLESTUDY_DB, "
                                                   "else sqlite:///RUN_DIR/ratings.sqlite)")
    parser.add_argument("--duplicates", choices=["error", "first", "mean"], default="error",
                        help="a participant's second rating of one condition: error (default), keep the first, or "
                             "average; the report counts them")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: RUN_DIR/report for a run directory, ./report for a CSV)")
    parser.add_argument("--ddof", type=int, choices=[0, 1], default=1, help="standard deviation: 1 = sample (default)")
    parser.add_argument("--decimals", type=decimals, default=(1, 2),
                        help="decimals of mean,std (default 1,2 as in the paper)")
    parser.add_argument("--exclude-flags", default=",".join(EXCLUDED_BY_DEFAULT),
                        help="ratings with any of these flags are left out (counted; default "
                             f"{','.join(EXCLUDED_BY_DEFAULT)}); '' keeps all")
    parser.add_argument("--screen", choices=["flag", "bt500", "loo", "both"], default="flag",
                        help="rater screening (Table 1 studies): flag only (default), or exclude the raters BT.500 "
                             "rejects (bt500), whose correlation with the others' MOS is below --rater-min-r (loo), or "
                             "either (both)")
    parser.add_argument("--manifest", default=None, help="manifest.json for labels and thresholds (run dirs have one)")
    parser.add_argument("--compare-paper", action="store_true", help="put the paper's Table 1 beside ours")
    parser.add_argument("--seed", type=integer(0), default=0, help="bootstrap seed")
    parser.add_argument("--bootstrap", type=integer(100, 100_000), default=1000,
                        help="pairwise: bootstrap resamples of participants for the Bradley-Terry CIs (default 1000)")
    parser.add_argument("--rater-min-r", type=correlation, default=0.3,
                        help="acr/paired: flag a rater whose Pearson r with the others' MOS (leave-one-out) is below "
                             "this (default 0.3); the report shows the ranking with and without flagged raters")
    parser.add_argument("--mixed-slopes", choices=["items", "maximal", "lrt"], default="items",
                        help="the mixed model's random method slopes. By default the items are fixed effects "
                             "(--generalise participants) and the participants' slopes always stay (items, default; "
                             "maximal is the same then) or only where a likelihood ratio supports them (lrt, Matuschek "
                             "et al. 2017: overstates when it drops them). With items random (--generalise items) "
                             "every item slope stays (maximal, Barr et al. 2013); see docs/explanation/statistics.md")
    parser.add_argument("--generalise", choices=["participants", "items"], default="participants",
                        help="which population the mixed model speaks for: participants like these, on these items "
                             "(participants, default; as the per-participant tests), or items like these too (items: "
                             "every item slope kept, i.e. --mixed-slopes maximal; little power with fewer than ~6 "
                             "items); the report's first lines name the choice; see docs/explanation/statistics.md")
    parser.add_argument("--mixed-variances", choices=["unrestricted", "bounded"], default="unrestricted",
                        help="a participant or rater x method variance the mixed model estimates at 0: refitted as the "
                             "repeated-measures ANOVA, participants' means fixed and the rater x method variance free "
                             "to go below 0 (unrestricted, default, as SAS's NOBOUND: holds the level) or cut at 0 "
                             "(bounded: lme4/lmerTest's fit, conservative then); see docs/explanation/statistics.md")
    parser.add_argument("--metrics", default=None, metavar="FILE",
                        help="a 'stylestudy metrics' CSV: adds 'Do objective metrics agree with the participants?' "
                             "(P.1401 correlations with bootstrap CIs) and metric_agreement.csv")
    parser.set_defaults(func=_run_analyze)


def default_report_folder(source: str) -> Path:
    """Where ``analyze`` writes without --out: beside the ratings of a run directory (as the demo
    does), else ./report."""
    return Path(source) / "report" if Path(source).is_dir() else Path("report")


def _run_analyze(args: argparse.Namespace) -> int:
    from stylestudy.analysis.analyze import AnalyzeOptions, analyze

    out = Path(args.out) if args.out else default_report_folder(args.source)
    options = AnalyzeOptions(out=out, ddof=args.ddof, decimals=args.decimals,
                             exclude_flags=tuple(f for f in args.exclude_flags.split(",") if f),
                             screen=args.screen, compare_paper=args.compare_paper, seed=args.seed,
                             duplicates=args.duplicates, db_url=args.db, bootstrap=args.bootstrap,
                             rater_min_r=args.rater_min_r, mixed_slopes=args.mixed_slopes,
                             mixed_variances=args.mixed_variances, generalise=args.generalise,
                             input_format=args.input_format, method_from=args.method_from,
                             metrics=Path(args.metrics) if args.metrics else None)
    summary = analyze(args.source, options, args.manifest)
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"report: {Path(summary['out']) / 'report.html'}")
    return 0


MAX_MULTISETS = 2_000_000  # rating multisets audit-table enumerates (n=10, k=5: 1,001)


def register_audit_table(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit-table",
                            help="check a published mean±std table for consistency with n integer ratings",
                            description="For each cell, which rating multisets of n ratings on 1..k give the printed "
                                        "mean and std under ddof=0 and ddof=1 (exhaustive; GRIM/GRIMMER/SPRITE-style).")
    parser.add_argument("table", nargs="?", default=None,
                        help="CSV block,row,method,column,mean,std (default: the paper's)")
    parser.add_argument("-n", type=integer(2, 100), default=10, help="ratings per cell, 2..100 (default 10)")
    parser.add_argument("-k", type=integer(2, 11), default=5, help="scale points, 2..11 (default 5)")
    parser.add_argument("--out", default=None, metavar="CSV", help="also write the per-cell audit to this CSV file")
    parser.set_defaults(func=_run_audit)


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


# simulate's three modes: the options only one mode reads, and each one's default
SIMULATE_MODES = {
    "--from-paper": {"table": None, "pairings": 0},
    "--study STUDY (a planted effect)": {"effect": 0.5},
    "--study RUN_DIR --qualities": {"protocol": None, "sampling": None},
}
STUDY_MODES_ONLY = {"power": None, "reps": 200}  # both --study modes


def register_simulate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate", help="synthetic ratings (export format, marked synthetic) in one of three modes; power",
        description="Three modes, chosen by their first option: --from-paper (a Table 1 that could have been), --study "
                    "STUDY (the paper's paired design with a planted normalized - baseline effect), --study RUN_DIR "
                    "--qualities (any run's protocol, trial by trial, with a planted quality per method). An option of "
                    "another mode is an error.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--from-paper", action="store_true", help="mode 1: a Table 1 that could have been")
    mode.add_argument("--study", default=None, metavar="STUDY|RUN_DIR",
                      help="mode 2 (alone) or 3 (with --qualities): a study folder or run directory")
    paper = parser.add_argument_group("mode 1, --from-paper")
    paper.add_argument("--table", default=None, metavar="CSV",
                       help="another published table CSV (default: the paper's)")
    paper.add_argument("--pairings", type=integer(0), default=None, metavar="N",
                       help="report omnibus p-values over this many random pairings (default 0)")
    effect = parser.add_argument_group("mode 2, --study STUDY: the paper's paired design with a planted effect")
    effect.add_argument("--effect", type=number(), default=None,
                        help="normalized - baseline, rating points (default 0.5)")
    planted = parser.add_argument_group("mode 3, --study RUN_DIR --qualities: any protocol, planted method qualities")
    planted.add_argument("--qualities", type=qualities, default=None, metavar="METHOD=Q,...",
                         help="each method's planted quality in rating points, e.g. adain=0,wct=0.3,ours=0.8; "
                              "simulates the run's protocol trial by trial (any methods)")
    planted.add_argument("--protocol", type=protocols, default=None,
                         help="simulate under these protocols instead of the run's own, e.g. acr,pairwise (--power "
                              "then compares them)")
    planted.add_argument("--sampling", choices=["balanced", "adaptive"], default=None,
                         help="with the pairwise protocol: balanced plans or adaptive pairs chosen by expected "
                              "information gain, as the server chooses them (default: the run's own)")
    power = parser.add_argument_group("modes 2 and 3: power")
    power.add_argument("--power", type=integers(2), default=None, metavar="N,...",
                       help="participant counts, e.g. 5,10,20,40")
    power.add_argument("--reps", type=integer(1), default=None, help="simulated studies per power point (default 200)")
    common = parser.add_argument_group("every mode")
    common.add_argument("--participants", type=integer(2), default=10, help="simulated participants (default 10)")
    common.add_argument("--seed", type=integer(0), default=0)
    add_out_option(common, "ratings CSV to write", required=True, metavar="CSV")
    parser.set_defaults(func=_run_simulate)


def check_simulate_mode(args: argparse.Namespace) -> str:
    """The mode the options chose; an option another mode reads is an error (it would be ignored),
    and the options not given get their defaults."""
    chosen = ("--from-paper" if args.from_paper else
              "--study RUN_DIR --qualities" if args.qualities is not None else "--study STUDY (a planted effect)")
    others = {name: mode for mode, names in SIMULATE_MODES.items() if mode != chosen for name in names}
    if chosen == "--from-paper":
        others.update({name: "--study" for name in STUDY_MODES_ONLY})
    for name, mode in others.items():
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            if flag == "--sampling":
                raise StyleStudyError("--sampling chooses how simulated participants get their pairs: give --study RUN "
                                      "--qualities ... as well")
            raise StyleStudyError(f"{flag} belongs to the mode {mode}, not to {chosen}: drop it, or see "
                                  "stylestudy simulate --help")
    for name, default in {**SIMULATE_MODES[chosen], **STUDY_MODES_ONLY}.items():
        if getattr(args, name, None) is None:
            setattr(args, name, default)
    return chosen


def _run_simulate(args: argparse.Namespace) -> int:
    import pandas as pd

    from stylestudy.analysis.table1 import simulate
    from stylestudy.engine.study.files import atomic_write_bytes

    check_simulate_mode(args)
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
    atomic_write_bytes(args.out, frame.to_csv(index=False).encode())
    print(f"wrote {len(frame)} synthetic ratings of {frame['participant_id'].nunique()} participants to {args.out}")
    return 0
