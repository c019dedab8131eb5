"""Reading ratings (export CSV or the study database) and the run's layout labels.

Missing and flagged ratings are counted, never silently dropped: ``RatingSet`` keeps the raw
rows, what was excluded and why.  A participant has one rating per condition; two are an error
that names them, unless the caller chooses ``duplicates="first"`` or ``"mean"`` (reported).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stylestudy.analysis.sources import foreign, storage, sureal_dataset
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.manifest import StudyManifest, condition_id
from stylestudy.engine.study.schema import PROTOCOLS
from stylestudy.evalserver.client import SIMULATED_USER_AGENT
from stylestudy.evalserver.export import COLUMNS, EXTRA_COLUMNS, NUMERIC_COLUMNS, VIEWING_COLUMNS
from stylestudy.evalserver.flags import EXCLUDED_BY_DEFAULT, Flag
from stylestudy.evalserver.spreadsheet_cells import restore

PAPER_THRESHOLDS = {"a": 4.0, "b": 2.0}
DUPLICATE_POLICIES = ("error", "first", "mean")
METHOD_FROM_ALONE = "--method-from maps sureal asset names to methods; it goes with a sureal dataset file (.py or .json)"


@dataclass
class Layout:
    """Per-block shading thresholds: from the manifest's study when there is one, else the paper's."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(PAPER_THRESHOLDS))

    @classmethod
    def from_manifest(cls, manifest: StudyManifest) -> "Layout":
        return cls(manifest.thresholds)


@dataclass
class RatingSet:
    """Ratings ready for analysis, plus the accounting of what was left out."""

    all_rows: pd.DataFrame  # every exported row, attention checks included
    usable: pd.DataFrame  # rated, not excluded by flags or screening, not attention checks
    layout: Layout
    excluded_flags: list[str]
    counts: dict[str, int]
    synthetic: bool = False  # every rating is simulated (a `simulate` file, or only scripted participants)
    source: str = ""  # where the ratings came from, in words (the report states it)
    duplicates: str = "error"
    manifest: StudyManifest | None = None
    protocol: str = "paired"  # paired | acr | pairwise (the export's protocol column; 0.1: paired)
    simulated: str = ""  # what made the ratings simulated, in words ("" for people's ratings)
    native: bool = True  # stylestudy's export or database (False: a plain ratings/pairwise file, a sureal dataset)

    def exclude_participants(self, ids: list[str], reason: str) -> None:
        before = len(self.usable)
        self.usable = self.usable[~self.usable["participant_id"].isin(ids)]
        self.counts[f"excluded_{reason}"] = before - len(self.usable)


def _database_rows(url: str, display: str) -> pd.DataFrame:
    from stylestudy.evalserver.export import export_rows

    with storage.reading(url) as session:
        rows = export_rows(session, display)
    return pd.DataFrame(rows, columns=COLUMNS + EXTRA_COLUMNS + VIEWING_COLUMNS)  # as the CSV export has them


def _read_source(source: Path, db_url: str | None, input_format: str = "auto",
                 method_from: str | None = None) -> tuple[pd.DataFrame, StudyManifest | None, str, bool]:
    """(rows, manifest, description, native): a run directory is read from its database (the live
    ratings), a file as the export, the plain ratings or pairwise layout, or a sureal dataset
    (``input_format``, or "auto": by extension and header); native = stylestudy's own layout."""
    if input_format not in foreign.INPUT_FORMATS:
        raise StyleStudyError(f"--format must be one of {', '.join(foreign.INPUT_FORMATS)}, got {input_format!r}")
    if method_from is not None and input_format not in ("auto", "sureal"):
        raise StyleStudyError(METHOD_FROM_ALONE)
    if source.is_dir():
        if input_format not in ("auto", "export"):
            raise StyleStudyError(f"--format {input_format} reads a file; {source} is a run directory")
        manifest = StudyManifest.load(source) if (source / "manifest.json").is_file() else None
        db_url = storage.run_database(source, db_url)
        display = manifest.protocol.display if manifest is not None else ""
        return _database_rows(db_url, display), manifest, f"database {storage.shown(db_url)}", True
    if db_url is not None:
        raise StyleStudyError("--db goes with a run directory, not with a CSV file")
    if not source.is_file():
        raise StyleStudyError(f"ratings not found: {source}; give an exported CSV or a run directory")
    _refuse_binary(source)
    if input_format == "sureal" or (input_format == "auto" and source.suffix.lower() in (".py", ".json")):
        frame, name = sureal_dataset.dataset_rows(source, method_from)
        return frame, None, f"sureal dataset {name} ({source})", False
    if method_from is not None:
        raise StyleStudyError(METHOD_FROM_ALONE)
    header = _read_csv(source, nrows=0)
    layout = foreign.header_format(header.columns) if input_format == "auto" else input_format
    if layout in ("ratings", "pairwise"):
        frame = _read_csv(source, dtype=str, keep_default_na=False)
        read = foreign.ratings_rows if layout == "ratings" else foreign.pairwise_rows
        return read(source, frame), None, f"{layout} file {source}", False
    if input_format == "auto" and not set(COLUMNS) <= set(header.columns) and "stimulus_id" not in header.columns:
        semicolons = len(header.columns) == 1 and ";" in str(header.columns[0])
        raise StyleStudyError(f"{source}: the header ({','.join(map(str, header.columns[:8]))}"
                              f"{',...' if len(header.columns) > 8 else ''}) is none of the input layouts: the export "
                              f"(participant_id,trial,...), ratings ({','.join(foreign.RATINGS_COLUMNS)}) or pairwise "
                              f"({','.join(foreign.PAIRWISE_COLUMNS)}); see {foreign.DOCS}"
                              + ("; its columns are separated by ';': save it comma-separated" if semicolons else ""))
    frame = _read_csv(source, dtype={"flags": str, "external_id": str, "condition_id": str})
    for column in frame.columns.difference(sorted(NUMERIC_COLUMNS)):  # the export's formula guard, undone
        cells = frame[column]
        if not pd.api.types.is_numeric_dtype(cells) and cells.astype("string").str.startswith("'").any():
            frame[column] = cells.map(restore)
    return frame, None, f"file {source}", True


def _read_csv(source: Path, **options) -> pd.DataFrame:
    try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        return pd.read_csv(source, encoding="utf-8-sig", **options)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StyleStudyError(f"cannot read {source} as CSV ({why}); give the file 'stylestudy export' wrote, or "
                              f"one of the layouts in {foreign.DOCS}") from None


def _refuse_binary(source: Path) -> None:
    """A file that is not text (an image, a spreadsheet, a database): one line, before any parser."""
    head = source.open("rb").read(8192)
    try:
        head.decode("utf-8") if len(head) < 8192 else codecs.getincrementaldecoder("utf-8")().decode(head)
        binary = b"\x00" in head
    except UnicodeDecodeError:
        binary = True
    if binary:
        raise StyleStudyError(f"{source} is not a text file (binary content in its first bytes); give a CSV, a sureal "
                              f"dataset .py or .json (see {foreign.DOCS})")


def _shown(cell) -> str:
    return "empty" if pd.isna(cell) or str(cell).strip() == "" else repr(str(cell))


def _integers(source: Path, frame: pd.DataFrame, column: str) -> pd.Series:
    """An export column of whole numbers; the first empty or other cell as a one-line error."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = ~np.isfinite(values.astype(float)) | values.ne(values.round())
    if bad.any():
        at = int(bad.to_numpy().argmax())
        raise StyleStudyError(f"{source}, row {at + 2}, column '{column}': {_shown(frame[column].iloc[at])}, not a "
                              "whole number; the export fills it on every row (the plain ratings layout needs none: "
                              f"see {foreign.DOCS})")
    return values.astype(int)


def _ratings(source: Path, frame: pd.DataFrame, points: int | None = None) -> pd.Series:
    """The rating column as numbers: empty = no answer (counted as missing); text, infinity or a
    rating below 0 is an error naming the row (0 is a pairwise 'not chosen', acr/paired start at 1,
    and end at the manifest's scale, ``points``, where there is one)."""
    values = pd.to_numeric(frame["rating"], errors="coerce")
    given = frame["rating"].notna() & frame["rating"].astype(str).str.strip().ne("")
    bad = given & (values.isna() | ~np.isfinite(values.fillna(0)) | values.lt(0))
    if "protocol" in frame.columns:
        scale = ~frame["protocol"].fillna("paired").astype(str).eq("pairwise") & ~_attention_rows(frame)
        bad |= given & scale & (values.lt(1) | (values.gt(points) if points else False))
    if bad.any():
        at = int(bad.to_numpy().argmax())
        top = f"1..{points}" if points else "from 1 up"
        raise StyleStudyError(f"{source}, row {at + 2}, column 'rating': {_shown(frame['rating'].iloc[at])} is not a "
                              f"rating (a number {top}, 0/1 for pairwise; empty for no answer)")
    return values


def _upgrade_01(frame: pd.DataFrame, source: Path) -> pd.DataFrame:
    """An export of stylestudy 0.1 (``stimulus_id`` = image): derive each row's condition id."""
    if "condition_id" in frame.columns or "stimulus_id" not in frame.columns:
        return frame
    frame = frame.rename(columns={"stimulus_id": "image_id"})
    for column in {"row", "column"} & set(frame.columns):
        frame[column] = _integers(source, frame, column)
    frame["condition_id"] = [condition_id(str(b), int(r), int(c), str(m)) for b, r, c, m in
                             zip(frame["block"], frame["row"], frame["column"], frame["method"])]
    return frame


def resolve_duplicates(rated: pd.DataFrame, policy: str, source: Path | str = "ratings",
                       lines: bool = False) -> tuple[pd.DataFrame, int]:
    """One row per (participant, comparison, condition): error (default), the first by trial, or
    the mean.  The comparison (``pair_id``) is the paper design's cell, so there it is one rating
    per condition; a reference paired with several methods is rated once per comparison.
    Returns the rows and how many duplicate rows were merged away; ``lines``: the rows' index is
    the file's line - 2, so the error names the row."""
    if policy not in DUPLICATE_POLICIES:
        raise StyleStudyError(f"--duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {policy!r}")
    key = ["participant_id", "pair_id", "condition_id"]
    dup = rated.duplicated(key, keep=False)
    if not dup.any():
        return rated, 0
    if policy == "error":
        pairs = rated.loc[dup, key].drop_duplicates().itertuples(index=False)
        shown = "; ".join(f"{p} rated {c} more than once" for p, _, c in list(pairs)[:5])
        where = f", row {rated.index[rated.duplicated(key)][0] + 2}, column 'participant_id'" if lines else ""
        raise StyleStudyError(f"{source}{where}: {int(dup.sum())} ratings repeat a participant's condition ({shown}); "
                              "check the data, or choose --duplicates first|mean")
    ordered = rated.sort_values(["participant_id", "trial", "position"], kind="stable")
    if policy == "first":
        kept = ordered.drop_duplicates(key, keep="first")
    else:
        means = ordered.groupby(key, sort=False)["rating"].mean()
        kept = ordered.drop_duplicates(key, keep="first").set_index(key)
        kept["rating"] = means
        kept = kept.reset_index()
    return kept, len(rated) - len(kept)


def _attention_rows(frame: pd.DataFrame) -> pd.Series:
    """Attention-check rows: block "attention", or (newer exports) the attention column = 1."""
    rows = frame["block"].astype(str).eq("attention")
    if "attention" in frame.columns:
        rows |= pd.to_numeric(frame["attention"], errors="coerce").fillna(0).eq(1)
    return rows


def _attention_failed(flags: set[str]) -> bool:
    """An attention-check row failed: the server said so, or (exports of servers before the one
    rule) it timed out or said "No preference"."""
    return bool(flags & {Flag.ATTENTION_FAILED, Flag.TIMEOUT, Flag.NO_PREFERENCE})


def load_ratings(source: str | Path, manifest_path: str | Path | None = None,
                 exclude_flags: tuple[str, ...] = EXCLUDED_BY_DEFAULT, duplicates: str = "error",
                 db_url: str | None = None, input_format: str = "auto",
                 method_from: str | None = None) -> RatingSet:
    source = Path(source)
    frame, manifest, described, native = _read_source(source, db_url, input_format, method_from)
    frame = _upgrade_01(frame, source)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise StyleStudyError(f"{source} lacks column(s) {', '.join(missing)}; it must be in the export format")
    if manifest_path:
        manifest_path = Path(manifest_path)
        manifest = StudyManifest.load(manifest_path.parent if manifest_path.name == "manifest.json" else manifest_path)
    if frame.empty:
        raise StyleStudyError(f"{source} holds no ratings yet (0 rows); analyse it once participants have rated")
    frame = frame.copy()
    frame["flags"] = frame["flags"].fillna("").astype(str)
    frame["rating"] = _ratings(source, frame, len(manifest.protocol.scale) if manifest is not None else None)
    frame["column"] = _integers(source, frame, "column")
    frame["row"] = _integers(source, frame, "row")
    for column in ("participant_id", "condition_id", "pair_id", "method"):
        empty = frame[column].isna() | frame[column].astype(str).str.strip().eq("")
        if empty.any():
            at = int(empty.to_numpy().argmax())
            raise StyleStudyError(f"{source}, row {at + 2}, column '{column}': empty; the export fills it on every "
                                  "row")
    frame["participant_id"] = frame["participant_id"].astype(str)
    frame["method"] = frame["method"].astype(str)
    frame["block"] = frame["block"].astype(str)
    frame["condition_id"] = frame["condition_id"].astype(str)
    frame["pair_id"] = frame["pair_id"].astype(str)
    frame["row_label"] = frame["row_label"].fillna("").astype(str) if "row_label" in frame.columns else ""
    frame["protocol"] = frame["protocol"].fillna("paired").astype(str) if "protocol" in frame.columns else "paired"
    is_attention = _attention_rows(frame)
    roles = frame["role"].fillna("rated").astype(str) if "role" in frame.columns else pd.Series("rated", frame.index)
    frame["role"] = roles.where(~is_attention, "attention")
    protocols = sorted(frame["protocol"].unique())
    unknown = ~frame["protocol"].isin(PROTOCOLS)
    if unknown.any():
        at = int(unknown.to_numpy().argmax())
        raise StyleStudyError(f"{source}, row {at + 2}, column 'protocol': {frame['protocol'].iloc[at]!r} is not a "
                              f"protocol ({', '.join(PROTOCOLS)})")
    if len(protocols) > 1:
        at = int(frame["protocol"].ne(frame["protocol"].iloc[0]).to_numpy().argmax())
        raise StyleStudyError(f"{source}, row {at + 2}, column 'protocol': {frame['protocol'].iloc[at]!r} after "
                              f"{frame['protocol'].iloc[0]!r} in row 2: the file mixes protocols ({', '.join(protocols)}); "
                              "analyse each study on its own")
    designed, merged = resolve_duplicates(frame[frame["role"].eq("rated")], duplicates, source,
                                          lines=source.is_file() and (native or described.startswith("ratings file")))
    flag_sets = frame["flags"].map(lambda f: set(filter(None, f.split(";"))))
    flagged = flag_sets.map(lambda fs: bool(fs & set(exclude_flags)))
    designed_flagged = designed["flags"].map(lambda f: bool(set(f.split(";")) & set(exclude_flags)))
    usable = designed[designed["rating"].notna() & ~designed_flagged]
    counts = {
        "rows": len(frame), "attention_rows": int(is_attention.sum()),
        "attention_failed": int(flag_sets[is_attention].map(_attention_failed).sum()),
        "repeat_rows": int(frame["role"].eq("repeat").sum()),
        "missing": int((frame["rating"].isna() & frame["role"].eq("rated")).sum()),
        "excluded_by_flags": int((flagged & frame["rating"].notna() & frame["role"].eq("rated")).sum()),
        "duplicates_merged": merged, "usable": len(usable), "participants": frame["participant_id"].nunique(),
    }
    for flag in sorted({f for fs in flag_sets for f in fs}):
        counts[f"flag_{flag}"] = int(flag_sets.map(lambda fs, f=flag: f in fs).sum())
    answered = frame["rating"].notna() & frame["role"].eq("rated")
    for flag in exclude_flags:  # answers left out, per flag (an answer with two such flags counts under each)
        counts[f"excluded_{flag}"] = int((answered & flag_sets.map(lambda fs, f=flag: f in fs)).sum())
    layout = Layout.from_manifest(manifest) if manifest else Layout()
    synthetic, simulated = _simulated(frame)
    return RatingSet(frame, usable.copy(), layout, list(exclude_flags), counts, synthetic,
                     f"{described} ({len(frame)} rows)", duplicates, manifest, protocols[0] if protocols else "paired",
                     simulated, native)


def excluded_text(counts: dict[str, int], exclude_flags: list[str] | tuple[str, ...]) -> str:
    """"N excluded by flags (too_fast 144, short_display 2; left out: ...)" for the report's first lines."""
    per_flag = ", ".join(f"{f} {counts.get(f'excluded_{f}', 0)}" for f in exclude_flags
                         if counts.get(f"excluded_{f}", 0))
    return (f"{counts['excluded_by_flags']} excluded by flags ({per_flag + '; ' if per_flag else ''}left out: "
            f"{', '.join(exclude_flags) or 'none'}; --exclude-flags '' keeps them)")


def simulated_line(ratings: RatingSet) -> list[str]:
    """The report's first line when any rating is simulated (none otherwise)."""
    return [f"Simulated ratings: {ratings.simulated}. Nothing here is evidence about people."] if ratings.simulated else []


def _simulated(frame: pd.DataFrame) -> tuple[bool, str]:
    """(all simulated, why in words): a ``simulate`` file marks its rows ``synthetic``; scripted
    participants (the demo's, ``evalserver.client``) send their own user agent, which the server
    stores.  Some scripted participants among people are named too, without calling it all simulated."""
    if "synthetic" in frame.columns and bool(pd.to_numeric(frame["synthetic"], errors="coerce").fillna(0).any()):
        return True, "generated by `stylestudy simulate` (simulated raters, not people)"
    if "user_agent" not in frame.columns or frame.empty:
        return False, ""
    agents = frame.groupby("participant_id")["user_agent"].first().fillna("").astype(str)
    scripted = int(agents.str.startswith(SIMULATED_USER_AGENT).sum())
    if not scripted:
        return False, ""
    if scripted == len(agents):
        return True, (f"all {scripted} participants are stylestudy's scripted clients (simulated raters, not people, "
                      "e.g. the demo's)")
    return False, (f"{scripted} of {len(agents)} participants are stylestudy's scripted clients (simulated raters, "
                   "not people)")
