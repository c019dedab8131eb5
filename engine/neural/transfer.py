"""``stylestudy transfer``: one image, from files to PNG and sidecar."""

from __future__ import annotations

from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.device import get_extractor, resolve_device
from stylestudy.engine.neural.optimise import run_transfer
from stylestudy.engine.neural.problem import Problem
from stylestudy.engine.neural.sidecar import result_record, save_result


def transfer_files(content_path, style_path, out_png, cfg: TransferConfig, device: str = "auto",
                   progress: bool = True) -> dict:
    """The ``stylestudy transfer`` job: load, optimise, save; returns the sidecar record."""
    dev = resolve_device(device)
    extractor = get_extractor(cfg.weights, dev, cfg.pooling, cfg.preprocessing)
    problem = Problem.from_files(content_path, style_path, cfg.size, cfg.style_size, dev)
    result = run_transfer(extractor, problem, cfg, progress=progress)
    inputs = {"content": str(content_path), "style": str(style_path),
              "content_size": list(problem.size_hw), "style_size": list(problem.style.shape[-2:])}
    record = result_record(cfg, extractor, result, inputs)
    save_result(out_png, result, record)
    return record
