"""The analysis's CSV files, written as the exports are: no text cell a spreadsheet would run.

Method, item and participant names come from whoever made the ratings; a name like
``=HYPERLINK(...)`` would be a formula when ``ranking.csv`` is opened in a spreadsheet.  Every text
cell, index label and column name goes through ``evalserver.spreadsheet_cells.neutralise`` (a
leading apostrophe, undone by ``restore``); numbers are written as they are.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stylestudy.evalserver.spreadsheet_cells import neutralise


def _cell(value):
    return neutralise(value) if isinstance(value, str) else value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells, index labels and column names no spreadsheet evaluates."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(_cell)
    out.index = out.index.map(_cell)
    out.columns = out.columns.map(_cell)
    return out


def write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> Path:
    """``frame.to_csv(path)``, neutralised."""
    neutralised(frame).to_csv(path, index=index)
    return path
