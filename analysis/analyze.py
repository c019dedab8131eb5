"""``stylestudy analyze``: every table, test and figure into one folder, with a self-contained
HTML report (figures embedded), a Markdown summary, ``stats.csv`` and ``summary.json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stylestudy.analysis.models.lmm import MethodsFit, NoMixedModel, generalise_slopes, population
from stylestudy.analysis.protocols import analyze_protocol, is_generic
from stylestudy.analysis.render import statistics_text
from stylestudy.analysis.render.csv_files import write_csv
from stylestudy.analysis.render.document import Document, Prepared, Section, Table, render
from stylestudy.analysis.sources import flow, viewing
from stylestudy.analysis.sources.ratings import RatingSet, excluded_text, load_ratings, simulated_line
from stylestudy.analysis.table1 import figures, table
from stylestudy.analysis.table1.analysis import Table1Analysis, analyze_table1
from stylestudy.analysis.table1.column_labels import column_labels
from stylestudy.engine.study.claims_text import format_claims
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT


@dataclass
class AnalyzeOptions:
    out: Path
    ddof: int = 1
    decimals: tuple[int, int] = (1, 2)
    exclude_flags: tuple[str, ...] = EXCLUDED_BY_DEFAULT
    screen: str = "flag"  # "flag" (report only), or exclude raters flagged by "bt500", "loo" or "both" rules
    compare_paper: bool = False
    seed: int = 0
    duplicates: str = "error"  # a participant's second rating of one condition: error | first | mean
    db_url: str | None = None  # with a run directory: its database (default RUN_DIR/ratings.sqlite)
    bootstrap: int = 1000  # resamples for the Bradley-Terry CIs (pairwise)
    rater_min_r: float = 0.3  # flag raters whose correlation with the others' MOS is lower (acr, paired)
    # the mixed model's random slopes: "items" (participants' all kept; items random only with generalise="items"),
    # "maximal", "lrt"
    mixed_slopes: str = "items"
    mixed_variances: str = "unrestricted"  # a rater x method variance at 0 left free ("unrestricted") or cut ("bounded")
    generalise: str = "participants"  # "items": the mixed model tests over items like these (every item slope kept)
    input_format: str = "auto"  # export | ratings | pairwise | sureal; auto: by extension and header
    method_from: str | None = None  # sureal datasets: a regex that finds the method in an asset's name
    metrics: Path | None = None  # a ``stylestudy metrics`` CSV: judge its metrics against the ratings


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def analyze(source: str | Path, options: AnalyzeOptions, manifest: str | Path | None = None) -> dict:
    if options.metrics is not None:  # a bad metrics file fails before any analysis runs
        from stylestudy.analysis.agreement.metrics_file import read_metrics

        read_metrics(options.metrics)
    ratings: RatingSet = load_ratings(source, manifest, options.exclude_flags, options.duplicates, options.db_url,
                                      options.input_format, options.method_from)
    if ratings.usable.empty and not ratings.counts["excluded_by_flags"]:
        raise StyleStudyError(f"{source}: none of its {ratings.counts['rows']} rows is a usable rating "
                              f"({ratings.counts['missing']} unanswered, {ratings.counts['attention_rows']} attention "
                              "checks); analyse it once participants have rated")
    if ratings.usable.empty and ratings.counts["excluded_by_flags"]:
        raise StyleStudyError(f"{source}: every rating is excluded by flags ({', '.join(ratings.excluded_flags)}; "
                              f"{ratings.counts['excluded_by_flags']} ratings); to keep some, give --exclude-flags "
                              "without the flag (e.g. timeout,short_display keeps too_fast answers)")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)

    counts = flow.database_counts(Path(source), options.db_url)  # before exclusions change what is usable
    slopes = generalise_slopes(options.generalise, options.mixed_slopes)
    if is_generic(ratings):  # acr, pairwise, or imported methods: rank them with CIs
        _require_items(source, ratings)
        summary, document, mixed = analyze_protocol(ratings, out, options.seed, options.bootstrap,
                                                    options.rater_min_r, slopes, options.mixed_variances,
                                                    options.generalise)
        items = ratings.usable["row_label"].nunique() if "row_label" in ratings.usable else 0
        summary["population"] = population(items, mixed, options.generalise).to_json()
        after = next(k for k, line in enumerate(document.lead) if line.startswith("Ratings from"))
        document.lead.insert(after + 1, statistics_text.population(summary["population"]))
        _metric_agreement(ratings, options, summary, document)
        return _finish(out, summary, document, flow.participant_flow(ratings, counts, {}))
    result = analyze_table1(ratings, options.screen, options.rater_min_r, options.seed, slopes,
                            options.mixed_variances, options.ddof if options.compare_paper else None, options.generalise)
    labels = column_labels(ratings)
    cap = table.caption(ratings, options.ddof, labels)
    tf = table.table_frame(ratings, options.ddof, options.decimals)
    written = {"table.md": table.to_markdown(tf, cap, labels), "table.tex": table.to_latex(tf, cap, labels),
               "table.html": table.to_html(tf, cap, labels), "table.csv": table.to_csv(tf, labels)}
    for name, text in written.items():
        (out / name).write_text(text, encoding="utf-8")
    usable, tests = ratings.usable, result.tests
    write_csv(tests, out / "stats.csv")
    write_csv(result.omnibus, out / "omnibus.csv")
    write_csv(result.screening, out / "raters_bt500.csv")
    pngs = [figures.mean_heatmaps(usable, out), figures.difference_heatmap(usable, tests, out),
            figures.paired_plots(usable, out), figures.distributions(usable, out),
            figures.rater_panel(usable, result.screening, out)]
    summary = {
        "source": ratings.source, "synthetic": ratings.synthetic, "simulated": ratings.simulated, "duplicates": options.duplicates,
        "counts": ratings.counts, "ddof": options.ddof, "excluded_flags": list(options.exclude_flags),
        "bt500_rejected": result.bt500_rejected, "bt500_excluded": options.screen in ("bt500", "both"),
        "attainability": result.attainability, "loo_flagged": result.loo_flagged, "rater_min_r": options.rater_min_r,
        "raters_excluded": result.excluded, "omnibus": result.omnibus.to_dict(orient="records"),
        "mixed_model": _table1_mixed(result.mixed), "agreement": result.agreement, "cells": len(tests),
        **({"omnibus_every_rater": result.omnibus_every_rater.to_dict(orient="records")}
           if result.omnibus_every_rater is not None else {}),
        **result.cell_counts(),
        "viewing": viewing.viewing_line(ratings.all_rows),
        "population": population(len(usable[["block", "row", "column"]].drop_duplicates()), result.mixed, options.generalise,
                                 "cell").to_json(),
    }
    if result.compared is not None:
        write_csv(result.compared, out / "compare_paper.csv")
        summary["compare_paper"] = {"pearson_r": result.pearson_r,
                                    "mean_abs_difference": float(result.compared["difference"].abs().mean())}
    sections = _sections(summary, Prepared(written["table.md"], written["table.html"]), result, pngs)
    claims = _claims_section(source, manifest)
    viewing_section = viewing.section(ratings.all_rows)
    document = Document("stylestudy analysis", ratings.synthetic, simulated_line(ratings) + _lead(summary),
                        sections + [s for s in (claims, viewing_section) if s is not None])
    _metric_agreement(ratings, options, summary, document)
    by_rule = result.by_rule()
    return _finish(out, summary, document, flow.participant_flow(ratings, counts, by_rule))


def _require_items(source: str | Path, ratings: RatingSet) -> None:
    """acr and pairwise analyses compare methods within items (``row_label``): an empty one, or an
    item's method under two condition ids (or one id for two methods), is an error."""
    empty = ratings.usable["row_label"].astype(str).str.strip().eq("")
    if empty.any():
        at = int(ratings.usable.index[empty.to_numpy().argmax()])
        raise StyleStudyError(f"{source}, row {at + 2}, column 'row_label': empty; the {ratings.protocol} analysis "
                              "compares methods within items, so every rated row needs its item's name")
    usable = ratings.usable
    for key, other in ((["row_label", "method"], "condition_id"), (["condition_id"], "method")):
        spread = usable.groupby(key)[other].transform("nunique").gt(1)
        if spread.any():
            rows = usable[spread & usable.duplicated(key) & ~usable.duplicated(key + [other])]
            at = int(rows.index[0])
            group = usable[key].eq(rows[key].iloc[0]).all(axis=1)
            raise StyleStudyError(f"{source}, row {at + 2}, column '{other}': {rows[other].iloc[0]!r}, but "
                                  f"{' '.join(map(str, rows[key].iloc[0]))} is {usable.loc[group, other].iloc[0]!r} "
                                  "in an earlier row; one condition per item and method")


def _finish(out: Path, summary: dict, document: Document, participant_flow: dict) -> dict:
    """The participant flow as the last section; the report rendered once; ``summary.json``."""
    document.sections.append(flow.section(participant_flow, out))
    render(document, out)
    summary["flow"] = participant_flow
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    summary["out"] = str(out)
    return summary


def _metric_agreement(ratings: RatingSet, options: AnalyzeOptions, summary: dict, document: Document) -> None:
    """With ``--metrics``: the agreement section (after the analysis' own) and its summary entry."""
    if options.metrics is None:
        return
    from stylestudy.analysis.agreement.section import agreement_section

    summary["metric_agreement"], section = agreement_section(ratings.usable, ratings.protocol, options.metrics,
                                                             options.out, options.bootstrap, options.seed)
    document.sections.append(section)


def _claims_section(source: str | Path, manifest: str | Path | None) -> Section | None:
    """The run's 'stylestudy claims' results (RUN_DIR/claims/), when it has them."""
    run = Path(source) if Path(source).is_dir() else (Path(manifest).parent if manifest else None)
    path = run / "claims" / "claims.json" if run else None
    if path is None or not path.is_file():
        return None
    text = format_claims(json.loads(path.read_text(encoding="utf-8")))
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    notes: list[str | list[str]] = [line for line in text.splitlines() if line and not line.startswith("|")]
    figure = path.parent / "claims.png"
    return Section("The paper's claims, measured on the stimuli", [f"From {path}.", *notes],
                   Table(cells[0], cells[1:]) if cells else None, [figure] if figure.is_file() else [])


def _omni_lines(omni: pd.DataFrame) -> list[str]:
    return [f"{r.scope}: {r.participants} participants, mean difference {r.mean_diff:+.2f} (95% CI t "
            f"{_fmt_ci(r.ci_t)}, bootstrap {_fmt_ci(r.ci_boot)}), {r.test} p = {r.p:.4g} (t-test p = {r.p_ttest:.4g}, "
            f"exact Wilcoxon p = {r.p_wilcoxon:.4g}), d_z = {r.cohens_dz:.2f} {_fmt_ci(r.dz_ci)}, rank-biserial r = "
            f"{r.rank_biserial:.2f} {_fmt_ci(r.rb_ci)}" for r in omni.itertuples()]


def _agreement(value: float) -> str:
    return "undefined (no variation, or too few stimuli or raters)" if math.isnan(value) else f"{value:.3f}"


def _table1_mixed(mixed: MethodsFit | NoMixedModel) -> dict:
    """summary.json's mixed model for Table 1: the fit, and normalized - baseline at the top level."""
    return {**mixed.to_json(), **mixed.first_contrast()} if isinstance(mixed, MethodsFit) else mixed.to_json()


def _mixed_line(mixed: dict) -> str:
    if "unavailable" in mixed:
        return f"Mixed model (second): {statistics_text.unavailable(mixed)}."
    variances = statistics_text.variances(mixed)
    steps = statistics_text.fit_steps(mixed)
    why = f" {steps}" if steps else f" Fitted {statistics_text.maximal(mixed, 'cell')}."
    return (f"Mixed model (second): {statistics_text.formula(mixed)}, REML, Satterthwaite df.{why} normalized − baseline = "
            f"{mixed['estimate']:+.2f} (95% CI {_fmt_ci(mixed['ci'])}), t on {mixed['df']:.1f} df, p = {mixed['p']:.3g}, "
            f"{mixed['n_obs']} ratings; variances: {variances}; residual {mixed['residual_var']:.3f}"
            + (f" (singular fit: the {', '.join(mixed['singular_terms'])} variance is estimated at 0)."
               if mixed["singular"] else "."))


def _lead(summary: dict) -> list[str]:
    c = summary["counts"]
    duplicates = (f" {c['duplicates_merged']} repeated ratings of a condition merged ({summary['duplicates']})."
                  if c.get("duplicates_merged") else "")
    return [f"Ratings from {summary['source']}.{duplicates}", statistics_text.population(summary["population"]),
            f"{c['participants']} participants, {c['rows']} rows: {c['usable']} usable ratings, {c['missing']} missing "
            f"(timeouts), {excluded_text(c, summary['excluded_flags'])}, "
            f"{c['attention_rows']} attention-check rows ({c['attention_failed']} failed).",
            f"BT.500 screening rejects: {', '.join(summary['bt500_rejected']) or 'nobody'}"
            f" ({'excluded' if summary['bt500_excluded'] else 'flagged only'}); correlation with the others' MOS below "
            f"{summary['rater_min_r']:g}: {', '.join(summary['loo_flagged']) or 'nobody'}; excluded: "
            + (', '.join(f'{p} ({r})' for p, r in summary['raters_excluded'].items()) or 'nobody') + "."]


CELL_COLUMNS = ["block", "row", "column", "n_pairs", "mean_baseline", "mean_normalized", "mean_diff", "p_wilcoxon",
                "p_sign", "p_ttest", "p_holm", "p_bh", "rank_biserial", "cohens_dz"]


def _sections(summary: dict, table1: Prepared, result: Table1Analysis, pngs: list[Path]) -> list[Section]:
    omni, agree, tests = result.omnibus, result.agreement, result.tests
    note = statistics_text.attainability(result.attainability)
    overall: list[str | list[str]] = [
        "Headline: each participant's mean difference (normalized − baseline) over the cells, then the paired "
        "t-test across participants (the exact signed-rank test where every difference is equal and t is "
        "undefined), with exact Wilcoxon and effect sizes alongside.", _omni_lines(omni)]
    if result.omnibus_every_rater is not None:
        overall += ["With every rater (before the exclusions above):", _omni_lines(result.omnibus_every_rater)]
    overall.append(_mixed_line(summary["mixed_model"]))
    sections = [
        Section("Table 1 layout", table=table1),
        Section("Overall: is normalized rated higher?", overall),
        Section("Per cell", [note, f"{summary['cells_p_lt_05_uncorrected']} of {summary['cells']} cells have "
                f"Wilcoxon p < 0.05 uncorrected; {summary['cells_significant_holm']} after Holm, "
                f"{summary['cells_significant_bh']} after Benjamini-Hochberg."],
                Table.of(tests[CELL_COLUMNS]) if len(tests) else None),
        Section("Raters", [f"Krippendorff's alpha (ordinal) = {_agreement(agree['krippendorff_alpha_ordinal'])}; "
                           f"ICC(2,1) = {_agreement(agree['icc2_1'])}, ICC(2,k) = {_agreement(agree['icc2_k'])} over "
                           f"{agree['targets']} stimuli rated by all {agree['raters']} raters."]),
        Section("Figures", figures=pngs),
    ]
    if result.compared is not None:
        cp = summary["compare_paper"]
        sections.append(Section("Compared with the paper's Table 1", [
            f"Pearson r of cell means = {cp['pearson_r']:.3f}; mean |difference| = {cp['mean_abs_difference']:.2f}."],
            Table.of(result.compared, ".2f")))
    return sections
