"""Ensemble critic training on the MI staircase (Fig. 2, Table 3, Figs. 6-7 of the paper).

A *run* (:class:`~vbmi.experiments.plan.RunSpec`) is one critic (+ whatever its bound learns: baseline
``q(y)``, MINE's EMA) trained with Adam to maximise one bound on the Gaussian or cubic task while the
true MI steps through the staircase 2, 4, 6, 8, 10 nats, a fresh batch every step, recording the
estimate at every step. Which runs exist is planned in :mod:`vbmi.experiments.plan` (torch-free); the
stepping, freezing, progress and checkpoints are the one engine's (:mod:`vbmi.train`).

Ensembles, not loops
--------------------
Runs that share the critic's *shape* (critic type, batch size, hidden units, layers, activation,
embedding) train together as one batched model: weights stacked on a leading member dim
(:class:`vbmi.critics.BatchedLinear`, ``baddbmm``), scores ``[E, K, K]``, each member's bound evaluated
on its slice, loss = sum of member estimates, and a stacked Adam with a per-member learning rate.
Adam is elementwise and member e's estimate depends only on member e's weights, so member e follows
exactly the trajectory it would follow alone (``bench/training.py`` holds that "alone" reference,
written the plain way: one model, one ``torch.optim.Adam``, a Python loop; tests compare the two).

Independence of members, and identity with a lone run of the same seed, rest on three rules:

* weights are initialised by building the *single* modules from the member's own generator (seeded
  from ``RunSpec.seed`` only) and stacking them (:func:`vbmi.critics.stack_modules`);
* data come from the member's own ``torch.Generator`` (seeded from ``RunSpec.seed`` only), drawn in
  blocks of ``data_block`` steps whose boundaries are fixed multiples of ``data_block`` (one
  ``randn`` call per member per block, not per step);
* a member that diverges is frozen by the engine: its gradients are masked out of the optimiser and
  its estimate is NaN from that step on; ``diverged_step`` records where. Diverged means a non-finite
  estimate, scores or score gradient, or an estimate outside the range the bound can take on the
  staircase (:func:`vbmi.bounds.plausible_range` with the batch size, alpha and the staircase's
  largest MI: e.g. InfoNCE above log K, or any bound thousands of nats below zero).

Evaluating the bound safely
---------------------------
Critic values reach |f| = 88-171 within 3,000 steps at 10 nats, past float32's ``exp`` limit (88.7).
Scores are therefore cast to float64 before the bound is evaluated (for the reported value *and* the
gradient; the cast is cheap next to the critic), so NWJ-type bounds stay finite until |f| ~ 700.
``overflow_steps`` counts, per run, the steps at which max |f| exceeded 88.72, i.e. where a float32
evaluation would have overflowed; ``max_abs_score`` records max |f| at every step (read off the
float32 scores, of which the float64 ones are an exact copy).

Device and stacking
-------------------
``device="auto"`` (CUDA when available). ``stack="auto"`` stacks separable and known-p(y|x) runs
always and joint critics only on CUDA: on one CPU thread a stacked joint critic ran at 0.57x the
per-run loop, so there each joint run is its own group (still trained in lockstep).

Checkpoints
-----------
With ``checkpoint_path``, the full state (weights, Adam moments, MINE EMA buffers, per-member data
generator states, alive masks, records so far) is saved by :mod:`vbmi.train.checkpoint` (atomic,
fingerprinted by the runs, the schedule and the code) at data-block boundaries once
``checkpoint_every_s`` seconds have passed, and once more when training ends (a kill before the cube is
written then costs no training). A rerun after a kill resumes from it and produces the same
records as an uninterrupted run; a checkpoint of other runs, or a damaged one, is reported by path and
training starts from step 0. The checkpoint is *not* removed here: the caller removes it once the cube
that depends on it is written (:func:`vbmi.train.checkpoint.removed_on_success`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..bounds import plausible_range
from ..critics import make_critic, stack_modules
from ..data import MI_LEVELS, CubicTransform, gaussian_log_p_y_given_x, mi_schedule, mi_to_rho, sample_gaussian
from ..objectives import BoundObjective
from ..train import checkpoint as ckpt_io
from ..train.engine import Checkpointing, Engine, StackedAdam
from ..utils import resolve_device
from .plan import CRITIC_TYPES, DATASETS, RunSpec

log = logging.getLogger(__name__)

__all__ = [
    "RunSpec",
    "TrainResult",
    "train_from_config",
    "StackedAdam",
    "train_ensemble",
    "result_to_dataset",
    "FLOAT32_EXP_LIMIT",
    "DATASETS",
    "CRITIC_TYPES",
]

FLOAT32_EXP_LIMIT = math.log(torch.finfo(torch.float32).max)  # 88.72: exp overflows past this in float32
BASELINE_HIDDEN, BASELINE_LAYERS = 512, 2  # the reference notebook's baseline MLP (2 x 512 ReLU)
# Joint critics evaluate rows of the K x K scores in checkpointed chunks of at most this many hidden
# activations (vbmi.critics.JointCritic). 2**26 float32 = 256 MiB per activation tensor: a lone
# 2 x 256 critic at batch 512 runs unchunked (~1.1 GiB peak, what a plain loop needs too) instead of
# recomputing its forward pass in backward (measured 0.86x the plain loop's speed with 2**24).
JOINT_CHUNK_ELEMENTS = 2**26


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
# Seeds, data
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


def _critic_kwargs(spec: RunSpec) -> dict:
    kw = dict(hidden=spec.hidden, layers=spec.layers, activation=spec.activation)
    if spec.critic == "separable":
        kw["embed_dim"] = spec.embed_dim
    else:
        kw["max_chunk_elements"] = JOINT_CHUNK_ELEMENTS
    return kw


def _single_modules(spec: RunSpec, d: int) -> tuple[nn.Module | None, BoundObjective]:
    """The run's critic (None for ``known``) and objective, initialised from the run's own generator."""
    g = torch.Generator().manual_seed(_derive_seed(spec.seed, 0))
    critic = None if spec.critic == "known" else make_critic(spec.critic, d, d, generator=g, **_critic_kwargs(spec))
    objective = BoundObjective(spec.bound, y_dim=d, alpha=spec.alpha, generator=g, tau=spec.tau,
                               baseline_kwargs=_baseline_kwargs(spec))
    return critic, objective


def _baseline_kwargs(spec: RunSpec) -> dict | None:
    return dict(hidden=BASELINE_HIDDEN, layers=BASELINE_LAYERS) if spec.learns_baseline else None


def _use_float64_ema(objective: BoundObjective) -> None:
    if objective.name == "mine":
        objective.mine_log_ema = objective.mine_log_ema.to(torch.float64)


# ---------------------------------------------------------------------------------------------------
# A group of stacked runs
# ---------------------------------------------------------------------------------------------------
class _Group:
    """Runs sharing a critic shape, trained as one batched model.

    ``offset`` is where the group's members start in the engine's member order (groups are contiguous
    there); ``members`` are their indices in the caller's ``specs``.
    """

    def __init__(self, members: list[int], specs: list[RunSpec], d: int, device: torch.device, rho: Tensor,
                 offset: int) -> None:
        self.members = members
        self.specs = [specs[i] for i in members]
        self.device, self.d, self.rho = device, d, rho
        self.span = slice(offset, offset + len(members))
        e = len(members)
        self.kind = self.specs[0].critic
        singles = [_single_modules(s, d) for s in self.specs]
        # A lone run keeps its single modules (plain nn.Linear: no member dim to carry through every op).
        self.lone = e == 1
        self.subgroups: list[tuple[int, int, BoundObjective]] = []
        if self.lone:
            critic, obj = singles[0]
            self.critic = None if critic is None else critic.to(device)
            obj = obj.to(device)
            _use_float64_ema(obj)
            obj.train()
            self.subgroups.append((0, 1, obj))
        else:
            self.critic = None if self.kind == "known" else stack_modules([c for c, _ in singles]).to(device)
        # Contiguous sub-ensembles that share a bound (and alpha): one stacked BoundObjective each.
        start = 0
        while start < e and not self.lone:
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
        self.sizes = [b - a for a, b, _ in self.subgroups]
        self.data: tuple[Tensor, Tensor] | None = None
        self.block_start = 0
        self.engine: Engine | None = None

    def params(self) -> list[tuple[Tensor, slice]]:
        """Trained tensors with the engine members their leading dim holds."""
        out = []
        if self.critic is not None:
            out += [(p, self.span) for p in self.critic.parameters()]
        base = self.span.start
        for a, b, obj in self.subgroups:
            out += [(p, slice(base + a, base + b)) for p in obj.parameters()]
        return out

    def load_block(self, streams: list[_DataStream], start: int, stop: int) -> None:
        xs, ys = zip(*(streams[i].block(start, stop) for i in self.members))
        self.data = (torch.stack(xs), torch.stack(ys))  # [E, T, K, d] each
        self.block_start = start

    def _check_score_grad(self, g: Tensor) -> Tensor:
        """Backward hook on the float32 scores: a float64 gradient that overflowed float32 (|f| past
        ~97 in an exp term) marks its member diverged; the member's gradient is zeroed.

        A finite sum proves every entry finite (inf and NaN never cancel back to a finite sum), so the
        elementwise check runs only when the sum is not finite."""
        if g.device.type == "cpu" and math.isfinite(g.sum().item()):
            return g
        ok = torch.isfinite(g).flatten(-2).all(-1).reshape(-1)  # [E]
        self.engine.report_bad_gradient(ok, self.span)
        return torch.where(ok.view((-1,) + (1,) * (g.ndim - 1)) if g.ndim == 3 else ok.reshape(()), g,
                           torch.zeros((), dtype=g.dtype, device=g.device))

    def objective(self, step: int) -> tuple[Tensor, Tensor]:
        """The members' bound values ``[E]`` (float64, with graph) and max |f| ``[E]`` (float32) at ``step``."""
        t = step - self.block_start
        x, y = self.data[0][:, t], self.data[1][:, t]  # [E, K, d]
        if self.lone:
            return self._lone_objective(x[0], y[0], step)
        if self.kind == "known":
            scores = gaussian_log_p_y_given_x(x.double(), y.double(), self.rho[step].to(torch.float64))
            max_abs = scores.detach().abs().amax(dim=(-2, -1)).to(torch.float32)  # [E]
        else:
            s32 = self.critic(x, y)  # [E, K, K]
            if s32.requires_grad:
                s32.register_hook(self._check_score_grad)
            lo, hi = torch.aminmax(s32.detach().flatten(-2), dim=-1)  # max |f| = max(-min f, max f), exact
            max_abs = torch.maximum(-lo, hi)  # [E] (NaN propagates)
            scores = s32.double()  # [E, K, K] float64: the bound's value and gradient
        if len(self.subgroups) == 1:
            est = self.subgroups[0][2](scores, y)  # [E]
        else:  # split, not slice: one gradient copy for all sub-ensembles in backward
            parts = zip(scores.split(self.sizes), y.split(self.sizes), self.subgroups)
            est = torch.cat([obj(s, yy) for s, yy, (_, _, obj) in parts])  # [E]
        return est, max_abs

    def _lone_objective(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """:meth:`objective` of a one-run group on its single modules (``x, y: [K, d]``)."""
        obj = self.subgroups[0][2]
        if self.kind == "known":
            scores = gaussian_log_p_y_given_x(x.double(), y.double(), self.rho[step].to(torch.float64))  # [K, K]
            max_abs = scores.detach().abs().amax().to(torch.float32)
        else:
            s32 = self.critic(x, y)  # [K, K]
            if s32.requires_grad:
                s32.register_hook(self._check_score_grad)
            lo, hi = torch.aminmax(s32.detach())
            max_abs = torch.maximum(-lo, hi)
            scores = s32.double()
        return obj(scores, y).reshape(1), max_abs.reshape(1)

    # -- checkpoint state (tensors, lists and numbers only, for torch.load(weights_only=True)) --------
    def state(self) -> dict:
        return {
            "critic": None if self.critic is None else self.critic.state_dict(),
            "objectives": [obj.state_dict() for _, _, obj in self.subgroups],
        }

    def load(self, state: dict) -> None:
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        for (_, _, obj), sd in zip(self.subgroups, state["objectives"]):
            if obj.name == "mine":
                obj.mine_log_ema = sd["mine_log_ema"].to(self.device, torch.float64)
            obj.load_state_dict(sd)


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


def _schedule(steps_per_level: int, levels: Sequence[float], d: int) -> tuple[Tensor, Tensor]:
    true_mi = mi_schedule(steps_per_level, levels)  # [S] float64
    return true_mi, mi_to_rho(true_mi, d)


def _value_ranges(order: list[RunSpec], true_mi_max: float) -> tuple[list[float], list[float]]:
    """Per engine member, the range its estimate can take on this staircase (``vbmi.bounds.plausible_range``)."""
    ranges = [plausible_range(s.bound, batch_size=s.batch_size, alpha=s.alpha, true_mi_max=true_mi_max)
              for s in order]
    return [r[0] for r in ranges], [r[1] for r in ranges]


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
        checkpoint_path: where to save/resume the state; ``None`` disables checkpoints. The file is
            left in place: remove it once the result is written (``vbmi.train.checkpoint.remove``).
        checkpoint_every_s: minimum seconds between checkpoints (written at block boundaries).
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
    groups: list[_Group] = []
    for members in _groups(specs, stack, dev):
        groups.append(_Group(members, specs, d, dev, rho, offset=sum(len(g.members) for g in groups)))
    order = [i for g in groups for i in g.members]  # engine member m is specs[order[m]]
    e = len(specs)
    owned = [pm for g in groups for pm in g.params()]
    max_rec = torch.full((e, total), float("nan"), dtype=torch.float32, device=dev)
    engine = Engine(
        [p for p, _ in owned], members=e, lr=torch.tensor([specs[i].lr for i in order], dtype=torch.float64),
        param_members=[sl for _, sl in owned], lr_groups=[g.span for g in groups for _ in g.params()],
        value_range=_value_ranges([specs[i] for i in order], float(max(levels))), record_steps=total, device=dev,
    )
    for g in groups:
        g.engine = engine

    checkpointing = None
    if checkpoint_path is not None:
        fp = ckpt_io.fingerprint(specs=[s.to_dict() for s in specs], steps_per_level=steps_per_level,
                                 levels=[float(v) for v in levels], d=d, cubic_seed=cubic_seed,
                                 cubic_weight_std=cubic_weight_std, data_block=data_block, stack=str(stack),
                                 device=dev.type)
        checkpointing = Checkpointing(
            path=checkpoint_path, fingerprint=fp, every_s=checkpoint_every_s,
            boundary=lambda step: step % data_block == 0,
            extra_state=lambda: {
                "groups": [g.state() for g in groups],
                "generators": [s.generator.get_state() for s in streams],
                "max_abs_score": max_rec[:, :engine.step_count].cpu(),
            })
    start_step = 0
    extra = engine.resume(checkpointing) if checkpointing is not None else None
    if extra is not None:
        start_step = engine.step_count
        for grp, gs in zip(groups, extra["groups"]):
            grp.load(gs)
        for stream, gstate in zip(streams, extra["generators"]):
            stream.generator.set_state(gstate)
        max_rec[:, :start_step] = extra["max_abs_score"].to(dev)
        log.info("resumed from %s at step %d / %d", checkpoint_path, start_step, total)

    def step_fn(step: int) -> Tensor:
        if step % data_block == 0 or step == start_step:
            stop = min(total, (step // data_block + 1) * data_block)
            for grp in groups:
                grp.load_block(streams, step, stop)
        if len(groups) == 1:
            est, max_abs = groups[0].objective(step)
        else:
            outs = [grp.objective(step) for grp in groups]
            est, max_abs = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        max_rec[:, step].copy_(max_abs)
        if dev.type != "cpu" or not math.isfinite(max_abs.sum().item()):  # non-finite scores: diverged
            engine.freeze(~torch.isfinite(max_abs), step)
        return est

    outcome = engine.run(step_fn, start=start_step, stop=total, checkpointing=checkpointing, stop_at=stop_after,
                         progress=progress, desc=f"{e} runs / {len(groups)} groups")
    if outcome.interrupted:
        return None
    if checkpointing is not None and outcome.stop > outcome.start and outcome.stop == total:
        # The finished state, so that a job killed before its cube is written resumes at the end (not after
        # an early stop: every member frozen, where a resume would step once more).
        engine.save(checkpointing, engine.step_count)
    inverse = torch.empty(e, dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(e)  # specs[i] is engine member inverse[i]
    est_np = engine.history.cpu()[inverse].numpy()
    max_np = max_rec.cpu()[inverse].numpy()
    diverged = engine.diverged_step.cpu()[inverse].numpy()
    wall = outcome.wall_s
    return TrainResult(
        specs=specs, true_mi=true_mi.numpy(), estimate=est_np, max_abs_score=max_np,
        diverged_step=diverged, overflow_steps=(np.nan_to_num(max_np, nan=0.0) > FLOAT32_EXP_LIMIT).sum(1),
        steps_per_level=steps_per_level, levels=tuple(float(v) for v in levels), device=str(dev), wall_s=wall,
        resumed_from=start_step,
        meta={"groups": len(groups), "stack": str(stack), "data_block": data_block, "cubic_seed": cubic_seed, "d": d,
              "cubic_weight_std": cubic_weight_std,
              "steps_per_s": (total - start_step) / wall if wall > 0 else float("nan")},
    )


def train_from_config(specs: Sequence[RunSpec], cfg: dict, *, device: str | torch.device,
                      checkpoint_path: str | os.PathLike | None) -> TrainResult:
    """:func:`train_ensemble` with the schedule, task and checkpoint knobs of a pipeline config section
    (``training`` or ``sweep``: ``steps_per_level``, ``levels``, ``cubic_seed``, ``cubic_weight_std``,
    ``data_block``, ``checkpoint_every_s``). The checkpoint stays until the caller removes it."""
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
                "description": "first step with a non-finite estimate, scores or score gradient, or an "
                               "estimate outside the range the bound can take on this staircase "
                               "(vbmi.bounds.plausible_range); the run is frozen from then on and its "
                               "estimate is NaN; -1 if it never diverged"}),
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
