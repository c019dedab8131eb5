"""The participant flow of the report (CONSORT-style): arrived -> consented -> refused or
screened out (by reason) -> started -> completed -> excluded (by rule) -> analysed.

The first steps come from the study database (``evalserver.flow_log``; a CSV export has only
the ratings, so its flow starts at "rated"); exclusions are the analysis's own rules (BT.500
screening with ``--screen bt500``; participants left without a usable rating by the flag
rules), and the QC flags that are reported but do not exclude anyone (failed attention checks
and gold items) are counted beside them, so a reader sees what each rule did.
"""

from __future__ import annotations

import html
from pathlib import Path

from stylestudy.analysis.sources.ratings import RatingSet


def database_counts(source: Path, db_url: str | None) -> dict | None:
    """The live flow counts of a run directory's database; None for a CSV."""
    if not Path(source).is_dir():
        return None
    from stylestudy.evalserver.app import database_url
    from stylestudy.evalserver.db import make_engine, make_sessionmaker
    from stylestudy.evalserver.flow_log import flow_counts

    engine = make_engine(database_url(source, db_url, must_exist=True))
    try:
        with make_sessionmaker(engine, will_write=False)() as session:
            return flow_counts(session)
    finally:
        engine.dispose()


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
    flagged = {"failed an attention check": len(_with_flag(ratings, "attention_failed", "attention")),
               "failed a gold item": len(_with_flag(ratings, "gold_failed"))}
    return {"stages": stages, "lost": lost, "flagged_not_excluded": flagged, "from_database": counts is not None}


def flow_markdown(flow: dict) -> str:
    lines = ["## Participant flow", "", "| stage | participants | lost before this stage |", "|---|---:|---|"]
    for label, n in flow["stages"]:
        reasons = ", ".join(f"{k} {v}" for k, v in flow["lost"].get(label, {}).items())
        lines.append(f"| {label} | {n} | {reasons} |")
    flagged = ", ".join(f"{k}: {v}" for k, v in flow["flagged_not_excluded"].items())
    lines += ["", f"Flagged, not excluded: {flagged}."]
    if not flow["from_database"]:
        lines.append("(From an exported CSV: arrivals, consent and refusals are in the study database; analyse the "
                     "run directory to see them.)")
    return "\n".join(lines) + "\n"


def flow_html(flow: dict, figure_html: str) -> str:
    rows = "".join(f"<tr><th>{html.escape(label)}</th><td>{n}</td><td>"
                   + html.escape(", ".join(f"{k} {v}" for k, v in flow["lost"].get(label, {}).items()))
                   + "</td></tr>" for label, n in flow["stages"])
    flagged = ", ".join(f"{k}: {v}" for k, v in flow["flagged_not_excluded"].items())
    return (f'<h2>Participant flow</h2><table class="flow"><tr><th>stage</th><th>participants</th>'
            f"<th>lost before this stage</th></tr>{rows}</table><p>Flagged, not excluded: {html.escape(flagged)}.</p>"
            + figure_html)


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


def add_to_report(out: Path, summary: dict, flow: dict) -> None:
    """The flow appended to the report's Markdown and HTML, and into summary.json."""
    import json

    from stylestudy.analysis.render.page import embed_png

    figure = flow_figure(flow, out)
    md = out / "report.md"
    if md.is_file():
        md.write_text(md.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + flow_markdown(flow), encoding="utf-8")
    page = out / "report.html"
    if page.is_file():
        text = page.read_text(encoding="utf-8")
        section = flow_html(flow, embed_png(figure))
        text = text.replace("</body>", section + "</body>", 1) if "</body>" in text else text + section
        page.write_text(text, encoding="utf-8")
    summary["flow"] = flow
    saved = out / "summary.json"
    if saved.is_file():
        data = json.loads(saved.read_text(encoding="utf-8"))
        data["flow"] = flow
        saved.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
