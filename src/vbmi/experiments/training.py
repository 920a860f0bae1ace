"""Ensemble critic training on the MI staircase (Fig. 2, Table 3, Figs. 6-7 of the paper).

A *run* (:class:`RunSpec`) is one critic (+ whatever its bound learns: baseline ``q(y)``, MINE's EMA)
trained with Adam to maximise one bound on the Gaussian or cubic task while the true MI steps through
the staircase 2, 4, 6, 8, 10 nats, a fresh batch every step, recording the estimate at every step.

Ensembles, not loops
--------------------
Runs that share the critic's *shape* (critic type, batch size, hidden units, layers, activation,
embedding) train together as one batched model: weights stacked on a leading member dim
(:class:`vbmi.critics.BatchedLinear`, ``baddbmm``), scores ``[E, K, K]``, each member's bound evaluated
on its slice, loss = sum of member estimates, and a stacked Adam with a per-member learning rate.
Adam is elementwise and member e's estimate depends only on member e's weights, so member e follows
exactly the trajectory it would follow alone (:func:`train_loop` is that "alone" reference, written
the plain way: one model, one ``torch.optim.Adam``, a Python loop; tests compare the two).

Independence of members, and identity with a lone run of the same seed, rest on three rules:

* weights are initialised by building the *single* modules from the member's own generator (seeded
  from ``RunSpec.seed`` only) and stacking them (:func:`vbmi.critics.stack_modules`);
* data come from the member's own ``torch.Generator`` (seeded from ``RunSpec.seed`` only), drawn in
  blocks of ``data_block`` steps whose boundaries are fixed multiples of ``data_block`` (one
  ``randn`` call per member per block, not per step), the same in :func:`train_loop`;
* a member that diverges (non-finite estimate or scores) is frozen: its gradients are masked out of
  the optimiser and its estimate is NaN from that step on; ``diverged_step`` records where.

Evaluating the bound safely
---------------------------
Critic values reach |f| = 88-171 within 3,000 steps at 10 nats (issue 4), past float32's ``exp``
limit (88.7). Scores are therefore cast to float64 before the bound is evaluated (for the reported
value *and* the gradient; the cast is free next to the critic), so NWJ-type bounds stay finite
until |f| ~ 700. ``overflow_steps`` counts, per run, the steps at which max |f| exceeded 88.72, i.e.
where a float32 evaluation would have overflowed; ``max_abs_score`` records max |f| at every step.

Device and stacking
-------------------
``device="auto"`` (CUDA when available). ``stack="auto"`` stacks separable and known-p(y|x) runs
always and joint (concat) critics only on CUDA: on one CPU thread a stacked joint critic ran at
0.57x the per-run loop (issue 4), so there each joint run is its own group (still trained in lockstep).

Checkpoints
-----------
With ``checkpoint_path``, the full state (weights, Adam moments, MINE EMA buffers, per-member data
generator states, alive masks, step, records so far) is written atomically (``torch.save`` to a
temporary file + ``os.replace``) at data-block boundaries once ``checkpoint_every_s`` seconds have
passed, and loaded with ``torch.load(weights_only=True)``. A rerun after a kill resumes from it and
produces the same records as an uninterrupted run (blocks restart from the saved generator states).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..bounds import BOUNDS
from ..critics import make_critic, stack_modules
from ..data import MI_LEVELS, CubicTransform, gaussian_log_p_y_given_x, mi_schedule, mi_to_rho, sample_gaussian
from ..objectives import BoundObjective
from ..utils import resolve_device

__all__ = [
    "RunSpec",
    "TrainResult",
    "train_from_config",
    "StackedAdam",
    "train_ensemble",
    "train_loop",
    "result_to_dataset",
    "bench_specs",
    "train_stacked_steps",
    "train_loop_steps",
    "FLOAT32_EXP_LIMIT",
    "DATASETS",
    "CRITIC_TYPES",
]

log = logging.getLogger(__name__)

FLOAT32_EXP_LIMIT = math.log(torch.finfo(torch.float32).max)  # 88.72: exp overflows past this in float32
DATASETS = ("gaussian", "cubic")
CRITIC_TYPES = ("separable", "joint", "known")
BASELINE_HIDDEN, BASELINE_LAYERS = 512, 2  # the reference notebook's baseline MLP (2 x 512 ReLU)


@dataclass(frozen=True)
class RunSpec:
    """One training run. Defaults are the paper's Fig. 2 setting (App. B and the reference notebook).

    ``critic``: ``separable`` (``g(x)^T h(y)``), ``joint`` (MLP on ``[x, y]``, all K^2 pairs) or
    ``known`` (``f = log p(y|x)`` of the Gaussian task, for the Eq. 12 / Eq. 14 rows of Table 3; only a
    baseline ``q(y)`` is learned, if the bound has one). ``seed`` alone determines the run's
    initialisation and data stream, whatever ensemble it is trained in.
    """

    bound: str = "nce"
    alpha: float | None = None
    critic: str = "separable"
    hidden: int = 256  # units per hidden layer
    layers: int = 2  # hidden layers
    embed_dim: int = 32  # separable critics only
    activation: str = "relu"
    batch_size: int = 64
    lr: float = 5e-4
    dataset: str = "gaussian"
    seed: int = 0
    tau: float = 5.0  # SMILE's clip (Song & Ermon 2020)

    def __post_init__(self) -> None:
        bound = BOUNDS[self.bound]  # unknown names raise ValueError listing the valid ones
        if self.critic not in CRITIC_TYPES:
            raise ValueError(f"unknown critic {self.critic!r}; valid: {', '.join(CRITIC_TYPES)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASETS)}")
        if self.critic == "known" and self.dataset != "gaussian":
            raise ValueError("critic='known' (log p(y|x)) is only available on the gaussian task")
        if bound.input not in ("scores", "log_p"):
            raise ValueError(f"bound {self.bound!r} (input {bound.input}) cannot be trained on the staircase")
        if bound.input == "log_p" and self.critic != "known":
            raise ValueError(f"bound {self.bound!r} takes log p(y|x): use critic='known'")
        if self.batch_size < 2 or self.lr <= 0 or self.hidden < 1 or self.layers < 1:
            raise ValueError(f"invalid run: {self}")
        if bound.takes_alpha != (self.alpha is not None):
            raise ValueError(f"bound {self.bound!r} {'needs' if bound.takes_alpha else 'takes no'} alpha")

    @property
    def label(self) -> str:
        """The bound as shown in figures: ``nce``, ``interpolated_0.01``, ..."""
        return self.bound if self.alpha is None else f"{self.bound}_{self.alpha:g}"

    def group_key(self) -> tuple:
        """Runs with equal keys can be stacked into one batched model (same critic shape and batch)."""
        if self.critic == "known":
            return ("known", self.batch_size)
        shape = (self.critic, self.batch_size, self.hidden, self.layers, self.activation.lower())
        return shape + ((self.embed_dim,) if self.critic == "separable" else ())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """Per-run records of a training job. Arrays have a leading run dim in the order of ``specs``."""

    specs: list[RunSpec]
    true_mi: np.ndarray  # [S] nats
    estimate: np.ndarray  # [E, S] float64, NaN from the divergence step on
    max_abs_score: np.ndarray  # [E, S] max |f(x_i, y_j)| over the batch
    diverged_step: np.ndarray  # [E] int, -1 if the run never diverged
    overflow_steps: np.ndarray  # [E] int, steps with max |f| > 88.72 (float32 exp limit)
    steps_per_level: int
    levels: tuple[float, ...]
    device: str
    wall_s: float = 0.0
    resumed_from: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.true_mi.shape[0])


# ---------------------------------------------------------------------------------------------------
# Seeds, data, optimiser
# ---------------------------------------------------------------------------------------------------
def _derive_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seeds for a run's streams (0: initialisation, 1: data)."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0]) & (2**63 - 1)


class _DataStream:
    """One run's minibatches: a torch.Generator seeded from the run's seed, drawn ``block`` steps at a time."""

    def __init__(self, spec: RunSpec, rho: Tensor, cubic: CubicTransform | None, device: torch.device, d: int):
        self.spec, self.rho, self.cubic, self.device, self.d = spec, rho, cubic, device, d
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(_derive_seed(spec.seed, 1))

    def block(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Batches for steps ``start..stop-1``: ``x, y`` of shape ``[stop - start, K, d]``."""
        x, y = sample_gaussian(self.spec.batch_size, rho=self.rho[start:stop], d=self.d, generator=self.generator,
                               device=self.device)
        if self.cubic is not None:
            y = self.cubic(y)
        return x, y


class StackedAdam:
    """Adam over stacked parameters ``[E, ...]`` with a per-member learning rate and an alive mask.

    Follows ``torch.optim.Adam``'s single-tensor update exactly (``lerp`` for the first moment, bias
    corrections applied as in torch), so a member equals a lone run with ``torch.optim.Adam``. Members
    with ``alive[e] = False`` get zero gradient and no update (their moments stay finite).
    """

    def __init__(self, params: Sequence[Tensor], lr: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, members: Sequence[slice] | None = None) -> None:
        self.params = list(params)
        self.lr = lr  # [E]
        # Which members each parameter's leading dim holds (a bound's baseline covers only its sub-ensemble).
        self.members = list(members) if members is not None else [slice(None)] * len(self.params)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._uniform_lr: float | bool | None = None

    @torch.no_grad()
    def step(self, alive: Tensor) -> None:
        self.step_count += 1
        bc1 = 1 - self.beta1**self.step_count
        bc2_sqrt = math.sqrt(1 - self.beta2**self.step_count)
        # Host-side shortcuts (no device sync on CUDA): mask only when a member may be frozen, and use
        # torch's exact scalar update when every member has the same learning rate.
        all_alive = alive.device.type == "cpu" and bool(alive.all())
        if self._uniform_lr is None:
            self._uniform_lr = float(self.lr[0]) if bool((self.lr == self.lr[0]).all()) else False
        for p, m, v, sl in zip(self.params, self.exp_avg, self.exp_avg_sq, self.members):
            if p.grad is None:
                continue
            view = (-1,) + (1,) * (p.ndim - 1)
            g = p.grad
            if not all_alive:
                g = torch.where(alive[sl].view(view), g, torch.zeros((), dtype=p.dtype, device=p.device))
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = v.sqrt().div_(bc2_sqrt).add_(self.eps)
            if all_alive and self._uniform_lr is not False:
                p.addcdiv_(m, denom, value=-self._uniform_lr / bc1)  # torch.optim.Adam's update
            else:
                step_size = (self.lr[sl] * alive[sl]).to(p.dtype).view(view) / bc1  # 0 for frozen members
                p.addcdiv_(m * step_size, denom, value=-1.0)

    def state(self) -> dict:
        return {"step_count": self.step_count, "exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq)}

    def load(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, list(state["exp_avg"]) + list(state["exp_avg_sq"])):
            dst.copy_(src)


# ---------------------------------------------------------------------------------------------------
# Single modules (shared by the ensemble's initialisation and the plain loop)
# ---------------------------------------------------------------------------------------------------
def _critic_kwargs(spec: RunSpec) -> dict:
    kw = dict(hidden=spec.hidden, layers=spec.layers, activation=spec.activation)
    if spec.critic == "separable":
        kw["embed_dim"] = spec.embed_dim
    return kw


def _single_modules(spec: RunSpec, d: int) -> tuple[nn.Module | None, BoundObjective]:
    """The run's critic (None for ``known``) and objective, initialised from the run's own generator."""
    g = torch.Generator().manual_seed(_derive_seed(spec.seed, 0))
    critic = None if spec.critic == "known" else make_critic(spec.critic, d, d, generator=g, **_critic_kwargs(spec))
    objective = BoundObjective(spec.bound, y_dim=d, alpha=spec.alpha, generator=g, tau=spec.tau,
                               baseline_kwargs=_baseline_kwargs(spec))
    return critic, objective


def _baseline_kwargs(spec: RunSpec) -> dict | None:
    needs = BOUNDS[spec.bound].baseline == "required" or (BOUNDS[spec.bound].baseline == "optional"
                                                          and spec.alpha is not None and spec.alpha < 1)
    if not needs or spec.bound == "mine":
        return None
    return dict(hidden=BASELINE_HIDDEN, layers=BASELINE_LAYERS)


def _use_float64_ema(objective: BoundObjective) -> None:
    if objective.name == "mine":
        objective.mine_log_ema = objective.mine_log_ema.to(torch.float64)


# ---------------------------------------------------------------------------------------------------
# A group of stacked runs
# ---------------------------------------------------------------------------------------------------
class _Group:
    """Runs sharing a critic shape, trained as one batched model."""

    def __init__(self, members: list[int], specs: list[RunSpec], d: int, device: torch.device, rho: Tensor) -> None:
        self.members = members
        self.specs = [specs[i] for i in members]
        self.device, self.d, self.rho = device, d, rho
        e = len(members)
        self.kind = self.specs[0].critic
        singles = [_single_modules(s, d) for s in self.specs]
        self.critic = None if self.kind == "known" else stack_modules([c for c, _ in singles]).to(device)
        # Contiguous sub-ensembles that share a bound (and alpha): one stacked BoundObjective each.
        self.subgroups: list[tuple[int, int, BoundObjective]] = []
        start = 0
        while start < e:
            stop = start
            key = (self.specs[start].bound, self.specs[start].alpha, self.specs[start].tau)
            while stop < e and (self.specs[stop].bound, self.specs[stop].alpha, self.specs[stop].tau) == key:
                stop += 1
            first = singles[start][1]
            throwaway = torch.Generator().manual_seed(0)  # weights replaced by the stacked singles below
            obj = BoundObjective(first.name, y_dim=d, alpha=first.alpha, ensemble=stop - start, tau=first.tau,
                                 baseline_kwargs=_baseline_kwargs(self.specs[start]), generator=throwaway)
            if first.baseline is not None:
                obj.baseline = stack_modules([singles[i][1].baseline for i in range(start, stop)])
            obj = obj.to(device)
            _use_float64_ema(obj)
            obj.train()
            self.subgroups.append((start, stop, obj))
            start = stop
        owned = list(self._modules_params())
        self.params = [p for p, _ in owned]
        lr = torch.tensor([s.lr for s in self.specs], dtype=torch.float64, device=device)
        self.optimizer = StackedAdam(self.params, lr, members=[sl for _, sl in owned])
        self.alive = torch.ones(e, dtype=torch.bool, device=device)
        self.diverged_step = torch.full((e,), -1, dtype=torch.long, device=device)
        self.data: tuple[Tensor, Tensor] | None = None
        self.block_start = 0

    def _modules_params(self) -> Iterable[tuple[Tensor, slice]]:
        if self.critic is not None:
            for p in self.critic.parameters():
                yield p, slice(None)
        for a, b, obj in self.subgroups:
            for p in obj.parameters():
                yield p, slice(a, b)

    def load_block(self, streams: list[_DataStream], start: int, stop: int) -> None:
        xs, ys = zip(*(streams[i].block(start, stop) for i in self.members))
        self.data = (torch.stack(xs), torch.stack(ys))  # [E, T, K, d] each
        self.block_start = start

    def scores(self, x: Tensor, y: Tensor, step: int) -> Tensor:
        """Float64 scores ``[E, K, K]`` (the critic runs in float32)."""
        if self.kind == "known":
            return gaussian_log_p_y_given_x(x.double(), y.double(), self.rho[step].to(torch.float64))
        s32 = self.critic(x, y)  # [E, K, K]
        s32.register_hook(self._check_score_grad)
        return s32.double()

    def _check_score_grad(self, g: Tensor) -> Tensor:
        """Backward hook on the float32 scores: a float64 gradient that overflowed float32 (|f| past
        ~97 in an exp term) marks its member diverged; the member's gradient is zeroed."""
        ok = torch.isfinite(g).flatten(-2).all(-1)  # [E]
        self._grad_ok = ok
        return torch.where(ok.view(-1, 1, 1), g, torch.zeros((), dtype=g.dtype, device=g.device))

    def step(self, step: int) -> tuple[Tensor, Tensor]:
        t = step - self.block_start
        x, y = self.data[0][:, t], self.data[1][:, t]  # [E, K, d]
        scores = self.scores(x, y, step)  # [E, K, K] float64
        est = torch.cat([obj(scores[a:b], y[a:b]) for a, b, obj in self.subgroups])  # [E]
        max_abs = scores.detach().abs().amax(dim=(-2, -1))  # [E]
        bad = ~torch.isfinite(est.detach()) | ~torch.isfinite(max_abs)
        newly = bad & self.alive
        self.diverged_step = torch.where(newly, torch.full_like(self.diverged_step, step), self.diverged_step)
        self.alive = self.alive & ~bad
        if self.params:
            loss = -torch.where(self.alive, est, torch.zeros((), dtype=est.dtype, device=est.device)).sum()
            for p in self.params:
                p.grad = None
            self._grad_ok = None
            loss.backward()
            if self._grad_ok is not None:
                newly = ~self._grad_ok & self.alive
                self.diverged_step = torch.where(newly, torch.full_like(self.diverged_step, step),
                                                 self.diverged_step)
                self.alive = self.alive & self._grad_ok
            self.optimizer.step(self.alive)
        value = torch.where(self.alive, est.detach(), torch.full_like(est.detach(), float("nan")))
        return value, max_abs

    # -- checkpoint state (tensors, lists and numbers only, for torch.load(weights_only=True)) --------
    def state(self) -> dict:
        return {
            "critic": None if self.critic is None else self.critic.state_dict(),
            "objectives": [obj.state_dict() for _, _, obj in self.subgroups],
            "optimizer": self.optimizer.state(),
            "alive": self.alive,
            "diverged_step": self.diverged_step,
        }

    def load(self, state: dict) -> None:
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        for (_, _, obj), sd in zip(self.subgroups, state["objectives"]):
            if obj.name == "mine":
                obj.mine_log_ema = sd["mine_log_ema"].to(self.device, torch.float64)
            obj.load_state_dict(sd)
        self.optimizer.load(state["optimizer"])
        self.alive = state["alive"].to(self.device)
        self.diverged_step = state["diverged_step"].to(self.device)


def _groups(specs: Sequence[RunSpec], stack: bool | str, device: torch.device) -> list[list[int]]:
    if stack == "auto":
        stack_joint = device.type == "cuda"
    elif isinstance(stack, bool):
        stack_joint = stack
    else:
        raise ValueError(f"stack must be True, False or 'auto', got {stack!r}")
    order: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        solo = stack is False or (s.critic == "joint" and not stack_joint)
        key = ("solo", i) if solo else s.group_key()
        order.setdefault(key, []).append(i)
    groups = []
    for members in order.values():  # members of one bound/alpha next to each other: fewer sub-objectives
        members.sort(key=lambda i: (specs[i].bound, specs[i].alpha or 0.0, specs[i].tau, i))
        groups.append(members)
    return groups


def _fingerprint(specs: Sequence[RunSpec], **kw) -> str:
    blob = json.dumps({"specs": [s.to_dict() for s in specs], **kw}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _atomic_save(obj: dict, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _schedule(steps_per_level: int, levels: Sequence[float], d: int) -> tuple[Tensor, Tensor]:
    true_mi = mi_schedule(steps_per_level, levels)  # [S] float64
    return true_mi, mi_to_rho(true_mi, d)


def train_ensemble(
    specs: Sequence[RunSpec],
    *,
    steps_per_level: int,
    levels: Sequence[float] = MI_LEVELS,
    d: int = 20,
    cubic_seed: int = 0,
    cubic_weight_std: float = 1.0,
    device: str | torch.device = "auto",
    stack: bool | str = "auto",
    data_block: int = 50,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every_s: float = 300.0,
    keep_checkpoint: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult | None:
    """Train every run of ``specs`` on the staircase, stacked into batched groups; return the records.

    Args:
        specs: the runs; records come back in this order.
        steps_per_level: training steps at each MI level (the notebook: 4000).
        levels: the staircase in nats.
        d: dimension of x and y (20 in the paper).
        cubic_seed: seed of the cubic task's ``W`` (shared by every cubic run: it defines the task).
        cubic_weight_std: std of ``W``'s entries (see :class:`vbmi.data.CubicTransform`).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        stack: ``True`` stacks every group, ``False`` trains each run as its own group, ``auto`` stacks
            separable/known critics always and joint critics only on CUDA (see module docstring).
        data_block: steps of data drawn per generator call (block boundaries are multiples of it).
        checkpoint_path: where to save/resume the state; ``None`` disables checkpoints.
        checkpoint_every_s: minimum seconds between checkpoints (written at block boundaries).
        keep_checkpoint: keep the checkpoint file after success (default: delete it).
        progress: show a tqdm bar (steps/s, ETA) on stderr.
        stop_after: testing aid that simulates a kill: save a checkpoint at the first block boundary
            at or after this step and return ``None``.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("train_ensemble needs at least one RunSpec")
    if steps_per_level < 1 or data_block < 1:
        raise ValueError("steps_per_level and data_block must be >= 1")
    dev = resolve_device(device)
    true_mi, rho_cpu = _schedule(steps_per_level, levels, d)
    total = int(true_mi.shape[0])
    rho = rho_cpu.to(dev)
    cubic = CubicTransform(d, cubic_seed, weight_std=cubic_weight_std) if any(s.dataset == "cubic" for s in specs) else None
    streams = [_DataStream(s, rho.to(torch.float32), cubic if s.dataset == "cubic" else None, dev, d) for s in specs]
    groups = [_Group(m, specs, d, dev, rho) for m in _groups(specs, stack, dev)]
    e = len(specs)
    est_rec = torch.full((e, total), float("nan"), dtype=torch.float64, device=dev)
    max_rec = torch.full((e, total), float("nan"), dtype=torch.float32, device=dev)
    fp = _fingerprint(specs, steps_per_level=steps_per_level, levels=list(levels), d=d, cubic_seed=cubic_seed,
                      cubic_weight_std=cubic_weight_std, data_block=data_block)
    start_step = 0
    ckpt = pathlib.Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fp:
            log.warning("ignoring checkpoint %s: it belongs to a different set of runs or schedule", ckpt)
        else:
            start_step = int(state["step"])
            for grp, gs in zip(groups, state["groups"]):
                grp.load(gs)
            for stream, gstate in zip(streams, state["generators"]):
                stream.generator.set_state(gstate)
            est_rec[:, :start_step] = state["estimate"].to(dev)
            max_rec[:, :start_step] = state["max_abs_score"].to(dev)
            log.info("resumed from %s at step %d / %d", ckpt, start_step, total)

    def save(step: int) -> None:
        _atomic_save({
            "fingerprint": fp,
            "step": step,
            "groups": [g.state() for g in groups],
            "generators": [s.generator.get_state() for s in streams],
            "estimate": est_rec[:, :step].cpu(),
            "max_abs_score": max_rec[:, :step].cpu(),
        }, ckpt)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=start_step, unit="step", file=sys.stderr, dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0, desc=f"{e} runs / {len(groups)} groups")
    member_idx = [torch.as_tensor(g.members, device=dev) for g in groups]
    t0 = last_ckpt = time.monotonic()
    step = start_step
    while step < total:
        if step % data_block == 0 or step == start_step:
            if ckpt is not None and step > start_step and (
                time.monotonic() - last_ckpt >= checkpoint_every_s or (stop_after is not None and step >= stop_after)
            ):
                save(step)
                last_ckpt = time.monotonic()
                if stop_after is not None and step >= stop_after:
                    if bar is not None:
                        bar.close()
                    return None
            stop = min(total, (step // data_block + 1) * data_block)
            for grp in groups:
                grp.load_block(streams, step, stop)
        for grp, idx in zip(groups, member_idx):
            value, max_abs = grp.step(step)
            est_rec[idx, step] = value
            max_rec[idx, step] = max_abs.to(torch.float32)
        step += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    wall = time.monotonic() - t0
    diverged = torch.full((e,), -1, dtype=torch.long)
    for grp in groups:
        diverged[grp.members] = grp.diverged_step.cpu()
    max_np = max_rec.cpu().numpy()
    result = TrainResult(
        specs=specs, true_mi=true_mi.numpy(), estimate=est_rec.cpu().numpy(), max_abs_score=max_np,
        diverged_step=diverged.numpy(), overflow_steps=(np.nan_to_num(max_np, nan=0.0) > FLOAT32_EXP_LIMIT).sum(1),
        steps_per_level=steps_per_level, levels=tuple(float(v) for v in levels), device=str(dev), wall_s=wall,
        resumed_from=start_step,
        meta={"groups": len(groups), "stack": str(stack), "data_block": data_block, "cubic_seed": cubic_seed, "d": d,
              "cubic_weight_std": cubic_weight_std,
              "steps_per_s": (total - start_step) / wall if wall > 0 else float("nan")},
    )
    if ckpt is not None and not keep_checkpoint:
        ckpt.unlink(missing_ok=True)
    return result


def train_from_config(specs: Sequence[RunSpec], cfg: dict, *, device: str | torch.device,
                      checkpoint_path: str | os.PathLike | None) -> TrainResult:
    """:func:`train_ensemble` with the schedule, task and checkpoint knobs of a pipeline config section
    (``training`` or ``sweep``: ``steps_per_level``, ``levels``, ``cubic_seed``, ``cubic_weight_std``,
    ``data_block``, ``checkpoint_every_s``)."""
    return train_ensemble(
        specs,
        steps_per_level=cfg["steps_per_level"],
        levels=cfg["levels"],
        cubic_seed=cfg["cubic_seed"],
        cubic_weight_std=cfg["cubic_weight_std"],
        device=device,
        data_block=cfg["data_block"],
        checkpoint_path=checkpoint_path,
        checkpoint_every_s=cfg["checkpoint_every_s"],
    )


def train_loop(
    specs: Sequence[RunSpec],
    *,
    steps_per_level: int,
    levels: Sequence[float] = MI_LEVELS,
    d: int = 20,
    cubic_seed: int = 0,
    cubic_weight_std: float = 1.0,
    device: str | torch.device = "auto",
    data_block: int = 50,
) -> TrainResult:
    """The same runs trained one at a time, the reference notebook's way: one model, one
    ``torch.optim.Adam``, a Python loop over steps. Same initialisation, data and float64 evaluation as
    :func:`train_ensemble`, so the two agree to float tolerance (the test) and can be timed against
    each other (``bench/``). A run stops at its first non-finite estimate (recorded as diverged).
    """
    specs = list(specs)
    dev = resolve_device(device)
    true_mi, rho_cpu = _schedule(steps_per_level, levels, d)
    total = int(true_mi.shape[0])
    rho = rho_cpu.to(dev)
    cubic = CubicTransform(d, cubic_seed, weight_std=cubic_weight_std) if any(s.dataset == "cubic" for s in specs) else None
    est = np.full((len(specs), total), np.nan)
    max_abs = np.full((len(specs), total), np.nan, dtype=np.float32)
    diverged = np.full(len(specs), -1, dtype=np.int64)
    t0 = time.monotonic()
    for r, spec in enumerate(specs):
        critic, objective = _single_modules(spec, d)
        critic = None if critic is None else critic.to(dev)
        objective = objective.to(dev)
        _use_float64_ema(objective)
        objective.train()
        params = ([] if critic is None else list(critic.parameters())) + list(objective.parameters())
        opt = torch.optim.Adam(params, lr=spec.lr, foreach=False) if params else None
        stream = _DataStream(spec, rho.to(torch.float32), cubic if spec.dataset == "cubic" else None, dev, d)
        for step in range(total):
            if step % data_block == 0:
                xb, yb = stream.block(step, min(total, step + data_block))
            x, y = xb[step % data_block], yb[step % data_block]  # [K, d]
            scores32 = None
            if critic is None:
                scores = gaussian_log_p_y_given_x(x.double(), y.double(), rho[step].to(torch.float64))
            else:
                scores32 = critic(x, y)  # [K, K]
                scores32.retain_grad()
                scores = scores32.double()
            value = objective(scores, y)
            max_abs[r, step] = float(scores.detach().abs().max())
            value_f = float(value.detach())
            if not math.isfinite(value_f) or not math.isfinite(max_abs[r, step]):
                diverged[r] = step
                break
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                (-value).backward()
                if scores32 is not None and not bool(torch.isfinite(scores32.grad).all()):
                    diverged[r] = step  # the float64 gradient overflowed float32 (as the ensemble's hook)
                    break
                opt.step()
            est[r, step] = value_f
    wall = time.monotonic() - t0
    return TrainResult(
        specs=specs, true_mi=true_mi.numpy(), estimate=est, max_abs_score=max_abs, diverged_step=diverged,
        overflow_steps=(np.nan_to_num(max_abs, nan=0.0) > FLOAT32_EXP_LIMIT).sum(1), steps_per_level=steps_per_level,
        levels=tuple(float(v) for v in levels), device=str(dev), wall_s=wall,
        meta={"data_block": data_block, "cubic_seed": cubic_seed, "d": d,
              "steps_per_s": total * len(specs) / wall if wall > 0 else float("nan")},
    )


# ---------------------------------------------------------------------------------------------------
# Results as xarray datasets (written by vbmi.results.write_cube in the workflow scripts)
# ---------------------------------------------------------------------------------------------------
SPEC_COORDS = ("bound", "alpha", "bound_label", "critic", "hidden", "layers", "embed_dim", "activation",
               "batch_size", "lr", "dataset", "seed")


def result_to_dataset(result: TrainResult, *, labels: Sequence[str] | None = None, extra_attrs: dict | None = None):
    """The records of ``result`` as an :class:`xarray.Dataset` with dims ``config`` x ``step``.

    Every :class:`RunSpec` field is a coordinate along ``config`` (``alpha`` is NaN for bounds without
    one; ``bound_label`` is e.g. ``interpolated_0.01``); ``true_mi(step)`` and ``mi_level(step)`` (index
    of the staircase level) are coordinates.
    """
    import xarray as xr

    e, s = result.estimate.shape
    labels = list(labels) if labels is not None else [f"c{i:05d}" for i in range(e)]
    spec_coords = {
        "bound": [x.bound for x in result.specs],
        "alpha": [np.nan if x.alpha is None else float(x.alpha) for x in result.specs],
        "bound_label": [x.label for x in result.specs],
        "critic": [x.critic for x in result.specs],
        "hidden": [x.hidden for x in result.specs],
        "layers": [x.layers for x in result.specs],
        "embed_dim": [x.embed_dim for x in result.specs],
        "activation": [x.activation for x in result.specs],
        "batch_size": [x.batch_size for x in result.specs],
        "lr": [x.lr for x in result.specs],
        "dataset": [x.dataset for x in result.specs],
        "seed": [x.seed for x in result.specs],
    }
    coords = {"config": labels, "step": np.arange(s)}
    coords.update({k: ("config", np.asarray(v)) for k, v in spec_coords.items()})
    coords["true_mi"] = ("step", result.true_mi.astype(np.float64), {"units": "nat", "long_name": "true mutual information"})
    coords["mi_level"] = ("step", np.arange(s) // result.steps_per_level)
    ds = xr.Dataset(
        {
            "estimate": (("config", "step"), result.estimate, {
                "units": "nat", "long_name": "MI estimate",
                "description": "the bound's value on the training batch at each step (float64 evaluation); "
                               "NaN from the step a run diverged"}),
            "max_abs_score": (("config", "step"), result.max_abs_score, {
                "units": "nat", "long_name": "max |f(x, y)|",
                "description": "largest critic value magnitude over the K x K batch scores at each step"}),
            "diverged_step": ("config", result.diverged_step.astype(np.int64), {
                "units": "1", "long_name": "divergence step",
                "description": "first step with a non-finite estimate, scores or score gradient "
                               "(the run is frozen from then on); -1 if it never diverged"}),
            "overflow_steps": ("config", np.asarray(result.overflow_steps, dtype=np.int64), {
                "units": "1", "long_name": "float32 overflow steps",
                "description": "steps at which max |f| exceeded 88.72, where exp overflows float32 "
                               "(a float32 evaluation of NWJ-type bounds would be non-finite)"}),
        },
        coords=coords,
    )
    ds.attrs.update({
        "steps_per_level": int(result.steps_per_level),
        "levels": np.asarray(result.levels, dtype=np.float64),
        # timing_* attrs are wall-clock measurements, excluded from rerun identity (vbmi.results.drop_timings)
        "timing_wall_s": float(result.wall_s),
        "timing_steps_per_s": float(result.meta.get("steps_per_s", np.nan)),
        "train_device": result.device,
    })
    if extra_attrs:
        ds.attrs.update(extra_attrs)
    return ds


# ---------------------------------------------------------------------------------------------------
# Entry points for bench/: the same runs, stacked vs one at a time
# ---------------------------------------------------------------------------------------------------
def bench_specs(n: int, *, critic: str = "separable", bound: str = "nce", batch_size: int = 64, hidden: int = 256,
                layers: int = 2, seed: int = 0) -> list[RunSpec]:
    """``n`` configurations that share a critic shape (so they stack into one group): distinct seeds and
    learning rates spread over 1e-4..1e-3, the paper's Fig. 2 architecture by default."""
    lrs = np.geomspace(1e-4, 1e-3, n) if n > 1 else [5e-4]
    return [RunSpec(bound=bound, critic=critic, batch_size=batch_size, hidden=hidden, layers=layers, lr=float(lr),
                    seed=seed + i) for i, lr in enumerate(lrs)]


def train_stacked_steps(specs: Sequence[RunSpec], steps: int, *, device: str | torch.device = "auto",
                        mi: float = 2.0) -> TrainResult:
    """Train ``specs`` as stacked ensembles (joint critics too) for ``steps`` steps at one MI level."""
    return train_ensemble(specs, steps_per_level=steps, levels=(mi,), device=device, stack=True, progress=False)


def train_loop_steps(specs: Sequence[RunSpec], steps: int, *, device: str | torch.device = "auto",
                     mi: float = 2.0) -> TrainResult:
    """The same runs one at a time (:func:`train_loop`): one model, one ``torch.optim.Adam``, a Python loop."""
    return train_loop(specs, steps_per_level=steps, levels=(mi,), device=device)
