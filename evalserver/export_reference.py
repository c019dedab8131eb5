"""The export-column reference (docs/reference/export-columns.md), generated from the exporter's
own column lists (``evalserver.export``), so the documented order is the written order.

Regenerate after changing a column: ``python -m stylestudy.evalserver.export_reference >
docs/reference/export-columns.md`` (a test fails while the file is out of date).
"""

from __future__ import annotations

from stylestudy.evalserver.export import COLUMNS, EXTRA_COLUMNS, PARTICIPANT_COLUMNS, VIEWING_COLUMNS

# what each column holds; a column the exporter writes without a line here fails the reference
MEANING = {
    "participant_id": "the server's id of the participant (random, opaque)",
    "external_id": "the recruiter's id (`PROLIFIC_PID` or `pid` in the study URL), normalised; empty without one",
    "trial": "the trial's number in this participant's order (1-based)",
    "pair_id": "the comparison the rating belongs to: in the paper's design the cell; attention checks and hidden "
               "repeats are comparisons of their own",
    "condition_id": "the rated condition (block, row, column and method follow)",
    "block": "the condition's block (`practice` for a practice trial)",
    "row": "the condition's row",
    "column": "the condition's column",
    "column_label": "what the column varies (e.g. the λos, the boosted layer, the size)",
    "method": "the method that made the image (never shown to participants)",
    "image_id": "the picture the condition showed (other conditions may show the same one)",
    "position": "1 = shown first / on the left (\"Image 1\"), 2 = second",
    "rating": "1..k; on a pairwise trial 1 for the preferred image and 0 for the other; empty when missing",
    "response_ms": "milliseconds from the answer phase's start to the answer",
    "shown_ms": "how long the image was on screen, measured with requestAnimationFrame",
    "flags": "`;`-separated rating flags (timeout, short_display, too_fast, blur, restarted, ...)",
    "rated_at": "when the answer was stored, ISO 8601 UTC",
    "row_label": "the row's label from the study file",
    "attention": "the answer an attention check asked for; empty on other trials",
    "served_at": "when the server served the trial, ISO 8601 UTC",
    "external_study_id": "`STUDY_ID` from the study URL (Prolific's)",
    "external_session_id": "`SESSION_ID` from the study URL (Prolific's, per attempt)",
    "protocol": "the trial's protocol: paired, acr or pairwise",
    "role": "rated, attention, repeat (an acr hidden repeat) or practice (never analysed)",
    "shown_width": "the rendered width of the picture, CSS px, as the browser drew it",
    "shown_height": "the rendered height of the picture, CSS px",
    "device_pixel_ratio": "the browser's device pixel ratio during the trial",
    "image_width": "the stimulus's own width in pixels (from the server)",
    "image_height": "the stimulus's own height in pixels",
    "viewport": "the window the trials started in, CSS px, `WxH`",
    "screen": "the screen, CSS px, `WxH`",
    "pointer": "fine, coarse or none",
    "user_agent": "the browser's user agent (simulated participants' is recognised by the analysis)",
    "shown_scale": "CSS px per image pixel: shown_width / image_width",
    "display": "the study's `[protocol] display` mode (the same on every row)",
    "consented_at": "when the participant consented, ISO 8601 UTC",
    "briefing_done_at": "when the participant finished the briefing (started the trials)",
    "completed_at": "when the participant finished the last trial; empty if they did not",
    "trials": "the number of trials planned for the participant",
    "trials_done": "the number of trials answered",
    "screened_out": "why the participant was screened out (mobile, screen_too_small, attention); empty if not",
    "screened_out_at": "when they were screened out",
}

TABLES = {
    "Ratings (`stylestudy export RUN_DIR --out ratings.csv`, the admin page's CSV)": [
        ("first, in this order", COLUMNS), ("then", EXTRA_COLUMNS), ("then, viewing", VIEWING_COLUMNS)],
    "Participants (`stylestudy export RUN_DIR --out ratings.csv --participants-csv people.csv`)": [
        ("in this order", PARTICIPANT_COLUMNS)],
}


def export_column_reference() -> str:
    """Markdown: the columns of both exports, in the order they are written."""
    lines = ["# Export columns", "",
             "Generated from the column lists in `evalserver/export.py` by `python -m "
             "stylestudy.evalserver.export_reference`; do not edit by hand. What the values mean in more detail: "
             "[the ratings export](export.md).", ""]
    for title, parts in TABLES.items():
        lines += [f"## {title}", "", "| # | column | where | what it holds |", "|---|---|---|---|"]
        number = 0
        for where, columns in parts:
            for column in columns:
                number += 1
                lines.append(f"| {number} | `{column}` | {where} | {MEANING[column].replace('|', chr(92) + '|')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(export_column_reference(), end="")
