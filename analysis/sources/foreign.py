"""Ratings collected anywhere: the two plain CSV layouts ``analyze`` reads besides its own export.

- ratings (ACR, or the paired design): ``participant,item,method,score`` (optional ``trial``,
  ``scale_max``); a trial holding two methods of one item is the paired design;
- pairwise: ``participant,item,a,b,winner``, ``winner`` = a's method, b's method or ``tie``
  (empty: no answer).

Both become rows of the export's layout, so every later step reads one format.  Anything that
does not fit is refused with one line naming the file, the row (the file's line, header = 1) and
the column, and what to do; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.evalserver.export import COLUMNS
from stylestudy.evalserver.flags import Flag

RATINGS_COLUMNS = ("participant", "item", "method", "score")
PAIRWISE_COLUMNS = ("participant", "item", "a", "b", "winner")
TIE = "tie"
DEFAULT_SCALE_MAX = 5  # without a scale_max column: 1..5, or 1..the largest score where that is higher
INPUT_FORMATS = ("auto", "export", "ratings", "pairwise", "sureal")
DOCS = "docs/reference/input-formats.md"


@dataclass(frozen=True)
class Cell:
    """Where a value sits in the file, for the one-line error."""

    path: Path
    row: int  # the file's line (the header is row 1)
    column: str

    def error(self, problem: str) -> StyleStudyError:
        return StyleStudyError(f"{self.path}, row {self.row}, column '{self.column}': {problem}")


def _name(column) -> str:
    """A column name as matched: case and surrounding spaces ignored."""
    return str(column).strip().lower()


def header_format(columns) -> str | None:
    """Which plain layout a header is ("ratings", "pairwise"), or None."""
    present = {_name(c) for c in columns}
    if present >= set(PAIRWISE_COLUMNS):
        return "pairwise"
    if present >= set(RATINGS_COLUMNS):
        return "ratings"
    return None


def _text_frame(path: Path, frame: pd.DataFrame, required: tuple[str, ...], kind: str) -> pd.DataFrame:
    """The frame as stripped text, every required column present and filled (one line otherwise)."""
    frame = frame.rename(columns=_name)
    lacking = [c for c in required if c not in frame.columns]
    if lacking:
        raise StyleStudyError(f"{path}: the {kind} layout needs the column(s) {', '.join(lacking)} (header: "
                              f"{','.join(required)}; see {DOCS})")
    frame = frame.astype("string").fillna("").apply(lambda s: s.str.strip())
    if frame.empty:
        raise StyleStudyError(f"{path}: no rows under the header; there is nothing to analyse yet")
    for column in required:
        if column == "winner":  # empty = no answer, counted as missing
            continue
        empty = frame[column].eq("")
        if empty.any():
            raise Cell(path, int(empty.to_numpy().argmax()) + 2, column).error(
                f"empty; every row needs its {column}")
    return frame


def _numbers(path: Path, frame: pd.DataFrame, column: str, integer: bool = False) -> pd.Series:
    """A text column as finite numbers (integers if asked); the first cell that is not, as an error."""
    values = pd.to_numeric(frame[column].astype(object), errors="coerce").astype(float)
    bad = ~np.isfinite(values)
    if integer:
        bad |= values.ne(values.round())
    if bad.any():
        at = int(bad.to_numpy().argmax())
        what = "a whole number" if integer else "a finite number"
        raise Cell(path, at + 2, column).error(f"{frame[column].iloc[at]!r} is not {what}")
    return values


def _trials(path: Path, frame: pd.DataFrame) -> pd.Series:
    """Each row's trial number: the ``trial`` column, else its order within the participant's rows."""
    if "trial" in frame.columns:
        return _numbers(path, frame, "trial", integer=True).astype(int)
    return frame.groupby("participant", sort=False).cumcount() + 1


def _export_frame(rows: dict[str, object], n: int, protocol: str) -> pd.DataFrame:
    """Export-layout columns around the given ones (the Table 1 cell columns are unused here)."""
    base = {c: "" for c in COLUMNS}
    base.update(block="", row=0, column=0, position=1, response_ms="", shown_ms="", protocol=protocol, role="rated",
                attention=0)
    base.update(rows)
    frame = pd.DataFrame({k: (v if isinstance(v, (pd.Series, list)) else [v] * n) for k, v in base.items()})
    return frame


def ratings_rows(path: Path, raw: pd.DataFrame) -> pd.DataFrame:
    """``participant,item,method,score[,trial,scale_max]`` -> export rows (acr, or paired where a
    trial holds two methods of one item)."""
    frame = _text_frame(path, raw, RATINGS_COLUMNS, "ratings")
    scores = _numbers(path, frame, "score")
    top = max(DEFAULT_SCALE_MAX, scores.max())
    if "scale_max" in frame.columns:
        scale_max = _numbers(path, frame, "scale_max", integer=True)
        if scale_max.nunique() > 1:
            at = int(scale_max.ne(scale_max.iloc[0]).to_numpy().argmax())
            raise Cell(path, at + 2, "scale_max").error(f"{scale_max.iloc[at]:g} differs from row 2's "
                                                          f"{scale_max.iloc[0]:g}; one scale per file")
        top = scale_max.iloc[0]
        if top < 2:
            raise Cell(path, 2, "scale_max").error(f"{top:g}: a rating scale has at least 2 points")
    outside = (scores < 1) | (scores > top)
    if outside.any():
        at = int(outside.to_numpy().argmax())
        raise Cell(path, at + 2, "score").error(
            f"{scores.iloc[at]:g} is outside the scale 1..{top:g}; scores run from 1 (worst) to scale_max: shift or "
            "rescale them, or give the scale_max column")
    trials = _trials(path, frame)
    keys = pd.DataFrame({"participant": frame["participant"], "trial": trials})
    per_trial = keys.groupby(["participant", "trial"], sort=False)["trial"].transform("size")
    items_per_trial = frame.groupby([keys["participant"], keys["trial"]], sort=False)["item"].transform("nunique")
    if items_per_trial.gt(1).any():
        at = int(items_per_trial.gt(1).to_numpy().argmax())
        raise Cell(path, at + 2, "trial").error(f"participant {frame['participant'].iloc[at]}'s trial "
                                                 f"{trials.iloc[at]} holds more than one item; a trial shows one item")
    if per_trial.gt(2).any():
        at = int(per_trial.gt(2).to_numpy().argmax())
        raise Cell(path, at + 2, "trial").error(f"participant {frame['participant'].iloc[at]}'s trial "
                                                 f"{trials.iloc[at]} holds more than two ratings; one (acr) or two "
                                                 "(the paired design) per trial")
    if "trial" in frame.columns:
        twice = keys.assign(method=frame["method"]).duplicated(keep="first")
        if twice.any():
            at = int(twice.to_numpy().argmax())
            raise Cell(path, at + 2, "trial").error(f"participant {frame['participant'].iloc[at]}'s trial "
                                                     f"{trials.iloc[at]} rates {frame['method'].iloc[at]} twice; "
                                                     "give each trial its own number")
    paired = "trial" in frame.columns and per_trial.eq(2).any()
    position = keys.groupby(["participant", "trial"], sort=False).cumcount() + 1
    if paired:  # the comparison: the item and the two methods in the trial
        methods = frame.groupby([keys["participant"], keys["trial"]], sort=False)["method"].transform(
            lambda m: "+".join(sorted(m)))
        pair_id = frame["item"] + "|" + methods
    else:
        pair_id = frame["item"]
    return _export_frame({
        "participant_id": frame["participant"], "trial": trials, "pair_id": pair_id,
        "condition_id": frame["item"] + "|" + frame["method"], "method": frame["method"],
        "image_id": frame["item"] + "|" + frame["method"], "position": position, "rating": scores,
        "flags": "", "row_label": frame["item"]}, len(frame), "paired" if paired else "acr")


def pairwise_rows(path: Path, raw: pd.DataFrame, order_known: bool = True) -> pd.DataFrame:
    """``participant,item,a,b,winner`` -> two export rows per comparison (rating 1 = chosen; a
    tie as the server stores "No preference"; an empty winner = no answer, counted as missing).
    ``a`` is the image shown first (position 1); without ``order_known`` (sureal's datasets do
    not record it) both positions are 0, and the report does not test a position bias."""
    frame = _text_frame(path, raw, PAIRWISE_COLUMNS, "pairwise")
    same = frame["a"].eq(frame["b"])
    if same.any():
        at = int(same.to_numpy().argmax())
        raise Cell(path, at + 2, "b").error(f"{frame['b'].iloc[at]!r} is also a; a comparison shows two methods")
    winner = frame["winner"]
    valid = winner.eq(frame["a"]) | winner.eq(frame["b"]) | winner.str.lower().eq(TIE) | winner.eq("")
    if not valid.all():
        at = int((~valid).to_numpy().argmax())
        raise Cell(path, at + 2, "winner").error(
            f"{winner.iloc[at]!r} is neither a ({frame['a'].iloc[at]!r}), b ({frame['b'].iloc[at]!r}) nor 'tie' "
            "(leave it empty for no answer)")
    trials = _trials(path, frame)
    repeated = pd.DataFrame({"p": frame["participant"], "t": trials}).duplicated()
    if repeated.any():
        at = int(repeated.to_numpy().argmax())
        raise Cell(path, at + 2, "trial").error(f"participant {frame['participant'].iloc[at]}'s trial "
                                                 f"{trials.iloc[at]} appears twice; one comparison per trial")
    tie = winner.str.lower().eq(TIE)
    answered = winner.ne("")
    halves = []
    for side, position in (("a", 1 if order_known else 0), ("b", 2 if order_known else 0)):
        chosen = winner.eq(frame[side]).astype(float).where(answered & ~tie, 0.0).where(answered)
        halves.append(_export_frame({
            "participant_id": frame["participant"], "trial": trials,
            "pair_id": frame["item"] + "|" + frame[["a", "b"]].min(axis=1) + "+" + frame[["a", "b"]].max(axis=1)
            + "|" + trials.astype(str),  # a participant may compare a pair again: each comparison its own
            "condition_id": frame["item"] + "|" + frame[side], "method": frame[side],
            "image_id": frame["item"] + "|" + frame[side], "position": position, "rating": chosen,
            "flags": tie.map({True: str(Flag.NO_PREFERENCE), False: ""}).where(answered, str(Flag.TIMEOUT)),
            "row_label": frame["item"]}, len(frame), "pairwise").set_index(frame.index))
    both = pd.concat(halves).sort_index(kind="stable")
    return both.reset_index(drop=True)
