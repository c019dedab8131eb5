"""Single-image style transfer: L-BFGS (torch.optim.LBFGS) or Adam over the pixels of x.

x is optimised in RGB [0, 1] space (the network's preprocessing is applied inside the
extractor) and is not clamped during optimisation, as in the paper; the saved PNG is clamped.

Iteration counting: an *iteration* is one L-BFGS iteration (one search direction plus its
strong-Wolfe line search), as the paper's "600 iterations"; an *evaluation* is one forward and
backward pass.  Both are recorded; an L-BFGS iteration usually takes 1-2 evaluations.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from greenlet import greenlet
from tqdm.auto import tqdm

from stylestudy.engine.neural.config import TransferConfig
from stylestudy.engine.neural.fastpath import FastPath
from stylestudy.engine.neural.losses import Partials, StyleTransferLoss, Targets, make_loss
from stylestudy.engine.neural.problem import Problem, build_targets, initial_image
from stylestudy.engine.neural.vgg import VGG19Features


@dataclass
class LossTrace:
    """Total and per-layer partial losses after each iteration (index 0 = the initial image)."""

    total: list[float] = field(default_factory=list)
    content: dict[str, list[float]] = field(default_factory=dict)
    style: dict[str, list[float]] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended before its last iteration, if it did

    def append(self, total: float, partials: Partials) -> None:
        self.total.append(total)
        detached = partials.detached()
        for group, target in (("content", self.content), ("style", self.style)):
            for layer, values in detached[group].items():
                target.setdefault(layer, []).append(values[0])

    def at(self, index: int) -> dict:
        return {
            "total": self.total[index],
            "content": {k: v[index] for k, v in self.content.items()},
            "style": {k: v[index] for k, v in self.style.items()},
        }


Evaluation = tuple[torch.Tensor, torch.Tensor, Partials]  # (loss, gradient of x, partials)


class NonFiniteLoss(ArithmeticError):
    """The loss became NaN/inf at a trial point; the run stops at its last finite iterate."""


class _Objective:
    """Loss + gradient of one problem's x, caching the last point.

    torch.optim.LBFGS re-evaluates the closure at the start of every ``step``; stepping one
    iteration at a time (for the per-iteration trace and progress bar) would then cost an extra
    forward/backward per iteration.  The cache returns the stored loss/gradient when x has not
    changed since the last evaluation, so one-at-a-time stepping costs the same as one long step.
    """

    def __init__(self, x: torch.Tensor, evaluate: Callable[[torch.Tensor], Evaluation]) -> None:
        self.x, self._evaluate = x, evaluate
        self.evaluations = 0
        self._point: torch.Tensor | None = None
        self._value: Evaluation | None = None

    def evaluate(self) -> tuple[torch.Tensor, Partials]:
        if self._point is None or not torch.equal(self._point, self.x):
            self._value = self._evaluate(self.x.detach())
            self._point = self.x.detach().clone()
            self.evaluations += 1
        loss, grad, partials = self._value
        if not torch.isfinite(loss):
            raise NonFiniteLoss(float(loss))
        self.x.grad = grad.clone()
        return loss, partials

    def closure(self) -> torch.Tensor:
        return self.evaluate()[0]


class BatchEvaluator:
    """One forward/backward for the x of every problem that is waiting for an evaluation.

    Each problem runs its own optimiser (own L-BFGS history, step and line search) in its own
    greenlet, a coroutine on this one OS thread.  Its closure suspends with a request; when
    every still-running problem has asked, ``run`` evaluates them all as one batch and resumes
    each with its own loss and gradient.  Problems are independent (VGG-19 has no batch-coupled
    layers), so the gradient of the summed loss is each problem's own gradient.  Coroutines
    rather than threads: no locks, a deterministic order, and torch is only ever called from
    one thread (concurrent OpenMP regions from several threads can deadlock on CPU).
    """

    def __init__(self, extractor: VGG19Features, loss: StyleTransferLoss, fast: FastPath | None = None) -> None:
        self.extractor, self.loss = extractor, loss
        self.fast = fast or FastPath()
        self.batch_evaluations = 0
        self._scheduler = greenlet.getcurrent()
        self._subsets: dict[tuple[int, ...], StyleTransferLoss] = {}

    def evaluate(self, index: int, x: torch.Tensor) -> Evaluation:
        """Called inside problem ``index``'s coroutine: suspend until the batch has run."""
        return self._scheduler.switch((index, x))

    def run(self, workers: list[Callable[[], None]]) -> None:
        """Drive every worker to completion, batching their evaluation requests."""
        coroutines = [greenlet(work) for work in workers]
        pending: dict[int, torch.Tensor] = {}

        def resume(i: int, value=None) -> None:
            request = coroutines[i].switch(value) if value is not None else coroutines[i].switch()
            if request is not None:  # None: the worker returned
                pending[request[0]] = request[1]

        for i in range(len(coroutines)):
            resume(i)
        while pending:
            indices = tuple(sorted(pending))
            results = self._evaluate_batch(indices, torch.cat([pending.pop(i) for i in indices]))
            for i, result in zip(indices, results):
                resume(i, result)

    def _evaluate_batch(self, indices: tuple[int, ...], x: torch.Tensor) -> list[Evaluation]:
        loss = self.loss if len(indices) == len(self.loss.weights) else self._subset(indices)
        with torch.enable_grad():
            x = x.requires_grad_(True)
            with self.fast.autocast(x.device):
                feats = self.extractor(self.fast.prepare(x), loss.layers)
            total, partials = loss(feats)  # Grams and losses in float32 (see stylestudy.engine.neural.losses)
            (grad,) = torch.autograd.grad(total.sum(), x)
        self.batch_evaluations += 1
        return [(total[k].detach(), grad[k : k + 1], partials.select(k)) for k in range(len(indices))]

    def _subset(self, indices: tuple[int, ...]) -> StyleTransferLoss:
        if indices not in self._subsets:
            self._subsets[indices] = self.loss.select(list(indices))
        return self._subsets[indices]


@dataclass
class TransferResult:
    image: torch.Tensor  # (1, 3, H, W), unclamped
    trace: LossTrace
    iterations: int
    evaluations: int
    seconds: float  # wall time of the run (of the whole batch when batched)
    device: str
    batch_size: int = 1


def _make_optimizer(x: torch.Tensor, cfg: TransferConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            [x], lr=cfg.lr or 1.0, max_iter=1, max_eval=1_000_000, history_size=cfg.history_size,
            # Run the requested number of iterations: no early stop on tiny changes.
            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe",
        )
    return torch.optim.Adam([x], lr=cfg.lr or 0.02)


def _optimise(x: torch.Tensor, objective: _Objective, cfg: TransferConfig, on_iteration: Callable[[float], None]) -> LossTrace:
    """The iteration loop of one problem; the trace holds the loss after every iteration."""
    optimizer = _make_optimizer(x, cfg)
    trace = LossTrace()
    value, partials = objective.evaluate()
    trace.append(float(value), partials)
    last_good = x.detach().clone()
    for it in range(1, cfg.iterations + 1):
        try:
            if cfg.optimizer == "lbfgs":
                optimizer.step(objective.closure)
            else:
                objective.evaluate()
                optimizer.step()
            value, partials = objective.evaluate()  # the new point (a cache hit for L-BFGS)
        except NonFiniteLoss as exc:
            with torch.no_grad():
                x.copy_(last_good)
            trace.stopped = f"non-finite loss ({exc.args[0]}) during iteration {it}; kept iteration {it - 1}"
            break
        last_good.copy_(x.detach())
        trace.append(float(value), partials)
        on_iteration(float(value))
    return trace


def run_transfers(
    extractor: VGG19Features,
    problems: list[Problem],
    cfgs: list[TransferConfig],
    progress: bool = True,
    desc: str | None = None,
    fast: FastPath | None = None,
) -> list[TransferResult]:
    """Optimise B independent problems of equal object size and method in shared batches.

    Each problem keeps its own optimiser state; only the forward/backward passes are shared.
    With B = 1 this is a plain single transfer.
    """
    methods = {(c.method, tuple(c.content_layers), tuple(c.style_layers), c.nominal_scale) for c in cfgs}
    sizes = {p.size_hw for p in problems}
    if len(methods) != 1 or len(sizes) != 1:
        raise ValueError("a batch needs one method, one layer set and one object size")
    cfg0 = cfgs[0]
    targets = Targets.stack([build_targets(extractor, p, c) for p, c in zip(problems, cfgs)])
    kwargs = {"nominal_scale": cfg0.nominal_scale} if cfg0.method == "normalized" else {}
    loss = make_loss(cfg0.method, targets, [c.loss_weights() for c in cfgs], **kwargs)
    evaluator = BatchEvaluator(extractor, loss, fast)
    xs = [initial_image(p, c.init, c.seed).requires_grad_(True) for p, c in zip(problems, cfgs)]
    objectives = [_Objective(x, functools.partial(evaluator.evaluate, i)) for i, x in enumerate(xs)]
    traces: list[LossTrace | None] = [None] * len(problems)
    bar = tqdm(total=sum(c.iterations for c in cfgs), unit="it", disable=not progress, leave=False, dynamic_ncols=True,
               desc=desc or (f"{cfg0.method} λos={cfg0.lambda_os:g}" if len(cfgs) == 1 else f"batch of {len(cfgs)}"))

    def on_iteration(value: float) -> None:
        bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        bar.update(1)

    def worker(i: int) -> Callable[[], None]:
        def work() -> None:
            traces[i] = _optimise(xs[i], objectives[i], cfgs[i], on_iteration)
        return work

    start = time.perf_counter()
    evaluator.run([worker(i) for i in range(len(problems))])
    if xs[0].device.type == "cuda":
        torch.cuda.synchronize(xs[0].device)
    seconds = time.perf_counter() - start
    bar.close()
    return [
        TransferResult(image=x.detach(), trace=t, iterations=c.iterations, evaluations=o.evaluations,
                       seconds=seconds, device=str(x.device), batch_size=len(problems))
        for x, t, c, o in zip(xs, traces, cfgs, objectives)
    ]


def run_transfer(extractor: VGG19Features, problem: Problem, cfg: TransferConfig, progress: bool = True) -> TransferResult:
    """Optimise x from ``cfg.init`` for ``cfg.iterations`` iterations; trace every iteration."""
    return run_transfers(extractor, [problem], [cfg], progress)[0]
