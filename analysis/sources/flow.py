"""The participant flow of the report (CONSORT-style): arrived -> consented -> refused or
screened out (by reason) -> started -> completed -> excluded (by rule) -> analysed.

The first steps come from the study database (``evalserver.flow_log``; a CSV export has only
the ratings, so its flow starts at "rated"); exclusions are the analysis's own rules (BT.500
screening with ``--screen bt500``; participants left without a usable rating by the flag
rules), and the QC flags that are reported but do not exclude anyone (failed attention checks
and gold items) are counted beside them, so a reader sees what each rule did.
"""

from __future__ import annotations

from pathlib import Path

from stylestudy.analysis.render.document import Section, Table
from stylestudy.analysis.sources import storage
from stylestudy.analysis.sources.ratings import RatingSet
from stylestudy.evalserver.flags import Flag


def database_counts(source: Path, db_url: str | None) -> dict | None:
    """The live flow counts of a run directory's database; None for a CSV."""
    if not Path(source).is_dir():
        return None
    from stylestudy.evalserver.flow_log import flow_counts

    with storage.reading(storage.run_database(source, db_url)) as session:
        return flow_counts(session)


def _with_flag(ratings: RatingSet, flag: str, role: str | None = None) -> set[str]:
    rows = ratings.all_rows
    if role is not None:
        rows = rows[rows["role"].eq(role)]
    hit = rows["flags"].map(lambda f: flag in f.split(";"))
    return set(rows.loc[hit, "participant_id"])


def participant_flow(ratings: RatingSet, counts: dict | None, excluded: dict[str, list[str]]) -> dict:
    """The flow as data: ``stages`` [(label, participants)], ``lost`` {stage label: {reason: n}}."""
    rated = set(ratings.all_rows["participant_id"])
    analysed = set(ratings.usable["participant_id"])
    by_rule = {rule: len(set(ids) & rated) for rule, ids in excluded.items() if ids}
    ruled_out = set().union(*(set(ids) for ids in excluded.values())) if excluded else set()
    unusable = rated - analysed - ruled_out
    if unusable:
        by_rule[f"no usable rating ({', '.join(ratings.excluded_flags) or 'missing'})"] = len(unusable)
    stages: list[tuple[str, int]] = []
    lost: dict[str, dict[str, int]] = {}
    if counts is not None:
        stages += [("arrived", counts["arrived"]), ("consented", counts["consented"])]
        lost["consented"] = {"did not consent": counts["no_consent"]}
        refused = {f"refused: {k}": v for k, v in counts["refused"].items()}
        refused.update({f"screened out: {k}": v for k, v in counts["screened_out"].items()})
        stages += [("started", counts["started"]), ("completed", counts["completed"])]
        lost["started"] = refused
    stages.append(("rated", len(rated)))
    stages.append(("analysed", len(analysed)))
    lost["analysed"] = {f"excluded: {k}": v for k, v in by_rule.items()}
    flagged = {"failed an attention check": len(_with_flag(ratings, Flag.ATTENTION_FAILED, "attention")),
               "failed a gold item": len(_with_flag(ratings, Flag.GOLD_FAILED))}
    return {"stages": stages, "lost": lost, "flagged_not_excluded": flagged, "from_database": counts is not None}


def section(flow: dict, out: Path) -> Section:
    """The flow as a report section: the stages with what was lost before each, and the figure."""
    table = Table(["stage", "participants", "lost before this stage"],
                  [[label, str(n), ", ".join(f"{k} {v}" for k, v in flow["lost"].get(label, {}).items())]
                   for label, n in flow["stages"]])
    flagged = ", ".join(f"{k}: {v}" for k, v in flow["flagged_not_excluded"].items())
    paragraphs: list[str | list[str]] = [f"Flagged, not excluded: {flagged}."]
    if not flow["from_database"]:
        paragraphs.append("(From an exported CSV: arrivals, consent and refusals are in the study database; analyse "
                          "the run directory to see them.)")
    return Section("Participant flow", paragraphs, table, [flow_figure(flow, out)])


def flow_figure(flow: dict, out: Path) -> Path:
    """The stages as horizontal bars, each labelled with its count and what was lost before it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _ in flow["stages"]]
    values = [n for _, n in flow["stages"]]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(labels)))
    ax.barh(range(len(labels)), values, color="#4c72b0")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    top = max(values + [1])
    for i, (label, n) in enumerate(flow["stages"]):
        lost = ", ".join(f"{k} {v}" for k, v in flow["lost"].get(label, {}).items() if v)
        ax.text(n + top * 0.01, i, f"{n}" + (f"  (lost: {lost})" if lost else ""), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.9)
    ax.set_xlabel("participants")
    ax.set_title("Participant flow")
    fig.tight_layout()
    path = out / "flow.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
