"""A study's jobs: one per stimulus, in figure order (pure Python, no torch).

The analysis and the simulator use the same expansion as generation, so a cell means the same
thing in every stage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.manifest import condition_id
from stylestudy.engine.study.schema import Study


@dataclass
class Job:
    """One condition: a cell (block, row, column) of one method, with the config that makes its image.

    ``condition_id`` is the condition's identity in every later stage; ``image_id`` hashes what
    determines the pixels, so two conditions with the same config share one image (generated once).
    """

    block: str
    row: str  # style image name
    row_index: int  # 1-based figure row
    column: int  # 1-based figure column
    column_label: str
    method: str
    briefing: bool
    config: dict  # TransferConfig fields
    content: str  # image names
    style: str
    pair_id: str = ""
    condition_id: str = ""
    image_id: str = ""  # set by generation, from the config and the input and weight hashes

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("config", "image_id")}


def short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def expand_jobs(study: Study) -> list[Job]:
    """Every stimulus of the study, rated and briefing, in figure order."""
    eng = study.engine
    jobs: list[Job] = []
    base_cfg = {
        "content_layers": list(eng.content_layers), "style_layers": list(eng.style_layers),
        "content_weights": [eng.content_weight] * len(eng.content_layers),
        "style_weights": [eng.style_weight] * len(eng.style_layers), "size": eng.size, "style_size": None,
        "iterations": eng.iterations, "optimizer": eng.optimizer, "init": eng.init, "seed": eng.seed,
        "weights": eng.weights, "pooling": eng.pooling,
    }
    for block in study.blocks.values():
        rows = [(r, False) for r in block.rows]
        if block.name in study.briefing_blocks:
            rows += [(r, True) for r in study.briefing_styles]
        for row_index, (style, briefing) in enumerate(rows, start=1):
            methods = study.briefing_methods if briefing else ["baseline", "normalized"]
            for col in range(block.columns):
                for method in methods:
                    cfg = dict(base_cfg, method=method)
                    cfg["lambda_os"] = (study.baseline_lambda_os.get(style) if method == "baseline"
                                        else study.normalized_lambda_os)
                    if block.sweep == "lambda_os":
                        cfg["lambda_os"] = (block.baseline if method == "baseline" else block.normalized)[col]
                        label = f"λos={cfg['lambda_os']:g}"
                    elif block.sweep == "layer_boost":
                        layer = block.layers[col]
                        cfg["style_weights"] = [eng.style_weight * (block.boost if name == layer else 1.0)
                                                for name in eng.style_layers]
                        label = f"{layer} ×{block.boost:g}"
                    else:
                        cfg["size"] = int(block.sizes[col])
                        label = f"{cfg['size']} px"
                    job = Job(block.name, style, row_index, col + 1, label, method, briefing, cfg,
                              study.object_image, style)
                    job.pair_id = short_hash([study.name, block.name, style, col + 1])
                    job.condition_id = condition_id(block.name, row_index, col + 1, method)
                    jobs.append(job)
    return jobs


FILTER_KEYS = ("block", "row", "column", "method", "briefing", "condition_id", "image_id", "pair_id")


def filter_jobs(jobs: list[Job], expression: str | None) -> list[Job]:
    """``block=a,method=normalized`` keeps jobs whose fields equal every given value."""
    if not expression:
        return jobs
    wanted = {}
    for part in expression.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in FILTER_KEYS:
            raise StyleStudyError(f"bad --jobs-filter part {part!r}; use key=value with key in {','.join(FILTER_KEYS)}")
        wanted[key.strip()] = value.strip()
    return [j for j in jobs if all(str(getattr(j, k)).lower() == v.lower() for k, v in wanted.items())]
