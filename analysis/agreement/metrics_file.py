"""Reading ``metrics.csv`` (written by ``stylestudy metrics``) without torch: one row per
condition, the id columns, then one numeric column per metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stylestudy.engine.metrics import ID_COLUMNS
from stylestudy.engine.study.errors import StyleStudyError


def read_metrics(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(the table indexed by condition_id, the metric columns); one-line errors for a bad file."""
    path = Path(path)
    if not path.is_file():
        raise StyleStudyError(f"metrics file not found: {path}; write it with: stylestudy metrics RUN_DIR")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StyleStudyError(f"{path} is not a readable CSV ({str(exc).splitlines()[0]}); write it with: "
                              "stylestudy metrics RUN_DIR") from None
    lacking = [c for c in ID_COLUMNS if c not in frame.columns]
    if lacking:
        raise StyleStudyError(f"{path} lacks the column(s) {', '.join(lacking)}; a metrics file starts with "
                              f"{', '.join(ID_COLUMNS)} (stylestudy metrics RUN_DIR writes one)")
    metrics = [c for c in frame.columns if c not in ID_COLUMNS]
    bad = [c for c in metrics if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad or not metrics:
        raise StyleStudyError(f"{path}: " + (f"column(s) {', '.join(bad)} are not numbers" if bad else
                                             "no metric columns after the id columns") + "; write it with: "
                              "stylestudy metrics RUN_DIR")
    if frame["condition_id"].duplicated().any():
        twice = frame.loc[frame["condition_id"].duplicated(), "condition_id"].iloc[0]
        raise StyleStudyError(f"{path}: condition {twice} appears twice; one row per condition")
    return frame.set_index("condition_id"), metrics
