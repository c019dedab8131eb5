"""Where generation's batches run: in this process (``local``) or as Ray tasks (``ray``).

A batch is one ``BatchTask``: same-size problems of one method and layer set, plus everything a
worker needs (configs, image names and their hashes); the input images travel as bytes (once
per run, through Ray's object store), so no shared filesystem is needed.  ``render_batch`` runs
the batch anywhere and returns each image as PNG bytes with its sidecar record; only the driver
writes into the run directory (``engine.generate``), with the usual atomic, hash-verified
protocol, so a killed driver or worker loses at most the batches in flight and a re-run resumes.

Ray: one task per batch (``num_gpus`` per task on a GPU cluster; on CPUs as many CPUs, and torch
threads, as the driver's torch uses, so a CPU task sums floats in the same order as a local run
and makes bit-identical images); a worker that dies is retried by Ray; a task that fails by
itself (a bad image, an error in the engine) is reported with its reason and not retried.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stylestudy.engine.produce.plan import BatchTask
from stylestudy.engine.study.errors import StyleStudyError

EXECUTORS = ("local", "ray")
RAY_TASK_MEMORY = {"gpu": 16 << 30, "cpu": 4 << 30}  # bytes a batch may plan for when sized 'auto' on Ray




@dataclass
class RenderedImage:
    image_id: str
    png: bytes
    record: dict  # the sidecar (png_sha256 included)


@dataclass
class TaskOutcome:
    task: BatchTask
    images: list[RenderedImage] = field(default_factory=list)
    error: str | None = None  # one line: why the batch failed


def render_batch(task: BatchTask, images: dict[str, bytes]) -> list[RenderedImage]:
    """Run one batch on this machine's device; pure: reads nothing from the run directory."""
    import hashlib

    import torch

    from stylestudy.engine.neural.config import TransferConfig
    from stylestudy.engine.neural.device import get_extractor, resolve_device
    from stylestudy.engine.neural.fastpath import FastPath
    from stylestudy.engine.neural.measures import objective_measures
    from stylestudy.engine.neural.optimise import run_transfers
    from stylestudy.engine.neural.problem import Problem
    from stylestudy.engine.neural.sidecar import result_record
    from stylestudy.engine.neural.tensors import to_pil, to_tensor
    from stylestudy.engine.study.images import ImageError, load_rgb

    if task.threads:
        torch.set_num_threads(task.threads)
    dev = resolve_device(task.device)
    fast = FastPath.for_device(dev, bf16=task.bf16)
    fast.apply_global(dev)
    cfgs = [TransferConfig(**c) for c in task.configs]
    extractor = get_extractor(cfgs[0].weights, dev, cfgs[0].pooling, channels_last=fast.channels_last)
    with tempfile.TemporaryDirectory(prefix="stylestudy-batch-") as tmp:
        paths = {}
        for name in sorted({*task.contents, *task.styles}):
            paths[name] = Path(tmp) / f"{name}.img"
            paths[name].write_bytes(images[name])
            try:  # name the study's image, not the worker's temporary copy
                load_rgb(paths[name])
            except ImageError as exc:
                reason = str(exc).split(" (", 1)[-1].rsplit(")", 1)[0] if " (" in str(exc) else str(exc)
                raise ImageError(f"cannot read image {name!r} of the study ({reason}); replace the file and re-run "
                                 "generate") from None
        cache: dict[tuple, Problem] = {}
        problems = []
        for content, style, cfg in zip(task.contents, task.styles, cfgs):
            key = (content, style, cfg.size, cfg.style_size)
            if key not in cache:
                cache[key] = Problem.from_files(paths[content], paths[style], cfg.size, cfg.style_size, dev)
            problems.append(cache[key])
    results = run_transfers(extractor, problems, cfgs, progress=task.progress, fast=fast, desc=task.desc)
    shown = torch.cat([to_tensor(to_pil(r.image), dev) for r in results])
    measures = objective_measures(extractor, problems, cfgs, shown)
    out = []
    for image_id, job, content, style, cfg, problem, result, measure in zip(
            task.image_ids, task.jobs, task.contents, task.styles, cfgs, problems, results, measures):
        inputs = {"content": content, "style": style, "content_sha256": task.image_sha[content],
                  "style_sha256": task.image_sha[style], "content_size": list(problem.size_hw),
                  "style_size": list(problem.style.shape[-2:])}
        record = result_record(cfg, extractor, result, inputs)
        record.update(job=job, image_id=image_id, objective=measure, fast_path=fast.describe(),
                      seconds_per_image=result.seconds / result.batch_size)
        buf = io.BytesIO()
        to_pil(result.image).save(buf, format="PNG")
        record["png_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
        out.append(RenderedImage(image_id, buf.getvalue(), record))
    return out


def run_local(tasks: list[BatchTask], images: dict[str, bytes]) -> Iterator[TaskOutcome]:
    """In this process, one batch after another; an error stops the run (as it always has)."""
    for task in tasks:
        yield TaskOutcome(task, render_batch(task, images))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def run_ray(tasks: list[BatchTask], images: dict[str, bytes], address: str | None = None,
            gpus_per_task: float = 0.0, progress: bool = True) -> Iterator[TaskOutcome]:
    """One Ray task per batch; outcomes as they finish, with one progress bar for the cluster."""
    try:
        import ray
    except ModuleNotFoundError:
        raise StyleStudyError("--executor ray needs Ray: pip install -e '.[cluster]' (or: pip install ray)") from None
    from tqdm.auto import tqdm

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 configure_logging=False)
    try:
        import torch

        threads = torch.get_num_threads()
        for task in tasks:
            task.threads = 0 if gpus_per_task else threads
        resources = {"num_gpus": gpus_per_task} if gpus_per_task else {"num_cpus": threads}
        remote = ray.remote(render_batch).options(max_retries=3, retry_exceptions=False, **resources)
        shared = ray.put(images)  # the input images, once, for every task
        refs = {remote.remote(task, shared): task for task in tasks}
        waiting, failed = list(refs), 0
        bar = tqdm(total=len(tasks), desc="batches (ray)", unit="batch", disable=not progress, dynamic_ncols=True)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=5.0)
            bar.set_postfix(running=min(len(waiting), _slots(ray, gpus_per_task)), failed=failed, refresh=False)
            for ref in done:
                try:
                    yield TaskOutcome(refs[ref], ray.get(ref))
                except ray.exceptions.RayTaskError as exc:  # the task itself failed: deterministic, not retried
                    failed += 1
                    yield TaskOutcome(refs[ref], error=_one_line(exc.cause if exc.cause else exc))
                except ray.exceptions.RayError as exc:  # retries exhausted (workers kept dying), or lost
                    failed += 1
                    yield TaskOutcome(refs[ref], error=_one_line(exc))
                bar.update(1)
        bar.close()
    finally:
        if started_here:
            ray.shutdown()


def _slots(ray, gpus_per_task: float) -> int:
    """How many tasks the cluster runs at once."""
    resources = ray.cluster_resources()
    if gpus_per_task:
        return int(resources.get("GPU", 0) // gpus_per_task) or 1
    import torch

    return int(resources.get("CPU", 1) // torch.get_num_threads()) or 1

