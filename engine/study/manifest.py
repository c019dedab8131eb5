"""The run's manifest (``RUN_DIR/manifest.json``): the one schema every stage writes or reads.

The unit of design is the **condition**: one cell of a block (block, row, column) made by one
method, with an id unique in the run and the ``pair_id`` of its cell.  A condition *shows* an
**image**; several conditions may show the same image (in the paper's design block (c)
column 2 is, pixel for pixel, a block (a) cell), so every stage keys ratings, schedules and
statistics on the condition id and never on an image hash.  Generation makes each distinct image
once and records which conditions share it.

Pure Python (no torch): the server and the analysis install without the GPU stack.

Document layout (``schema`` 2)::

    {"schema": 2, "study": {...}, "complete": bool, "weights": {...} | null,
     "images": {IMAGE_ID: {"path", "sha256", "conditions": [CONDITION_ID, ...]}},
     "stimuli": [{"id": CONDITION_ID, "image_id", "path", "sha256", "shared_with": [...],
                  "block", "row", "row_label", "column", "column_label", "method", "pair_id",
                  "briefing", "params", "seconds", "final_losses", "objective", ...}]}

A manifest without ``schema`` (stylestudy 0.1, where ``id`` was the image hash) is upgraded on
load: the old ``id`` becomes ``image_id`` and the condition id is derived from its cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.schema import Protocol, current_keys

SCHEMA_VERSION = 2
MANIFEST_NAME = "manifest.json"

# field -> (type(s), meaning) of each stimulus (condition) entry; other fields are kept as they are.
CONDITION_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "id": (str, "the condition id, unique in the run"),
    "image_id": (str, "the image this condition shows"),
    "path": (str, "the image file, relative to the run directory"),
    "sha256": (str, "SHA-256 of the image file"),
    "block": (str, "block name"),
    "row": (int, "1-based figure row"),
    "row_label": (str, "the row's style image name"),
    "column": (int, "1-based figure column"),
    "column_label": (str, "what the column varies"),
    "method": (str, "the method that made the image"),
    "pair_id": (str, "the cell: conditions of one pair are rated in one trial"),
    "briefing": (bool, "shown in the briefing, not rated"),
}


def condition_id(block: str, row: int, column: int, method: str) -> str:
    """The readable id of a cell condition, e.g. ``a-r1-c4-baseline`` (never shown to participants)."""
    return f"{block}-r{row}-c{column}-{method}"


class ManifestError(StyleStudyError):
    """manifest.json is missing or does not follow the schema; the message names the field."""


@dataclass(frozen=True)
class Condition:
    """One condition of the design and the image it shows."""

    id: str
    image_id: str
    path: str
    sha256: str
    block: str
    row: int
    row_label: str
    column: int
    column_label: str
    method: str
    pair_id: str
    briefing: bool
    shared_with: tuple[str, ...] = ()  # other conditions showing the same image
    record: dict = field(default_factory=dict, compare=False, repr=False)  # the whole manifest entry

    @property
    def cell(self) -> tuple[str, int, int]:
        return self.block, self.row, self.column

    def get(self, key: str, default: Any = None) -> Any:
        """Any other field of the entry (params, seconds, final_losses, objective, ...)."""
        return self.record.get(key, default)


class StudyManifest:
    """The conditions of a run in figure order, the images they show, the study and its protocol.
    Read-only once loaded (its views are computed once)."""

    def __init__(self, run_dir: str | Path, document: dict, source: str = MANIFEST_NAME,
                 check_files: bool = False) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.source = source
        if not isinstance(document, dict):
            raise self._error("", "must be a JSON object")
        schema = document.get("schema", 1)
        if schema not in (1, SCHEMA_VERSION):
            raise self._error("schema", f"is {schema!r}; this stylestudy reads 1 and {SCHEMA_VERSION}; upgrade stylestudy")
        self.study: dict = document.get("study")  # type: ignore[assignment]
        if not isinstance(self.study, dict):
            raise self._error("study", "must be an object (the study file as generation saw it)")
        entries = document.get("stimuli")
        if not isinstance(entries, list):
            raise self._error("stimuli", "must be a list of conditions")
        self.complete = bool(document.get("complete", True))
        self.weights = document.get("weights")
        self.conditions = [self._condition(i, e, upgrade=schema == 1) for i, e in enumerate(entries)]
        self._check_unique()
        sharing: dict[str, list[str]] = {}
        for c in self.conditions:
            sharing.setdefault(c.image_id, []).append(c.id)
        self.conditions = [
            Condition(**{**c.__dict__, "shared_with": tuple(x for x in sharing[c.image_id] if x != c.id)})
            for c in self.conditions
        ]
        self.by_id = {c.id: c for c in self.conditions}
        if check_files:
            for i, c in enumerate(self.conditions):
                if not (self.run_dir / c.path).is_file():
                    raise self._error(f"stimuli[{i}].path", f"{c.path} does not exist in {self.run_dir}; "
                                                             "re-run stylestudy generate")

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: str | Path, check_files: bool = False) -> "StudyManifest":
        run_dir = Path(run_dir)
        path = run_dir / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(f"no manifest at {path}; run: stylestudy generate STUDY --out {run_dir}")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path} is not valid JSON ({exc}); re-run stylestudy generate") from None
        return cls(run_dir, document, str(path), check_files)

    def _error(self, where: str, message: str) -> ManifestError:
        return ManifestError(f"{self.source}: {where or 'document'} {message}")

    def _condition(self, index: int, entry: Any, upgrade: bool) -> Condition:
        where = f"stimuli[{index}]"
        if not isinstance(entry, dict):
            raise self._error(where, "must be an object")
        entry = dict(entry)
        if upgrade:  # 0.1: "id" was the image hash
            entry.setdefault("image_id", entry.get("id"))
            try:
                entry["id"] = condition_id(entry["block"], entry["row"], entry["column"], entry["method"])
            except KeyError as exc:
                raise self._error(f"{where}.{exc.args[0]}", "is missing") from None
        for name, (kind, meaning) in CONDITION_FIELDS.items():
            if name not in entry:
                raise self._error(f"{where}.{name}", f"is missing ({meaning})")
            value = entry[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise self._error(f"{where}.{name}", f"must be {_kind_name(kind)} ({meaning}), got {value!r}")
        if not entry["id"] or not entry["image_id"]:
            raise self._error(f"{where}.id", "must not be empty")
        path = PurePosixPath(entry["path"])
        if path.is_absolute() or ".." in path.parts:
            raise self._error(f"{where}.path", f"must be relative to the run directory, got {entry['path']!r}")
        return Condition(**{name: entry[name] for name in CONDITION_FIELDS}, record=entry)

    def _check_unique(self) -> None:
        seen: dict[str, int] = {}
        cells: dict[tuple, str] = {}
        for i, c in enumerate(self.conditions):
            if c.id in seen:
                raise self._error(f"stimuli[{i}].id", f"{c.id!r} repeats stimuli[{seen[c.id]}]; condition ids are unique")
            seen[c.id] = i
            key = (*c.cell, c.method, c.briefing)
            if key in cells:
                raise self._error(f"stimuli[{i}]", f"is the same cell and method as {cells[key]!r}")
            cells[key] = c.id
        images: dict[str, tuple[str, str]] = {}
        for i, c in enumerate(self.conditions):
            if images.setdefault(c.image_id, (c.path, c.sha256)) != (c.path, c.sha256):
                raise self._error(f"stimuli[{i}].image_id", f"{c.image_id!r} has two different files or hashes")

    # --- views ---------------------------------------------------------------------------------

    @cached_property
    def rated(self) -> list[Condition]:
        return [c for c in self.conditions if not c.briefing]

    @cached_property
    def briefing(self) -> list[Condition]:
        order = lambda c: (c.block, c.row, c.column, c.method)  # noqa: E731
        return sorted((c for c in self.conditions if c.briefing), key=order)

    @cached_property
    def cells(self) -> dict[str, tuple[Condition, ...]]:
        """pair_id -> the rated conditions of that cell (one per method that filled it), by method."""
        cells: dict[str, list[Condition]] = {}
        for c in self.rated:
            cells.setdefault(c.pair_id, []).append(c)
        return {pid: tuple(sorted(members, key=lambda c: c.method)) for pid, members in cells.items()}

    @cached_property
    def pairs(self) -> dict[str, tuple[Condition, ...]]:
        """pair_id -> the rated conditions of that cell, by method; only cells with two methods."""
        return {pid: members for pid, members in self.cells.items() if len(members) == 2}

    @cached_property
    def methods(self) -> list[str]:
        """The rated methods, sorted by name."""
        return sorted({c.method for c in self.rated})

    @property
    def imported(self) -> bool:
        """Made by ``stylestudy import`` (any methods, items as cells) rather than ``generate``."""
        return "import" in self.study

    @cached_property
    def images(self) -> dict[str, list[Condition]]:
        """image_id -> the conditions that show it (more than one: a shared image)."""
        out: dict[str, list[Condition]] = {}
        for c in self.conditions:
            out.setdefault(c.image_id, []).append(c)
        return out

    @cached_property
    def protocol(self) -> Protocol:
        # validated when the study file was loaded; a run made before display settings existed
        # keeps the display it was made for (one on-screen height: "fit")
        return Protocol(**{"display": "fit", **current_keys("protocol", self.study.get("protocol", {}))})

    @property
    def title(self) -> str:
        """The researcher-facing title (admin pages, reports); participants see ``protocol.title``."""
        return self.study.get("title") or self.study.get("name", "study")

    @cached_property
    def thresholds(self) -> dict[str, float]:
        blocks = self.study.get("blocks", {})
        return {b: spec["threshold"] for b, spec in blocks.items() if spec.get("threshold") is not None}

    def image_file(self, condition: Condition | str) -> Path:
        c = self.by_id[condition] if isinstance(condition, str) else condition
        return self.run_dir / c.path

    # --- writing -------------------------------------------------------------------------------

    def document(self) -> dict:
        return manifest_document(self.study, [c.record for c in self.conditions], self.weights, self.complete)


def manifest_document(study: dict, entries: list[dict], weights: dict | None, complete: bool) -> dict:
    """The JSON document for ``entries`` (condition records), with ``shared_with`` and ``images``."""
    images: dict[str, dict] = {}
    for e in entries:
        images.setdefault(e["image_id"], {"path": e["path"], "sha256": e["sha256"], "conditions": []})
        images[e["image_id"]]["conditions"].append(e["id"])
    stimuli = [dict(e, shared_with=[x for x in images[e["image_id"]]["conditions"] if x != e["id"]])
               for e in entries]
    return {"schema": SCHEMA_VERSION, "study": study, "complete": complete, "weights": weights, "images": images,
            "stimuli": stimuli}


def write_manifest(run_dir: str | Path, study: dict, entries: list[dict], weights: dict | None,
                   complete: bool) -> Path:
    """Validate, then write ``RUN_DIR/manifest.json`` atomically."""
    document = manifest_document(study, entries, weights, complete)
    path = Path(run_dir) / MANIFEST_NAME
    StudyManifest(run_dir, document, str(path))  # never write what no stage could read
    atomic_write_bytes(path, json.dumps(document, indent=1, ensure_ascii=False).encode(), mode=0o644)
    return path


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "an integer", bool: "true or false", float: "a number"}[k] for k in kinds)
