"""``stylestudy import``: a run directory from images made anywhere (other methods, other tools).

Input is either a folder ``DIR/<method>/<item>.<png|jpg|jpeg>`` (every method the same items) or
a CSV with columns ``method,item,path[,content,style]`` (paths relative to the CSV's folder).
Every problem of the input is collected and reported in one error: a missing item for some
method, an unreadable image, two files for one (method, item), a bad name.  Two conditions
showing the same picture and images whose sizes differ are warnings (``strict``: errors).

Each image is decoded and re-encoded as PNG from its pixels: the served file carries no
metadata (EXIF, PNG text chunks, file names may name the software or method), and the format
is one the browser and the server agree on.  What the metadata meant for the pixels is applied
first, so participants see what the maker saw: EXIF orientation, an ICC profile (converted to
sRGB with LittleCMS through Pillow's ImageCms), 16-bit and float grey scaled to 8 bits (as the
engine's loader does).  Provenance stays in the manifest: each condition's source path relative
to DIR, the source file's SHA-256 and the conversions made (``conversions``), next to the
served PNG's SHA-256.  Files or links leaving DIR (a CSV's folder) are refused, and so are
images over ``max_pixels`` (before their pixels are decoded).

A condition is (item, method): id ``<item>:<method>``, ``pair_id`` the item (the cell every
method fills), block ``import``, row the item's 1-based index.  Pure Python (Pillow), no torch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.files import atomic_write_bytes, file_sha256
from stylestudy.engine.study.manifest import MANIFEST_NAME, write_manifest
from stylestudy.engine.study.references import find_references, reference_folder_names
from stylestudy.engine.study.schema import ACR_QUESTION, P910_ACR_SCALE
from stylestudy.engine.study.studyfile import load_import_settings

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FORMAT_OF_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # the decoder a name allows
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # matched whole (fullmatch): no trailing newline
MAX_PIXELS = 16_000_000  # default --max-pixels: a 4000x4000 picture; a browser shows far less
MAX_METHOD, MAX_ITEM = 24, 48  # a pairwise trial id "<item>:<a>|<b>" fits the database's 128
IMPORT_BLOCK = "import"
CSV_COLUMNS = ("method", "item", "path")


class ImportProblem(StyleStudyError):
    """The input cannot become a study; the message lists every problem found."""


@dataclass
class Source:
    method: str
    item: str
    path: Path  # absolute
    relative: str  # as given, relative to DIR (provenance)
    content: str = ""
    style: str = ""


@dataclass
class ImportReport:
    run_dir: Path
    methods: list[str]
    items: list[str]
    conditions: int
    images: int
    warnings: list[str] = field(default_factory=list)
    briefing: list[str] = field(default_factory=list)  # items shown as unrated examples


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links followed, is in ``folder``."""
    return path.resolve().is_relative_to(folder.resolve())


def _folder_sources(root: Path, problems: list[str], notes: list[str]) -> list[Source]:
    sources = []
    method_dirs = sorted(d for d in root.iterdir()
                         if d.is_dir() and not d.name.startswith(".") and d.name not in reference_folder_names())
    for loose in sorted(f.name for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES):
        notes.append(f"{loose} is not in a method folder; ignored (the layout is DIR/<method>/<item>.png)")
    for method_dir in method_dirs:
        for f in sorted(method_dir.iterdir()):
            if f.name.startswith("."):
                continue
            if f.is_dir() or f.suffix.lower() not in IMAGE_SUFFIXES:
                notes.append(f"{method_dir.name}/{f.name} is not a .png/.jpg image; ignored")
                continue
            if not _inside(f, root):
                problems.append(f"{method_dir.name}/{f.name} is a link leaving {root}; copy the file in")
                continue
            sources.append(Source(method_dir.name, f.stem, f, f"{method_dir.name}/{f.name}"))
    if not sources:
        problems.append(f"no images found in {root}; the layout is DIR/<method>/<item>.png (or give a CSV "
                        "method,item,path)")
    return sources


def _csv_sources(table: Path, problems: list[str]) -> list[Source]:
    try:
        with table.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise ImportProblem(f"{table}: needs the columns method,item,path[,content,style]; missing "
                                   f"{', '.join(missing)}")
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportProblem(f"cannot read {table} as CSV ({exc}); give method,item,path rows") from None
    sources = []
    for line, row in enumerate(rows, start=2):
        if not row.get("path"):
            problems.append(f"{table.name}:{line}: empty path")
            continue
        path = Path(row["path"])
        full = path if path.is_absolute() else table.parent / path
        if not _inside(full, table.parent):
            problems.append(f"{table.name}:{line}: {row['path']} is outside {table.parent} (the CSV's folder); "
                            "put the images beside the CSV")
            continue
        sources.append(Source(row["method"], row["item"], full, row["path"], row.get("content", ""),
                              row.get("style", "")))
    if not rows:
        problems.append(f"{table} has no rows")
    return sources


def _check_names(sources: list[Source], problems: list[str]) -> None:
    for kind, limit in (("method", MAX_METHOD), ("item", MAX_ITEM)):
        for name in sorted({getattr(s, kind) for s in sources}):
            if not NAME.fullmatch(name) or len(name) > limit:
                problems.append(f"{kind} name {name!r} must be letters, digits, '_', '.', '+' or '-' (not first), "
                                f"at most {limit} characters")


class TooLarge(ValueError):
    pass


def _open(path: Path, max_pixels: int):
    """The image, opened (header only) and checked against ``max_pixels`` and its name's format
    before any decoding."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # our limit speaks, not Pillow's raw warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"more than --max-pixels {max_pixels} ({exc.args[0].split('pixels')[0].strip()} pixels)") \
            from None
    if image.width * image.height > max_pixels:
        size = f"{image.width}x{image.height} = {image.width * image.height / 1e6:.1f} Mpx"
        image.close()
        raise TooLarge(f"{size}, more than --max-pixels {max_pixels}; downscale it or raise --max-pixels")
    expected = FORMAT_OF_SUFFIX.get(Path(path).suffix.lower())
    if image.format != expected:  # the decoder is the one the name says, or none: no TIFF/BMP/ICO named .png
        found = image.format
        image.close()
        raise ValueError(f"its name says {expected or 'no image format we read'} but its content is {found}; "
                         "save it as PNG or JPEG under the matching name")
    return image


def _to_srgb(image, icc: bytes):
    """The pixels converted from their ICC profile to sRGB (alpha kept); (image, profile name)."""
    from PIL import ImageCms

    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    name = (ImageCms.getProfileDescription(source) or "unnamed").strip()
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    if image.mode in ("L", "LA", "La"):
        base = image.convert("L")
    elif image.mode == "CMYK":
        base = image
    else:
        base = image.convert("RGB")
    converted = ImageCms.profileToProfile(base, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted, name


def _flattened(image):
    """RGB pixels of an RGBA image: an opaque alpha channel dropped, transparency composited onto
    white (as the engine's loader does); (image, the conversion in words)."""
    from PIL import Image

    alpha = image.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return image.convert("RGB"), "opaque alpha channel dropped"
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image.convert("RGB"), mask=alpha)
    return flat, "transparency composited onto white"


def _decode(source: Source, max_pixels: int = MAX_PIXELS) -> tuple[bytes, tuple[int, int], list[str]]:
    """The image as metadata-free PNG bytes, its size and the conversions made (EXIF orientation,
    ICC profile to sRGB, 16-bit to 8-bit); raises TooLarge, or OSError/ValueError if unreadable."""
    from PIL import ImageCms, ImageOps

    from stylestudy.engine.study.images import WIDE_MODES, to_8bit

    with _open(source.path, max_pixels) as probe:
        probe.verify()  # truncated or corrupt files fail here or on load
    with _open(source.path, max_pixels) as image:
        image.load()
        conversions = []
        icc = image.info.get("icc_profile")
        orientation = image.getexif().get(0x0112, 1)
        if orientation not in (1, None):
            image = ImageOps.exif_transpose(image)
            conversions.append(f"EXIF orientation {orientation} applied")
        if image.mode in WIDE_MODES:
            conversions.append(f"{image.mode} scaled to 8 bits")
            image = to_8bit(image)
        if icc:
            try:
                image, name = _to_srgb(image, icc)
            except (ImageCms.PyCMSError, OSError) as exc:
                raise ValueError(f"its ICC profile cannot be applied ({str(exc)[:60]}); save it as sRGB") from None
            conversions.append(f"ICC profile {name!r} converted to sRGB")
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        if image.mode == "RGBA":  # no alpha reaches a participant: its bytes would tell one method's images apart
            image, note = _flattened(image)
            conversions.append(note)
        image.info = {}  # no text, exif or icc (the pixels are sRGB now): nothing but the pixels
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False)
        return buffer.getvalue(), image.size, conversions


def _imported_defaults(prot, given: frozenset[str]) -> None:
    """Defaults of an imported study where its file is silent: acr and pairwise are answered with
    the images in view; acr asks P.910's question on P.910's five labels."""
    if prot.kind in ("acr", "pairwise") and "answer_with_images" not in given:
        prot.answer_with_images = True
    if prot.kind == "acr":
        if "scale" not in given:
            prot.scale = list(P910_ACR_SCALE)
        if "question" not in given:
            prot.question = ACR_QUESTION


def import_images(source_dir: str | Path, run_dir: str | Path, protocol: str | None = None,
                  study_file: str | Path | None = None, reference: str | None = None,
                  strict: bool = False, briefing: list[str] | None = None,
                  max_pixels: int = MAX_PIXELS) -> ImportReport:
    """Validate ``source_dir`` (a folder or a CSV), then write ``run_dir`` (stimuli + manifest).
    ``briefing``: items whose images (every method's) are the instructions page's unrated
    examples, as the paper's protocol shows examples before the trials.  ``max_pixels``: the
    largest image (width x height) accepted."""
    source_dir, run_dir = Path(source_dir), Path(run_dir)
    problems: list[str] = []
    notes: list[str] = []
    if source_dir.is_file() and source_dir.suffix.lower() == ".csv":
        sources = _csv_sources(source_dir, problems)
    elif source_dir.is_dir():
        sources = _folder_sources(source_dir, problems, notes)
    elif not source_dir.exists():
        raise ImportProblem(f"{source_dir} not found; give a folder DIR/<method>/<item>.png or a CSV method,item,path")
    else:
        raise ImportProblem(f"{source_dir} is neither a folder DIR/<method>/<item>.png nor a CSV method,item,path")
    _check_names(sources, problems)

    seen: dict[tuple[str, str], Source] = {}
    for s in sources:
        key = (s.method, s.item)
        if key in seen:
            problems.append(f"two images for method {s.method!r}, item {s.item!r}: {seen[key].relative} and {s.relative}")
        seen.setdefault(key, s)
    methods = sorted({s.method for s in sources})
    items = sorted({s.item for s in sources})
    if sources and len(methods) < 2:
        problems.append(f"only one method ({methods[0]}); a study compares at least two")
    for m in methods:
        lacking = [i for i in items if (m, i) not in seen]
        if lacking:
            shown = ", ".join(lacking[:8]) + (f" and {len(lacking) - 8} more" if len(lacking) > 8 else "")
            problems.append(f"method {m!r} lacks {len(lacking)} of {len(items)} items: {shown}")

    encoded: dict[tuple[str, str], tuple[bytes, tuple[int, int], str]] = {}
    conversions: dict[tuple[str, str], list[str]] = {}
    for key, s in seen.items():
        if not s.path.is_file():
            problems.append(f"{s.relative}: no such file")
            continue
        try:
            png, size, conversions[key] = _decode(s, max_pixels)
        except TooLarge as exc:
            problems.append(f"{s.relative}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
            problems.append(f"{s.relative}: not a readable image ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        encoded[key] = (png, size, file_sha256(s.path))

    references: dict[tuple[str, str], tuple[bytes, str]] = {}  # (kind, item) -> (png, stored path)
    source_root = source_dir if source_dir.is_dir() else source_dir.parent
    for (kind, item), path in find_references(source_dir, items, problems).items():
        if not _inside(path, source_root):  # an absolute or ../ CSV path, a _style link: confined like stimuli
            problems.append(f"{kind} reference of {item}: {path} is outside the source folder {source_root}; "
                            "copy it into that folder")
            continue
        try:
            png = _decode(Source("", item, path, str(path)), max_pixels)[0]
        except TooLarge as exc:
            problems.append(f"{kind} reference of {item}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
            problems.append(f"{kind} reference of {item}: not a readable image ({type(exc).__name__})")
            continue
        references[(kind, item)] = (png, f"references/{hashlib.sha256(png).hexdigest()[:20]}.png")

    warnings = list(notes)
    by_pixels: dict[str, list[str]] = {}
    for key, (png, _, _) in encoded.items():
        by_pixels.setdefault(hashlib.sha256(png).hexdigest(), []).append(seen[key].relative)
    for same in by_pixels.values():
        if len(same) > 1:
            warnings.append(f"the same picture is {' and '.join(same)} (the conditions will share one image)")
    for item in items:
        sizes = {m: encoded[(m, item)][1] for m in methods if (m, item) in encoded}
        if len(set(sizes.values())) > 1:
            warnings.append(f"item {item!r}: sizes differ across methods ("
                            + ", ".join(f"{m} {w}x{h}" for m, (w, h) in sizes.items()) + ")")
    if strict and warnings:
        problems += [f"(strict) {w}" for w in warnings]
    briefing = list(dict.fromkeys(briefing or []))
    unknown = [b for b in briefing if b not in items]
    if unknown:
        problems.append(f"briefing item(s) {', '.join(unknown)} are not among the items ({', '.join(items[:8])}...)")
    elif items and len(briefing) >= len(items):
        problems.append("every item is a briefing example; leave at least one item to rate")

    settings = None
    if not problems:
        try:
            settings = load_import_settings(study_file, methods, run_dir.name)
        except StyleStudyError as exc:
            problems.append(str(exc))
    if problems:
        raise ImportProblem(f"cannot import {source_dir}: {len(problems)} problem(s): " + "; ".join(problems))

    prot = settings.protocol
    if protocol is not None:
        prot.kind = protocol
    if reference is not None:
        prot.reference_method = reference
    if prot.kind == "paired":
        prot.reference_method = prot.reference_method or methods[0]
    _imported_defaults(prot, settings.given)
    for kind in prot.references:
        if items and (kind, items[0]) not in references:
            raise ImportProblem(f"references = {prot.references} needs a {kind} image per item: a folder "
                                f"DIR/_{kind}/<item>.png or a CSV column {kind}_image")
    if prot.sampling == "adaptive" and prot.kind != "pairwise":
        raise ImportProblem(f"sampling = \"adaptive\" chooses pairs: it needs the pairwise protocol, not {prot.kind!r}")
    for key, value in (("reference", prot.reference_method), ("gold_method", prot.gold_method)):
        if value and value not in methods:
            raise ImportProblem(f"{key} {value!r} is not one of the imported methods ({', '.join(methods)})")

    entries = []
    files: dict[str, bytes] = {}
    for row, item in enumerate(items, start=1):
        for m in methods:
            s = seen[(m, item)]
            png, (width, height), source_sha = encoded[(m, item)]
            digest = hashlib.sha256(png).hexdigest()
            image_id = digest[:20]
            path = f"stimuli/{image_id}.png"
            files[path] = png
            entries.append({
                "id": f"{item}:{m}", "image_id": image_id, "path": path, "sha256": digest, "block": IMPORT_BLOCK,
                "row": row, "row_label": item, "column": 1, "column_label": "", "method": m, "pair_id": item,
                "briefing": item in briefing, "item": item, "content": s.content, "style": s.style, "width": width,
                "height": height, "source": s.relative, "source_sha256": source_sha,
                **{f"{kind}_image": references[(kind, item)][1] for kind in ("style", "content")
                   if (kind, item) in references},
                **{f"{kind}_image_sha256": hashlib.sha256(references[(kind, item)][0]).hexdigest()
                   for kind in ("style", "content") if (kind, item) in references},
                "conversions": conversions[(m, item)],
            })
    for png, path in references.values():
        files[path] = png
    study = {"name": settings.name, "title": settings.title or f"imported: {', '.join(methods)} on {len(items)} items",
             "description": settings.description, "protocol": asdict(prot), "blocks": {},
             "import": {"source": str(source_dir.resolve()), "layout": "csv" if source_dir.is_file() else "folders",
                        "methods": methods, "items": items, "briefing_items": briefing, "warnings": warnings}}

    manifest_path = run_dir / MANIFEST_NAME
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if [(e.get("id"), e.get("sha256")) for e in old.get("stimuli", [])] != [(e["id"], e["sha256"]) for e in entries] \
                or old.get("study", {}).get("protocol") != study["protocol"]:
            raise ImportProblem(f"{run_dir} already holds a different study (its ratings belong to that one); "
                               "choose another --out")
    for path, png in files.items():
        target = run_dir / path
        if not (target.is_file() and file_sha256(target) == hashlib.sha256(png).hexdigest()):
            atomic_write_bytes(target, png, mode=0o644)  # readable by a server under another account
    write_manifest(run_dir, study, entries, weights=None, complete=True)
    return ImportReport(run_dir, methods, items, len(entries), len(files), warnings, briefing)
