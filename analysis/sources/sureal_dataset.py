"""sureal's dataset files (Netflix/sureal ``resource/dataset/*.py`` and their JSON) as ratings.

A ``.py`` dataset is code, so it is never run: it is parsed with ``ast`` and only literals are
accepted (strings, numbers, None, True/False, lists, tuples, dicts, a unary minus), plus
assignments to names, a name assigned earlier and ``+`` between two strings (sureal's own files
build paths as ``dis_dir + '/a.yuv'``).  A call, an attribute, an import or any other statement
is refused with one line naming the file and line.

Each distorted asset (``dis_videos``) is a condition and its content (``ref_videos``) the item;
the method is what ``--method-from REGEX`` finds in the asset's name (``asset_name``, else its
path's file stem; the first group that matched, else the whole match) where assets share one, such as the rungs
of an encode ladder; without it, the asset's ``method`` key (``analyze`` writes one), else its name.  ``os`` is a list (one score per subject, the
subject named by its position, as sureal does), a subject -> score dict (a list of scores =
repetitions), or, for paired comparison, ``(subject, asset_id) -> 1 | 0.5 | 0`` (1: this asset was
preferred over that one, 0.5: half of a tie, 0: the other was preferred).
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pandas as pd

from stylestudy.analysis.sources import foreign
from stylestudy.engine.study.errors import StyleStudyError

PC_VALUES = (0, 0.5, 1)


def _refuse(path: Path, node: ast.AST, what: str) -> StyleStudyError:
    return StyleStudyError(f"{path}, line {getattr(node, 'lineno', '?')}: {what}; a sureal dataset file may hold only "
                           "literals and assignments to names (it is read, never run)")


def _literal(path: Path, node: ast.AST, names: dict):
    """The value of a literal expression; anything else refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal(path, e, names) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _refuse(path, node, "a '**' inside a dict is code")
        keys = [_literal(path, k, names) for k in node.keys]
        for key, at in zip(keys, node.keys):
            if not _hashable(key):
                raise _refuse(path, at, "a list or dict inside a dict key")
        return dict(zip(keys, (_literal(path, v, names) for v in node.values)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(path, node.operand, names)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        raise _refuse(path, node, "a sign before something that is not a number")
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise _refuse(path, node, f"the name {node.id!r} is not assigned above it")
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(path, node.left, names), _literal(path, node.right, names)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        raise _refuse(path, node, "'+' between things that are not both strings")
    kind = {ast.Call: "a call", ast.Attribute: "an attribute", ast.Lambda: "a lambda",
            ast.Subscript: "a subscript"}.get(type(node), f"a {type(node).__name__} expression")
    raise _refuse(path, node, f"{kind} is code, not a literal")


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def parse_python(path: Path, text: str) -> dict:
    """The names a ``.py`` dataset assigns, evaluated as literals only (never executed)."""
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise StyleStudyError(f"{path}, line {exc.lineno}: not valid Python ({exc.msg}); a sureal dataset file is "
                              "Python assignments of literals") from None
    except (RecursionError, MemoryError):
        raise StyleStudyError(f"{path}: nested too deeply to read; a sureal dataset file is Python assignments of "
                              "literals") from None
    names: dict = {}
    for statement in tree.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            kind = {ast.Import: "an import", ast.ImportFrom: "an import", ast.FunctionDef: "a function definition",
                    ast.Expr: "an expression statement"}.get(type(statement), f"a {type(statement).__name__} statement")
            raise _refuse(path, statement, f"{kind} is code")
        try:
            names[statement.targets[0].id] = _literal(path, statement.value, names)
        except RecursionError:
            raise _refuse(path, statement, "an expression nested too deeply") from None
    return names


def read_dataset(path: Path) -> dict:
    """A dataset file's names (``.py``: literals only; ``.json``: one object)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StyleStudyError(f"{path}: not UTF-8 text (byte {exc.start}); give a sureal dataset .py or .json") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StyleStudyError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise StyleStudyError(f"{path}: nested too deeply to read; a sureal dataset's JSON is one object with "
                                  "ref_videos and dis_videos") from None
        if not isinstance(data, dict):
            raise StyleStudyError(f"{path}: the JSON must be one object with ref_videos and dis_videos")
        return data
    return parse_python(path, text)


def _asset_name(video: dict) -> str:
    if video.get("asset_name"):
        return str(video["asset_name"])
    if video.get("path"):
        return Path(str(video["path"])).stem
    return f"asset{video.get('asset_id')}"


def _method(path: Path, name: str, method_from: re.Pattern | None, named: object = None) -> str:
    """The asset's method: what ``method_from`` finds in its name; else its ``method`` key (the
    JSON ``analyze`` writes has one); else the name itself."""
    if method_from is None:
        return str(named) if named not in (None, "") else name
    found = method_from.search(name)
    method = next((g for g in found.groups() if g), found.group(0)) if found else ""
    if not method:
        raise StyleStudyError(f"{path}: --method-from {method_from.pattern!r} finds no method in the asset name "
                              f"{name!r}; make the pattern match every asset (its first group that matched, else the "
                              "whole match, is the method)")
    return method


def _score(path: Path, where: str, value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None  # sureal's missing score
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StyleStudyError(f"{path}, {where}: {value!r} is not a finite number")
    return float(value)


def _videos(path: Path, data: dict) -> tuple[dict, list[dict]]:
    """(content_id -> item name, the distorted videos), checked for the keys used."""
    refs, dis = data.get("ref_videos"), data.get("dis_videos")
    if not isinstance(refs, list) or not isinstance(dis, list):
        raise StyleStudyError(f"{path}: a sureal dataset assigns ref_videos and dis_videos as lists (found: "
                              f"{', '.join(sorted(map(str, data))) or 'nothing'})")
    items = {}
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or not _hashable(ref.get("content_id", [])):
            raise StyleStudyError(f"{path}, ref_videos[{i}]: needs a dict with content_id (a number or a string) and "
                                  "content_name")
        items[ref["content_id"]] = str(ref.get("content_name", ref["content_id"]))
    if not dis:
        raise StyleStudyError(f"{path}: dis_videos is empty; there is nothing to analyse")
    for i, video in enumerate(dis):
        if not isinstance(video, dict) or not {"content_id", "os"} <= set(video) or not all(
                _hashable(video.get(k)) for k in ("content_id", "asset_id")):
            raise StyleStudyError(f"{path}, dis_videos[{i}]: needs a dict with content_id and os (and asset_id), the "
                                  "ids numbers or strings")
        if video["content_id"] not in items:
            raise StyleStudyError(f"{path}, dis_videos[{i}]: content_id {video['content_id']!r} is not in ref_videos")
        if not isinstance(video["os"], (list, tuple, dict)) or not video["os"]:
            raise StyleStudyError(f"{path}, dis_videos[{i}]: os must be a non-empty list or dict of scores")
    return items, dis


def _is_paired_comparison(dis: list[dict]) -> bool:
    return any(isinstance(v["os"], dict) and any(isinstance(k, (tuple, list)) for k in v["os"]) for v in dis)


def _score_rows(path: Path, items: dict, dis: list[dict], method_from) -> pd.DataFrame:
    rows = []
    for i, video in enumerate(dis):
        method = _method(path, _asset_name(video), method_from, video.get("method"))
        scores = video["os"].items() if isinstance(video["os"], dict) else enumerate(video["os"])
        for subject, value in scores:
            for rep, one in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                score = _score(path, f"dis_videos[{i}] os[{subject!r}]" + (f"[{rep}]" if rep else ""), one)
                if score is not None:
                    if score < 1:
                        raise StyleStudyError(f"{path}, dis_videos[{i}] os[{subject!r}]: {score:g} is below 1; the "
                                              "analysis reads scores on a 1..k scale (a difference or 0-based scale "
                                              "needs shifting first)")
                    rows.append({"participant": str(subject), "item": items[video["content_id"]], "method": method,
                                 "score": str(score)})
    return pd.DataFrame(rows, columns=list(foreign.RATINGS_COLUMNS))


def _comparison_rows(path: Path, items: dict, dis: list[dict], method_from) -> pd.DataFrame:
    by_id = {v.get("asset_id", i): v for i, v in enumerate(dis)}
    outcomes: dict[tuple, dict] = {}  # (subject, low asset, high asset) -> {owner asset: value}
    for i, video in enumerate(dis):
        owner = video.get("asset_id", i)
        for key, value in video["os"].items():
            where = f"dis_videos[{i}] os[{key!r}]"
            if not (isinstance(key, (tuple, list)) and len(key) == 2 and key[1] in by_id):
                raise StyleStudyError(f"{path}, {where}: a paired-comparison key is (subject, asset_id) of an asset "
                                      "in dis_videos")
            if _score(path, where, value) not in PC_VALUES:
                raise StyleStudyError(f"{path}, {where}: {value!r}; a paired-comparison value is 1 (this asset "
                                      "preferred), 0.5 (half of a tie) or 0")
            subject, other = str(key[0]), key[1]
            outcomes.setdefault((subject, *sorted((owner, other), key=str)), {})[owner] = float(value)
    rows = []
    for (subject, low, high), said in outcomes.items():
        a, b = (by_id[low], by_id[high])
        ma, mb = (_method(path, _asset_name(v), method_from, v.get("method")) for v in (a, b))
        if ma == mb:
            raise StyleStudyError(f"{path}: assets {_asset_name(a)!r} and {_asset_name(b)!r} are compared but both are "
                                  f"method {ma!r}; a comparison needs two methods (check --method-from)")
        ia, ib = items[a["content_id"]], items[b["content_id"]]
        item = ia if ia == ib else "|".join(sorted((ia, ib)))
        va, vb = said.get(low), said.get(high)
        if va is not None and vb is not None and va + vb != 1 and not (va == vb == 1):
            raise StyleStudyError(f"{path}: subject {subject!r} compared {_asset_name(a)!r} and {_asset_name(b)!r} "
                                  f"with values {va:g} and {vb:g}, which contradict each other")
        if va == vb == 1:  # compared twice, each preferred once
            winners = [ma, mb]
        else:
            value = va if va is not None else 1 - vb
            winners = [ma if value == 1 else mb if value == 0 else foreign.TIE]
        rows += [{"participant": subject, "item": item, "a": ma, "b": mb, "winner": w} for w in winners]
    return pd.DataFrame(rows, columns=list(foreign.PAIRWISE_COLUMNS))


def dataset_rows(path: Path, method_from: str | None = None) -> tuple[pd.DataFrame, str]:
    """(export rows, the dataset's name) of a sureal dataset file."""
    try:
        pattern = re.compile(method_from) if method_from else None
    except re.error as exc:
        raise StyleStudyError(f"--method-from {method_from!r} is not a regular expression ({exc})") from None
    data = read_dataset(path)
    items, dis = _videos(path, data)
    name = str(data.get("dataset_name", path.stem))
    if _is_paired_comparison(dis):
        return foreign.pairwise_rows(path, _comparison_rows(path, items, dis, pattern), order_known=False), name
    return foreign.ratings_rows(path, _score_rows(path, items, dis, pattern)), name
