"""Reading ratings (export CSV or the study database) and the run's layout labels.

Missing and flagged ratings are counted, never silently dropped: ``RatingSet`` keeps the raw
rows, what was excluded and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.errors import StyleStudyError
from evalserver.export import COLUMNS

PAPER_THRESHOLDS = {"a": 4.0, "b": 2.0}


@dataclass
class Layout:
    """Per-block shading thresholds: from the manifest's study when there is one, else the paper's."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(PAPER_THRESHOLDS))

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Layout":
        blocks = manifest["study"].get("blocks", {})
        return cls({b: spec["threshold"] for b, spec in blocks.items() if spec.get("threshold") is not None})


@dataclass
class RatingSet:
    """Ratings ready for analysis, plus the accounting of what was left out."""

    all_rows: pd.DataFrame  # every exported row, attention checks included
    usable: pd.DataFrame  # rated, not excluded by flags or screening, not attention checks
    layout: Layout
    excluded_flags: list[str]
    counts: dict[str, int]
    synthetic: bool = False

    def exclude_participants(self, ids: list[str], reason: str) -> None:
        before = len(self.usable)
        self.usable = self.usable[~self.usable["participant_id"].isin(ids)]
        self.counts[f"excluded_{reason}"] = before - len(self.usable)


def _read_source(source: Path) -> tuple[pd.DataFrame, dict | None]:
    if source.is_dir():
        manifest_path = source / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        if (source / "ratings.csv").is_file():
            return pd.read_csv(source / "ratings.csv", dtype={"flags": str, "external_id": str}), manifest
        db = source / "ratings.sqlite"
        if not db.is_file():
            raise StyleStudyError(f"no ratings in {source} (neither ratings.csv nor ratings.sqlite); "
                                  "run 'stylestudy serve' or pass an exported CSV")
        from evalserver.db import make_engine, make_sessionmaker
        from evalserver.export import export_rows  # the server's own reader: one definition of the format

        with make_sessionmaker(make_engine(f"sqlite:///{db}"), will_write=False)() as session:
            rows = export_rows(session)
        frame = pd.DataFrame(rows, columns=COLUMNS + ["row_label", "attention"])
        frame["rating"] = pd.to_numeric(frame["rating"], errors="coerce")
        return frame, manifest
    if not source.is_file():
        raise StyleStudyError(f"ratings not found: {source}; give an exported CSV or a run directory")
    try:
        frame = pd.read_csv(source, dtype={"flags": str, "external_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise StyleStudyError(f"cannot read {source} as CSV ({exc}); give the file 'stylestudy export' wrote") from None
    return frame, None


def load_ratings(source: str | Path, manifest_path: str | Path | None = None,
                 exclude_flags: tuple[str, ...] = ("timeout", "short_display")) -> RatingSet:
    source = Path(source)
    frame, manifest = _read_source(source)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise StyleStudyError(f"{source} lacks column(s) {', '.join(missing)}; it must be in the export format")
    if manifest_path:
        manifest = json.loads(Path(manifest_path).read_text())
    frame = frame.copy()
    frame["flags"] = frame["flags"].fillna("").astype(str)
    frame["rating"] = pd.to_numeric(frame["rating"], errors="coerce")
    frame["column"] = frame["column"].astype(int)
    frame["row"] = frame["row"].astype(int)
    frame["participant_id"] = frame["participant_id"].astype(str)
    frame["block"] = frame["block"].astype(str)
    is_attention = frame["block"].eq("attention")
    if "attention" in frame.columns:
        is_attention |= frame["attention"].fillna(0).astype(int).eq(1)
    flag_sets = frame["flags"].map(lambda f: set(filter(None, f.split(";"))))
    flagged = flag_sets.map(lambda fs: bool(fs & set(exclude_flags)))
    usable = frame[~is_attention & frame["rating"].notna() & ~flagged]
    counts = {
        "rows": len(frame), "attention_rows": int(is_attention.sum()),
        "attention_failed": int(flag_sets[is_attention].map(lambda fs: "attention_failed" in fs).sum()),
        "missing": int((frame["rating"].isna() & ~is_attention).sum()),
        "excluded_by_flags": int((flagged & frame["rating"].notna() & ~is_attention).sum()),
        "usable": len(usable), "participants": frame["participant_id"].nunique(),
    }
    for flag in sorted({f for fs in flag_sets for f in fs}):
        counts[f"flag_{flag}"] = int(flag_sets.map(lambda fs, f=flag: f in fs).sum())
    layout = Layout.from_manifest(manifest) if manifest else Layout()
    synthetic = "synthetic" in frame.columns and bool(frame["synthetic"].fillna(0).astype(int).any())
    return RatingSet(frame, usable.copy(), layout, list(exclude_flags), counts, synthetic)
