"""Study files (TOML): the single source of truth for generation, the server and the analysis.

This module is pure Python (no torch), so the server and the analysis can read a study too.
``load_study`` validates every key; errors name the file, the line and the key.  The sections'
dataclasses are in ``schema``; the line-aware TOML reader is ``toml_reader``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import TypeVar

from stylestudy.engine.study.bundled import bundled_names, resolve_study, user_images_dir
from stylestudy.engine.study.errors import StudyError
from stylestudy.engine.study.layer_names import LAYER_NAMES
from stylestudy.engine.study.schema import (
    METHODS,
    MIN_SIZE,
    REFERENCE_KINDS,
    RENAMED_KEYS,
    BaselineMethod,
    Block,
    Briefing,
    EngineSettings,
    ImageSource,
    ImagesSection,
    NormalizedMethod,
    Protocol,
    Study,
    StudyInfo,
    StylesSection,
    current_keys,
    declared_keys,
    required_keys,
)
from stylestudy.engine.study.toml_reader import TomlReader, read_toml


def load_study(path: str | Path) -> Study:
    """Parse and validate ``path`` (a study.toml, the folder holding one, or a bundled study's name)."""
    path, bundled = resolve_study(path)
    data, r = read_toml(path, "give a study folder, its study.toml, or a bundled study: " + ", ".join(bundled_names()))
    path, text = r.path, r.text
    r.table(data, "", {"study", "images", "styles", "engine", "methods", "blocks", "protocol", "briefing"},
            {"study", "images", "styles", "blocks"})

    meta = read_declared(r, data["study"], "study", StudyInfo)
    images_t = read_declared(r, data["images"], "images", ImagesSection)
    images: dict[str, ImageSource] = {}
    for name, spec in r.table(images_t.files, "images.files", set(images_t.files)).items():
        t = f"images.files.{name}"
        image = read_declared(r, spec, t, ImageSource, name=name)
        if image.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", image.sha256):
            raise r.fail(t, "sha256", "must be 64 lowercase hex digits")
        images[name] = image
    object_image = images_t.object
    if object_image not in images:
        raise r.fail("images", "object", f"names no entry of [images.files] ({', '.join(images)})")

    rows = read_declared(r, data["styles"], "styles", StylesSection).rows
    for name in rows:
        if name not in images:
            raise r.fail("styles", "rows", f"{name!r} names no entry of [images.files]")
    if not rows:
        raise r.fail("styles", "rows", "needs at least one rated style")

    briefing_t = data.get("briefing", {})
    briefing = read_declared(r, briefing_t, "briefing", Briefing)
    briefing_styles = briefing.styles
    for name in briefing_styles:
        if name not in images:
            raise r.fail("briefing", "styles", f"{name!r} names no entry of [images.files]")
        if name in rows:
            raise r.fail("briefing", "styles", f"{name!r} is also a rated row; briefing stimuli are not rated")
    briefing_methods = briefing.methods

    engine = read_declared(r, data.get("engine", {}), "engine", EngineSettings)
    _check_layers(r, engine)
    if engine.size < MIN_SIZE:
        raise r.fail("engine", "size", f"must be ≥ {MIN_SIZE} (VGG-19 pools 4 times before relu5_x), got {engine.size}")

    methods = r.table(data.get("methods", {}), "methods", set(METHODS))
    base_t = r.table(methods.get("baseline", {}), "methods.baseline", {f.name for f in declared_keys(BaselineMethod)})
    base_l = base_t.get("lambda_os", BaselineMethod().lambda_os)
    if isinstance(base_l, (int, float)):
        base_l = {name: base_l for name in rows + briefing_styles}
    base_l = r.table(base_l, "methods.baseline.lambda_os", set(images))
    baseline_lambda_os = {k: r.number(base_l, "methods.baseline.lambda_os", k, positive=True) for k in base_l}
    normalized_lambda_os = read_declared(r, methods.get("normalized", {}), "methods.normalized",
                                         NormalizedMethod).lambda_os

    blocks: dict[str, Block] = {}
    for name, spec in r.table(data["blocks"], "blocks", set(data["blocks"])).items():
        t = f"blocks.{name}"
        block = read_declared(r, spec, t, Block, name=name)
        for key_name, unset in (("layers", engine.style_layers), ("rows", rows)):  # defaults that depend on others
            if key_name not in spec:
                setattr(block, key_name, list(unset))
        _check_block(r, block, engine, rows, briefing_styles, baseline_lambda_os)
        blocks[name] = block
    briefing_blocks = briefing.blocks if "blocks" in briefing_t else [n for n, b in blocks.items() if b.sweep != "size"]
    for b in briefing_blocks:
        if b not in blocks:
            raise r.fail("briefing", "blocks", f"unknown block {b!r}; blocks are {', '.join(blocks)}")

    protocol = _protocol(r, data.get("protocol", {}), METHODS)

    return Study(
        name=meta.name, title=meta.title,
        folder=path.parent.resolve(), object_image=object_image, images=images, rows=rows,
        briefing_styles=briefing_styles, briefing_blocks=briefing_blocks if briefing_styles else [],
        briefing_methods=briefing_methods, baseline_lambda_os=baseline_lambda_os,
        normalized_lambda_os=normalized_lambda_os, blocks=blocks, engine=engine, protocol=protocol, source_text=text,
        image_folder=user_images_dir(meta.name) if bundled else None,
    )


def _protocol(r: TomlReader, table: dict, methods: tuple[str, ...] | list[str], importing: bool = False) -> Protocol:
    """The ``[protocol]`` table, validated; ``methods``: names participants must never read."""
    protocol = read_declared(r, table, "protocol", Protocol)
    _check_sampling(r, protocol, kind_given="kind" in table or not importing)
    for ref in protocol.references:
        if ref not in REFERENCE_KINDS:
            raise r.fail("protocol", "references", f"unknown reference {ref!r}; use {', '.join(REFERENCE_KINDS)}")
    for key in ("redirect_url", "screen_out_url"):  # followed by the participant's browser: a web address only
        url = getattr(protocol, key)
        if url and not re.fullmatch(r"https?://[^\s\"'<>]+", url):
            raise r.fail("protocol", key, f"must be an http:// or https:// address, got {url!r}")
    if protocol.min_viewport and len(protocol.min_viewport) != 2:
        raise r.fail("protocol", "min_viewport", f"must be [width, height] in CSS pixels, got {protocol.min_viewport}")
    if protocol.practice < 0:
        raise r.fail("protocol", "practice", f"must be ≥ 0, got {protocol.practice}")
    for key in ("attention_checks", "repeats", "pairs_per_participant"):
        if getattr(protocol, key) < 0:
            raise r.fail("protocol", key, f"must be ≥ 0, got {getattr(protocol, key)}")
    if not 0 <= protocol.attention_screen_out <= protocol.attention_checks:
        raise r.fail("protocol", "attention_screen_out", f"must be between 0 (never) and attention_checks "
                     f"({protocol.attention_checks}), got {protocol.attention_screen_out}")
    if len(protocol.scale) < 2:
        raise r.fail("protocol", "scale", "needs at least two labels (one per rating point)")
    bad = [g for g in protocol.gold_ratings if not 1 <= g <= len(protocol.scale)]
    if bad:
        raise r.fail("protocol", "gold_ratings", f"must be ratings 1..{len(protocol.scale)}, got {bad[0]}")
    if bool(protocol.gold_method) != bool(protocol.gold_ratings):
        raise r.fail("protocol", "gold_ratings", "gold_method and gold_ratings go together (the gold items' method "
                                                 "and the ratings that count as right for them)")
    shown = [(key, getattr(protocol, key)) for key in ("title", "consent_text", "question", "completion_code",
                                                       "screen_out_code", "incomplete_code")]
    for key, text in shown + [("scale", label) for label in protocol.scale]:  # participant-facing: no unblinding
        named = [m for m in methods if re.search(rf"\b{re.escape(m.lower())}\b", text.lower())]
        if named:
            raise r.fail("protocol", key, f"is shown to participants and names the method {named[0]!r}; "
                                          "use neutral words")
    return protocol


T = TypeVar("T")


def read_declared(r: TomlReader, data: dict, table: str, cls: type[T], **fixed) -> T:
    """A table whose keys are declared on ``cls`` (``schema.key``): every key read with its declared
    default, type and allowed values; an unknown key is an error that suggests the nearest one, a
    missing required key one that names it.  ``fixed``: fields that are not keys (a block's name)."""
    for old, new in RENAMED_KEYS.get(table, {}).items():
        if isinstance(data, dict) and old in data:
            if new in data:
                raise r.fail(table, old, f"is the old name of '{new}', which is also set; remove '{old}'")
            warnings.warn(f"{r.where(table, old)}: {table}.{old} is now {table}.{new}; the old name still works "
                          "for now, rename it", FutureWarning, stacklevel=2)
    declared = declared_keys(cls)
    data = r.table(current_keys(table, data), table, {f.name for f in declared}, required_keys(cls))
    values = {}
    for f in declared:
        meta = f.metadata
        default = f.default_factory() if f.default is MISSING else f.default
        if f.type in ("bool", "bool | None"):  # bool | None: unset means "decided by other keys"
            value = data.get(f.name, default)
            if not (isinstance(value, bool) or (value is None and f.type == "bool | None")):
                raise r.fail(table, f.name, f"must be true or false, got {value!r}")
        elif f.type in ("int", "float", "float | None"):
            value = r.number(data, table, f.name, default, positive=meta["positive"], integer=f.type == "int")
        elif f.type in ("str", "str | None"):
            value = r.string(data, table, f.name, default, meta["choices"])
            value = (value or default) if meta["empty_means_default"] else value
        elif f.type in ("list[int]", "list[float]"):
            value = r.numbers(data, table, f.name, positive=meta["positive"], integer=f.type == "list[int]")
        elif f.type == "list[str]":
            value = r.strings(data, table, f.name, default)
            unknown = [v for v in value if meta["choices"] and v not in meta["choices"]]
            if unknown:
                raise r.fail(table, f.name, f"unknown value {unknown[0]!r}; use {', '.join(meta['choices'])}")
        elif f.type == "dict":
            value = data.get(f.name, default)
            value = r.table(value, f"{table}.{f.name}", set(value) if isinstance(value, dict) else set())
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no reader for {f.type}")
        values[f.name] = value
    return cls(**fixed, **values)


def _check_sampling(r: TomlReader, protocol: Protocol, kind_given: bool = True) -> None:
    """``sampling = "adaptive"`` needs pairwise trials (``stylestudy import --protocol`` may set
    the kind later: ``kind_given``); ``stop_when`` needs adaptive sampling."""
    if protocol.sampling == "adaptive" and protocol.kind != "pairwise" and kind_given:
        raise r.fail("protocol", "sampling", f"adaptive sampling chooses pairs: it needs kind = \"pairwise\", "
                                             f"not {protocol.kind!r}")
    if protocol.stop_when and protocol.sampling != "adaptive":
        raise r.fail("protocol", "stop_when", "stops an adaptive study: add sampling = \"adaptive\" or remove it")
    if protocol.adaptive_target != "methods" and protocol.sampling != "adaptive":
        raise r.fail("protocol", "adaptive_target", "steers adaptive sampling: add sampling = \"adaptive\" or remove it")
    for rule in protocol.stop_when:
        name, _, value = rule.partition(":")
        if not (rule == "separated" or (name == "comparisons" and value.isdigit() and int(value) > 0)):
            raise r.fail("protocol", "stop_when", f"unknown rule {rule!r}; use \"separated\" (every adjacent pair of "
                                                  "the ranking told apart) or \"comparisons:N\" (a budget)")


def _check_layers(r: TomlReader, engine: EngineSettings) -> None:
    for key in ("content_layers", "style_layers"):
        for layer in getattr(engine, key):
            if layer not in LAYER_NAMES:
                raise r.fail("engine", key, f"unknown VGG-19 layer {layer!r}; valid: {', '.join(LAYER_NAMES)}")


def _check_block(r: TomlReader, block: Block, engine: EngineSettings, rows: list[str], briefing: list[str],
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
    given: frozenset[str] = frozenset()  # the [protocol] keys the file sets (the rest take import defaults)


def load_import_settings(path: str | Path | None, methods: list[str], default_name: str) -> ImportSettings:
    """``[study]`` and ``[protocol]`` of a study file for ``stylestudy import`` (both optional;
    no file: the defaults).  ``methods``: the imported methods, which participant-facing text
    must not name."""
    if path is None:
        return ImportSettings(default_name, "", "", _protocol(TomlReader(Path("-"), ""), {}, methods))
    data, r = read_toml(path, "give a study.toml with [study] and [protocol]")
    r.table(data, "", {"study", "protocol"})
    meta_t = data.get("study", {})  # name is optional here: the import names the study after its folder
    meta = read_declared(r, {"name": default_name, **meta_t} if isinstance(meta_t, dict) else meta_t, "study",
                         StudyInfo)
    table = data.get("protocol", {})
    return ImportSettings(meta.name or default_name, meta.title, meta.description,
                          _protocol(r, table, methods, importing=True),
                          frozenset(table) if isinstance(table, dict) else frozenset())


def protocol_from_record(table, source: str, methods: list[str]) -> Protocol:
    """A manifest's recorded ``protocol`` object checked as strictly as the study file's
    ``[protocol]`` (a hand-edited or truncated manifest must not start a server)."""
    if table is None:
        raise StudyError(f"{source}: protocol is null; re-run stylestudy generate or import")
    # a manifest written before a key was renamed is read under the new names, silently: it is not the user's file
    return _protocol(TomlReader(Path(source), ""), current_keys("protocol", table), methods)
