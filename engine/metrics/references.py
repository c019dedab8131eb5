"""Which content and style image each condition of a run is measured against.

Generated runs know their inputs (the study's object image and the row's style image); imported
runs have them only when the import gave ``_content/`` and ``_style/`` references (the manifest's
``content_image`` / ``style_image``).  The metrics of a kind of reference the run lacks are left
out with a one-line note naming what they need; a run with neither kind, or a reference file
that has gone missing, is an error that says how to provide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stylestudy.engine.produce.claims import input_path
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import file_sha256
from stylestudy.engine.study.manifest import Condition, StudyManifest


@dataclass(frozen=True)
class Measured:
    """One condition and the files it is measured with (``None``: the run has no such reference)."""

    condition: Condition
    item: str
    stimulus: Path
    content: Path | None
    style: Path | None


def item_of(c: Condition) -> str:
    """The item a condition belongs to: an imported run's item, a generated run's style row."""
    return str(c.get("item") or c.row_label)


def measured_conditions(manifest: StudyManifest) -> list[Measured]:
    """Every condition of the run (briefing included) with its stimulus and references."""
    out = []
    for c in manifest.conditions:
        if manifest.imported:
            content = manifest.run_dir / c.get("content_image") if c.get("content_image") else None
            style = manifest.run_dir / c.get("style_image") if c.get("style_image") else None
        else:
            content = input_path(manifest, manifest.study["object_image"])
            style = input_path(manifest, c.row_label)
        out.append(Measured(c, item_of(c), manifest.image_file(c), content, style))
    return out


def available(measured: list[Measured]) -> tuple[list[str], list[str]]:
    """(reference kinds every condition has, one-line notes on the kinds it lacks); an error when
    it has neither, naming what the metrics need."""
    kinds, notes = [], []
    for kind, metrics in (("content", "SSIM, MS-SSIM and the VGG content distance"),
                          ("style", "the Gram distances and the colour distance")):
        if all(getattr(m, kind) is not None for m in measured):
            kinds.append(kind)
            absent = next((getattr(m, kind) for m in measured if not getattr(m, kind).is_file()), None)
            if absent is not None:
                raise StyleStudyError(f"the {kind} image {absent} is missing; restore it (generated runs: "
                                      "stylestudy fetch-images STUDY) and run metrics again")
        else:
            notes.append(f"{metrics} need each item's {kind} image; this run has none (import with a folder "
                         f"DIR/_{kind}/<item>.png or a CSV column {kind}_image to get them)")
    if not kinds:
        raise StyleStudyError("every metric compares a stimulus with its item's content or style image, and this "
                              "run has neither; re-import with folders DIR/_content/<item>.png and/or "
                              "DIR/_style/<item>.png (or CSV columns content_image, style_image)")
    return kinds, notes


def hashes(measured: list[Measured]) -> dict[Path, str]:
    """SHA-256 of every file the metrics read (each once)."""
    files = {m.stimulus for m in measured} | {p for m in measured for p in (m.content, m.style) if p is not None}
    return {p: file_sha256(p) for p in files if p.is_file()}
