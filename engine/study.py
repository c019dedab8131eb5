"""Study files (TOML): the single source of truth for generation, the server and the analysis.

This module is pure Python (no torch), so the server and the analysis can read a study too.
``load_study`` validates every key; errors name the file, the line and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from engine.errors import StyleStudyError
from engine.layer_names import LAYER_NAMES, PAPER_STYLE_LAYERS as _PAPER_STYLE

PAPER_STYLE_LAYERS = list(_PAPER_STYLE)
PAPER_SCALE = [
    "Style not transferred",
    "Transferred excessively or very weakly",
    "Somewhat weak or slightly exaggerated",
    "Transferred well",
    "Transferred very well",
]
METHODS = ("baseline", "normalized")
PROTOCOLS = ("paired", "acr", "pairwise")
PAIRWISE_LAYOUTS = ("side_by_side", "sequential")
PAIRWISE_QUESTION = "Which image transfers the style better?"
PARTICIPANT_TITLE = "Image rating study"  # neutral: names no method, condition or hypothesis
SWEEPS = ("lambda_os", "layer_boost", "size")
MIN_SIZE = 16  # px: VGG-19 pools 4 times before relu5_x


class StudyError(StyleStudyError):
    """A study file is invalid; the message names file, line and key."""


@dataclass
class ImageSource:
    """An input image: a file relative to the study folder, or ``skimage:NAME``; optional URL+SHA-256."""

    name: str
    path: str
    url: str | None = None
    sha256: str | None = None


@dataclass
class Block:
    """One block of the figure/table: a sweep over columns for each row (style)."""

    name: str
    sweep: str  # lambda_os | layer_boost | size
    title: str = ""
    baseline: list[float] = field(default_factory=list)  # lambda_os sweep values
    normalized: list[float] = field(default_factory=list)
    boost: float = 100.0  # layer_boost: factor of the boosted layer over the others
    layers: list[str] = field(default_factory=list)  # layer_boost: boosted layer per column
    sizes: list[int] = field(default_factory=list)  # size sweep: object longer side per column
    threshold: float | None = None  # analysis shades cells with mean >= threshold
    rows: list[str] = field(default_factory=list)  # rated styles in this block (default: all rated rows)

    @property
    def columns(self) -> int:
        return {"lambda_os": len(self.baseline), "layer_boost": len(self.layers), "size": len(self.sizes)}[self.sweep]


@dataclass
class EngineSettings:
    size: int = 512
    iterations: int = 600
    weights: str = "caffe"
    content_layers: list[str] = field(default_factory=lambda: ["relu4_2"])
    style_layers: list[str] = field(default_factory=lambda: list(PAPER_STYLE_LAYERS))
    content_weight: float = 1.0
    style_weight: float = 0.2
    optimizer: str = "lbfgs"
    init: str = "content"
    seed: int = 0
    pooling: str = "max"


@dataclass
class Protocol:
    """What the rating server does (defaults: the paper's protocol).

    ``kind`` chooses the protocol: ``paired`` (the paper's: two conditions of a cell shown one
    after the other, both rated on the scale; with more than two methods, ``reference`` against
    each other method), ``acr`` (absolute category rating, ITU-T P.910: one image, then its
    rating), ``pairwise`` (two methods' images of one item, then "which is better?").
    ``title`` is what participants see (page titles); the study's own title is for researchers.
    """

    title: str = PARTICIPANT_TITLE
    kind: str = "paired"
    image_seconds: float = 5.0
    rating_seconds: float = 5.0
    scale: list[str] = field(default_factory=lambda: list(PAPER_SCALE))
    participants: int = 10
    completion_code: str = ""
    redirect_url: str = ""
    attention_checks: int = 0
    consent_text: str = ""
    reference: str = ""  # paired: the method every other one is paired with (default: the first method)
    repeats: int = 0  # acr: conditions shown a second time, hidden, for intra-rater consistency
    gold_method: str = ""  # acr: a method whose images have a known answer (gold items) ...
    gold_ratings: list[int] = field(default_factory=list)  # ... the ratings that count as right for them
    layout: str = "side_by_side"  # pairwise: side_by_side | sequential
    no_preference: bool = False  # pairwise: offer "No preference" besides "Image 1" / "Image 2"
    question: str = PAIRWISE_QUESTION  # pairwise: what participants answer
    pairs_per_participant: int = 0  # pairwise: trials per participant, spread evenly over method pairs; 0 = all

    @property
    def image_ms(self) -> int:
        return int(round(self.image_seconds * 1000))

    @property
    def rating_ms(self) -> int:
        return int(round(self.rating_seconds * 1000))


@dataclass
class Study:
    name: str
    title: str
    folder: Path
    object_image: str  # name of an entry of ``images``
    images: dict[str, ImageSource]
    rows: list[str]  # rated styles, in figure order
    briefing_styles: list[str]
    briefing_blocks: list[str]
    briefing_methods: list[str]
    baseline_lambda_os: dict[str, float]  # per style: the "appropriate" baseline value (blocks b, c)
    normalized_lambda_os: float
    blocks: dict[str, Block]
    engine: EngineSettings
    protocol: Protocol
    source_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        d.pop("source_text")
        return d


class _Reader:
    """Typed access to a TOML table that remembers which keys were read, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.lines = path, text, text.splitlines()

    def _section(self, header: str) -> list[tuple[int, str]] | None:
        """(line number, text) of the lines under ``[header]`` ("" = before the first header)."""
        pattern = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*$")
        current, found, out = "", header == "", []
        start = 0
        for number, line in enumerate(self.lines, start=1):
            m = pattern.match(line)
            if m:
                if found and current == header:
                    break
                current = m.group(1).replace('"', "").replace(" ", "")
                found = found or current == header
                start = number if current == header else start
                continue
            if current == header:
                out.append((number, line))
        return ([(start, "")] + out) if found else None

    def line_of(self, table: str, key: str | None = None) -> int:
        """Best-effort line number of ``table.key`` (tomllib keeps no positions)."""
        parts = [p for p in table.split(".") if p]
        for cut in range(len(parts), -1, -1):
            section = self._section(".".join(parts[:cut]))
            if section is None:
                continue
            rest = parts[cut:] + ([key] if key else [])
            if not rest:
                return section[0][0]
            for i, (number, line) in enumerate(section):
                if re.match(rf'^\s*"?{re.escape(rest[0])}"?\s*=', line):
                    if len(rest) == 1:
                        return number
                    for number2, line2 in section[i:]:
                        if re.search(rf"\b{re.escape(rest[-1])}\b", line2):
                            return number2
                    return number
            return section[0][0]
        return 0

    def fail(self, table: str, key: str | None, message: str) -> StudyError:
        line = self.line_of(table, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        name = f"{table}.{key}" if key else f"[{table}]"
        return StudyError(f"{where}: {name}: {message}")

    def table(self, data: dict, table: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(data, dict):
            raise self.fail(table, None, "must be a table")
        for key in data:
            if key not in allowed:
                raise self.fail(table, key, f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for key in required:
            if key not in data:
                raise self.fail(table, None, f"missing required key '{key}'")
        return data

    def number(self, data: dict, table: str, key: str, default=None, positive: bool = False, integer: bool = False):
        value = data.get(key, default)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(table, key, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        if positive and value <= 0:
            raise self.fail(table, key, f"must be > 0, got {value!r}")
        return value

    def numbers(self, data: dict, table: str, key: str, positive: bool = True, integer: bool = False) -> list:
        values = data.get(key, [])
        if not isinstance(values, list):
            raise self.fail(table, key, "must be a list")
        for v in values:
            self.number({key: v}, table, key, positive=positive, integer=integer)
        return values

    def string(self, data: dict, table: str, key: str, default: str | None = None, choices=None) -> str | None:
        value = data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(table, key, f"must be a string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(table, key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, data: dict, table: str, key: str, default=None) -> list[str]:
        values = data.get(key, default if default is not None else [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.fail(table, key, "must be a list of strings")
        return values


def _read_toml(path: str | Path, hint: str) -> tuple[dict, _Reader]:
    """A study file (or the study.toml in a folder), parsed, with a reader for its errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.toml"
    if not path.is_file():
        raise StudyError(f"study file not found: {path}; {hint}")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: invalid TOML: {exc}") from None
    return data, _Reader(path, text)


def load_study(path: str | Path) -> Study:
    """Parse and validate ``path`` (a study.toml or the folder holding one)."""
    data, r = _read_toml(path, "give a study folder or its study.toml")
    path, text = r.path, r.text
    r.table(data, "", {"study", "images", "styles", "engine", "methods", "blocks", "protocol", "briefing"},
            {"study", "images", "styles", "blocks"})

    meta = r.table(data["study"], "study", {"name", "title", "description"}, {"name"})
    images_t = r.table(data["images"], "images", {"object", "files"}, {"object", "files"})
    images: dict[str, ImageSource] = {}
    for name, spec in r.table(images_t["files"], "images.files", set(images_t["files"])).items():
        t = f"images.files.{name}"
        spec = r.table(spec, t, {"path", "url", "sha256"}, {"path"})
        sha = r.string(spec, t, "sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise r.fail(t, "sha256", "must be 64 lowercase hex digits")
        images[name] = ImageSource(name, r.string(spec, t, "path"), r.string(spec, t, "url"), sha)
    object_image = r.string(images_t, "images", "object")
    if object_image not in images:
        raise r.fail("images", "object", f"names no entry of [images.files] ({', '.join(images)})")

    styles = r.table(data["styles"], "styles", {"rows"}, {"rows"})
    rows = r.strings(styles, "styles", "rows")
    for name in rows:
        if name not in images:
            raise r.fail("styles", "rows", f"{name!r} names no entry of [images.files]")
    if not rows:
        raise r.fail("styles", "rows", "needs at least one rated style")

    briefing = r.table(data.get("briefing", {}), "briefing", {"styles", "blocks", "methods"})
    briefing_styles = r.strings(briefing, "briefing", "styles")
    for name in briefing_styles:
        if name not in images:
            raise r.fail("briefing", "styles", f"{name!r} names no entry of [images.files]")
        if name in rows:
            raise r.fail("briefing", "styles", f"{name!r} is also a rated row; briefing stimuli are not rated")
    briefing_methods = r.strings(briefing, "briefing", "methods", ["baseline"])
    for m in briefing_methods:
        if m not in METHODS:
            raise r.fail("briefing", "methods", f"unknown method {m!r}; use {', '.join(METHODS)}")

    eng_t = r.table(data.get("engine", {}), "engine", set(EngineSettings.__dataclass_fields__))
    engine = EngineSettings(
        size=r.number(eng_t, "engine", "size", 512, positive=True, integer=True),
        iterations=r.number(eng_t, "engine", "iterations", 600, positive=True, integer=True),
        weights=r.string(eng_t, "engine", "weights", "caffe"),
        content_layers=r.strings(eng_t, "engine", "content_layers", ["relu4_2"]),
        style_layers=r.strings(eng_t, "engine", "style_layers", list(PAPER_STYLE_LAYERS)),
        content_weight=r.number(eng_t, "engine", "content_weight", 1.0, positive=True),
        style_weight=r.number(eng_t, "engine", "style_weight", 0.2, positive=True),
        optimizer=r.string(eng_t, "engine", "optimizer", "lbfgs", ("lbfgs", "adam")),
        init=r.string(eng_t, "engine", "init", "content", ("content", "style", "noise")),
        seed=r.number(eng_t, "engine", "seed", 0, integer=True),
        pooling=r.string(eng_t, "engine", "pooling", "max", ("max", "avg")),
    )
    _check_layers(r, engine)
    if engine.size < MIN_SIZE:
        raise r.fail("engine", "size", f"must be ≥ {MIN_SIZE} (VGG-19 pools 4 times before relu5_x), got {engine.size}")

    methods = r.table(data.get("methods", {}), "methods", set(METHODS))
    base_t = r.table(methods.get("baseline", {}), "methods.baseline", {"lambda_os"})
    norm_t = r.table(methods.get("normalized", {}), "methods.normalized", {"lambda_os"})
    base_l = base_t.get("lambda_os", {})
    if isinstance(base_l, (int, float)):
        base_l = {name: base_l for name in rows + briefing_styles}
    base_l = r.table(base_l, "methods.baseline.lambda_os", set(images))
    baseline_lambda_os = {k: r.number(base_l, "methods.baseline.lambda_os", k, positive=True) for k in base_l}
    normalized_lambda_os = r.number(norm_t, "methods.normalized", "lambda_os", 1e-3, positive=True)

    blocks: dict[str, Block] = {}
    for name, spec in r.table(data["blocks"], "blocks", set(data["blocks"])).items():
        t = f"blocks.{name}"
        spec = r.table(spec, t, {"sweep", "title", "baseline", "normalized", "boost", "layers", "sizes",
                                 "threshold", "rows"}, {"sweep"})
        block = Block(
            name=name, sweep=r.string(spec, t, "sweep", choices=SWEEPS), title=r.string(spec, t, "title", ""),
            baseline=r.numbers(spec, t, "baseline"), normalized=r.numbers(spec, t, "normalized"),
            boost=r.number(spec, t, "boost", 100.0, positive=True),
            layers=r.strings(spec, t, "layers", list(engine.style_layers)),
            sizes=r.numbers(spec, t, "sizes", integer=True), threshold=r.number(spec, t, "threshold"),
            rows=r.strings(spec, t, "rows", list(rows)),
        )
        _check_block(r, block, engine, rows, briefing_styles, baseline_lambda_os)
        blocks[name] = block
    briefing_blocks = r.strings(briefing, "briefing", "blocks", [n for n, b in blocks.items() if b.sweep != "size"])
    for b in briefing_blocks:
        if b not in blocks:
            raise r.fail("briefing", "blocks", f"unknown block {b!r}; blocks are {', '.join(blocks)}")

    protocol = _protocol(r, data.get("protocol", {}), METHODS)

    return Study(
        name=r.string(meta, "study", "name"), title=r.string(meta, "study", "title", "") or "",
        folder=path.parent.resolve(), object_image=object_image, images=images, rows=rows,
        briefing_styles=briefing_styles, briefing_blocks=briefing_blocks if briefing_styles else [],
        briefing_methods=briefing_methods, baseline_lambda_os=baseline_lambda_os,
        normalized_lambda_os=normalized_lambda_os, blocks=blocks, engine=engine, protocol=protocol, source_text=text,
    )


def _protocol(r: _Reader, table: dict, methods: tuple[str, ...] | list[str]) -> Protocol:
    """The ``[protocol]`` table, validated; ``methods``: names participants must never read."""
    prot_t = r.table(table, "protocol", set(Protocol.__dataclass_fields__))
    protocol = Protocol(
        title=r.string(prot_t, "protocol", "title", PARTICIPANT_TITLE) or PARTICIPANT_TITLE,
        kind=r.string(prot_t, "protocol", "kind", "paired", PROTOCOLS),
        image_seconds=r.number(prot_t, "protocol", "image_seconds", 5.0, positive=True),
        rating_seconds=r.number(prot_t, "protocol", "rating_seconds", 5.0, positive=True),
        scale=r.strings(prot_t, "protocol", "scale", list(PAPER_SCALE)),
        participants=r.number(prot_t, "protocol", "participants", 10, positive=True, integer=True),
        completion_code=r.string(prot_t, "protocol", "completion_code", ""),
        redirect_url=r.string(prot_t, "protocol", "redirect_url", ""),
        attention_checks=r.number(prot_t, "protocol", "attention_checks", 0, integer=True),
        consent_text=r.string(prot_t, "protocol", "consent_text", ""),
        reference=r.string(prot_t, "protocol", "reference", ""),
        repeats=r.number(prot_t, "protocol", "repeats", 0, integer=True),
        gold_method=r.string(prot_t, "protocol", "gold_method", ""),
        gold_ratings=r.numbers(prot_t, "protocol", "gold_ratings", positive=False, integer=True),
        layout=r.string(prot_t, "protocol", "layout", "side_by_side", PAIRWISE_LAYOUTS),
        no_preference=prot_t.get("no_preference", False),
        question=r.string(prot_t, "protocol", "question", PAIRWISE_QUESTION) or PAIRWISE_QUESTION,
        pairs_per_participant=r.number(prot_t, "protocol", "pairs_per_participant", 0, integer=True),
    )
    if not isinstance(protocol.no_preference, bool):
        raise r.fail("protocol", "no_preference", f"must be true or false, got {protocol.no_preference!r}")
    for key in ("attention_checks", "repeats", "pairs_per_participant"):
        if getattr(protocol, key) < 0:
            raise r.fail("protocol", key, f"must be ≥ 0, got {getattr(protocol, key)}")
    if len(protocol.scale) < 2:
        raise r.fail("protocol", "scale", "needs at least two labels (one per rating point)")
    bad = [g for g in protocol.gold_ratings if not 1 <= g <= len(protocol.scale)]
    if bad:
        raise r.fail("protocol", "gold_ratings", f"must be ratings 1..{len(protocol.scale)}, got {bad[0]}")
    if bool(protocol.gold_method) != bool(protocol.gold_ratings):
        raise r.fail("protocol", "gold_ratings", "gold_method and gold_ratings go together (the gold items' method "
                                                 "and the ratings that count as right for them)")
    for key in ("title", "consent_text", "question"):  # participant-facing text must not unblind the study
        named = [m for m in methods if re.search(rf"\b{re.escape(m.lower())}\b", getattr(protocol, key).lower())]
        if named:
            raise r.fail("protocol", key, f"is shown to participants and names the method {named[0]!r}; "
                                          "use neutral words")
    return protocol


def _check_layers(r: _Reader, engine: EngineSettings) -> None:
    for key in ("content_layers", "style_layers"):
        for layer in getattr(engine, key):
            if layer not in LAYER_NAMES:
                raise r.fail("engine", key, f"unknown VGG-19 layer {layer!r}; valid: {', '.join(LAYER_NAMES)}")


def _check_block(r: _Reader, block: Block, engine: EngineSettings, rows: list[str], briefing: list[str],
                 baseline_lambda_os: dict[str, float]) -> None:
    t = f"blocks.{block.name}"
    for row in block.rows:
        if row not in rows:
            raise r.fail(t, "rows", f"{row!r} is not a rated row of [styles]")
    if block.sweep == "lambda_os":
        if not block.baseline or len(block.baseline) != len(block.normalized):
            raise r.fail(t, "baseline", "a lambda_os sweep needs 'baseline' and 'normalized' lists of equal length")
    elif block.sweep == "layer_boost":
        for layer in block.layers:
            if layer not in engine.style_layers:
                raise r.fail(t, "layers", f"{layer!r} is not one of [engine] style_layers")
    elif not block.sizes:
        raise r.fail(t, "sizes", "a size sweep needs a non-empty 'sizes' list")
    elif min(block.sizes) < MIN_SIZE:
        raise r.fail(t, "sizes", f"every size must be ≥ {MIN_SIZE} (VGG-19 pools 4 times before relu5_x)")
    if block.sweep != "lambda_os":
        for style in set(block.rows) | set(briefing):
            if style not in baseline_lambda_os:
                raise r.fail("methods.baseline", "lambda_os",
                             f"block {block.name} needs a baseline lambda_os for style {style!r}")


@dataclass
class ImportSettings:
    """What a study file says about an imported study: its names and its ``[protocol]``."""

    name: str
    title: str
    description: str
    protocol: Protocol


def load_import_settings(path: str | Path | None, methods: list[str], default_name: str) -> ImportSettings:
    """``[study]`` and ``[protocol]`` of a study file for ``stylestudy import`` (both optional;
    no file: the defaults).  ``methods``: the imported methods, which participant-facing text
    must not name."""
    if path is None:
        return ImportSettings(default_name, "", "", _protocol(_Reader(Path("-"), ""), {}, methods))
    data, r = _read_toml(path, "give a study.toml with [study] and [protocol]")
    r.table(data, "", {"study", "protocol"})
    meta = r.table(data.get("study", {}), "study", {"name", "title", "description"})
    return ImportSettings(r.string(meta, "study", "name", default_name) or default_name,
                          r.string(meta, "study", "title", "") or "", r.string(meta, "study", "description", "") or "",
                          _protocol(r, data.get("protocol", {}), methods))
