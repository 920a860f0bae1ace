"""The one training engine: E >= 1 members stepped together, frozen one by one when they diverge.

Every network vbmi trains (critic ensembles on the staircase, ``estimate_mi``'s critic, the dSprites
encoder) is driven by :class:`Engine`. What differs between them is a callback:

* ``step_fn(step) -> objective``: a tensor ``[E]`` (one value per member, with autograd graph) that the
  engine *maximises*; the caller draws its batch, runs its networks and evaluates its bound inside it,
  in whatever precision its recorded quantities need (the staircase evaluates bounds in float64).
* hooks ``hook(engine, step, value) -> bool``, called after each optimiser step with the detached
  values (NaN for frozen members): early stopping, dual (Lagrange multiplier) updates, evaluation on
  held-out data. A hook returning ``True`` ends training after that step.

The engine owns what is the same for all of them:

* **the optimiser**: :class:`StackedAdam` over parameters whose leading dim is the member dim
  (``torch.optim.Adam``'s arithmetic, a learning rate per member), or any ``torch.optim.Optimizer`` for
  a single member (``members=1``);
* **divergence**: a member is frozen at the first step whose objective is non-finite, fails the
  caller's ``plausible(step, value) -> bool[E]`` check (a value outside what the bound can take: see
  :func:`vbmi.bounds.plausible_range`), or whose gradient the caller reports non-finite
  (``Engine.report_bad_gradient``). A frozen member gets no gradient and no update from then on, its
  value is NaN, and ``diverged_step[e]`` records the step;
* **records**: with ``record_steps=S`` the engine keeps ``history [E, S]`` (float64, NaN where not run);
* **progress** (tqdm on stderr) and **checkpoints** at step boundaries (:class:`Checkpointing`, via
  :mod:`vbmi.train.checkpoint`: atomic, fingerprinted, one resume policy).

Costs a plain loop does not pay are kept off the step: no host synchronisation except on the CPU (where
it is free), divergence checks on ``[E]`` vectors only, records written with one contiguous copy.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from . import checkpoint as _ckpt

__all__ = ["StackedAdam", "Engine", "Checkpointing", "RunOutcome", "Hook"]

Hook = Callable[["Engine", int, Tensor], bool]
"""``hook(engine, step, value) -> bool``: called after each step (``value``: detached ``[E]``, NaN for
frozen members); ``True`` ends training after this step."""


class StackedAdam:
    """Adam over stacked parameters ``[E, ...]`` with a per-member learning rate and an alive mask.

    The update is torch's fused Adam kernel, so a member equals a lone run with
    ``torch.optim.Adam(..., fused=True)`` up to the last bit (the kernel's vectorised body and scalar tail
    round differently, so an element's result depends on where it sits in its tensor), and agrees with the
    unfused ``torch.optim.Adam`` to rounding. Members with ``alive[e] = False`` get no update at all.

    Args:
        params: tensors whose leading dim indexes members (all of them, or the slice in ``members``).
        lr: ``[E]`` learning rates (float64 tensor).
        members: per parameter, the slice of the E members its leading dim holds (default: all).
        lr_groups: per parameter, the members whose learning rates decide whether the parameter is
            updated whole (all equal and all alive); default: ``members``. Parameters of one model
            share a group, so its members follow the same arithmetic however they are grouped.
    """

    def __init__(self, params: Sequence[Tensor], lr: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, members: Sequence[slice] | None = None,
                 lr_groups: Sequence[slice] | None = None) -> None:
        self.params = list(params)
        self.lr = lr  # [E]
        self.members = list(members) if members is not None else [slice(None)] * len(self.params)
        self.lr_groups = list(lr_groups) if lr_groups is not None else list(self.members)
        if not len(self.members) == len(self.lr_groups) == len(self.params):
            raise ValueError("members and lr_groups need one slice per parameter")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._uniform: dict[tuple, float | None] = {}

    def _uniform_lr(self, sl: slice) -> float | None:
        key = (sl.start, sl.stop, sl.step)
        if key not in self._uniform:
            lr = self.lr[sl]
            self._uniform[key] = float(lr[0]) if bool((lr == lr[0]).all()) else None
        return self._uniform[key]

    @torch.no_grad()
    def step(self, alive: Tensor, all_alive: bool = False) -> None:
        """One update of the alive members; ``all_alive=True`` is a promise from the caller that every
        member is alive (it skips the per-group checks).

        The update is ``torch._fused_adam_``: one pass over each tensor. The unfused form's ``sqrt`` takes a
        slow path on x86 for the exact zeros and subnormals that dead ReLU units leave in the second moment
        (``python -m bench.adam_probe``); the fused kernel does not. A parameter whose members share
        one learning rate and are all alive is updated whole; otherwise each alive member's slice is
        updated at its own rate, and frozen members are not touched (their weights and moments stay as
        they were at the divergence step)."""
        self.step_count += 1
        on_cpu = alive.device.type == "cpu"  # host checks are free there (no device sync)
        if not (on_cpu or all_alive):
            self._masked_step(alive)
            return
        # One fused call per (rate, dtype, device): the kernel takes a scalar rate and one dtype and device.
        by_lr: dict[tuple, tuple[list, list, list, list]] = {}
        alive_host: list[bool] | None = None
        group_alive: dict[tuple, bool] = {}  # one host check per model per step, not per parameter
        for p, m, v, sl, grp in zip(self.params, self.exp_avg, self.exp_avg_sq, self.members, self.lr_groups):
            if p.grad is None:
                continue
            uniform = self._uniform_lr(grp)
            key = (grp.start, grp.stop, grp.step)
            if key not in group_alive:
                group_alive[key] = all_alive or bool(alive[grp].all())
            if uniform is not None and group_alive[key]:
                parts = [(uniform, p, p.grad, m, v)]
            else:
                if alive_host is None:
                    alive_host = alive.tolist()  # a device sync off the CPU; only with frozen or mixed-rate members
                rng = range(len(self.lr))[sl]
                if p.ndim == 0 or p.shape[0] != len(rng):  # a lone member's parameter has no member dim
                    parts = [(float(self.lr[rng[0]]), p, p.grad, m, v)] if alive_host[rng[0]] else []
                else:
                    parts = [(float(self.lr[e]), p[i], p.grad[i], m[i], v[i])
                             for i, e in enumerate(rng) if alive_host[e]]
            for lr, *tensors in parts:
                lists = by_lr.setdefault((lr, p.dtype, p.device), ([], [], [], []))
                for dst, t in zip(lists, tensors):
                    dst.append(t)
        for (lr, _, _), (ps, gs, ms, vs) in by_lr.items():
            step = torch.full((), float(self.step_count), dtype=torch.float32, device=ps[0].device)
            torch._fused_adam_(ps, gs, ms, vs, [], [step] * len(ps), lr=lr, beta1=self.beta1, beta2=self.beta2,
                               weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)

    def _masked_step(self, alive: Tensor) -> None:
        """Adam on whole tensors with frozen members' gradients and step sizes zeroed: no host sync, for
        devices where the alive mask is not read back every step (the moments of frozen members decay)."""
        bc1 = 1 - self.beta1**self.step_count
        bc2_sqrt = math.sqrt(1 - self.beta2**self.step_count)
        for p, m, v, sl in zip(self.params, self.exp_avg, self.exp_avg_sq, self.members):
            if p.grad is None:
                continue
            view = (-1,) + (1,) * (p.ndim - 1) if p.ndim else ()
            g = torch.where(alive[sl].view(view), p.grad, torch.zeros((), dtype=p.dtype, device=p.device))
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = v.sqrt().div_(bc2_sqrt).add_(self.eps)
            step_size = (self.lr[sl] * alive[sl]).to(p.dtype).view(view) / bc1  # 0 for frozen members
            p.addcdiv_(m * step_size, denom, value=-1.0)

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq)}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, list(state["exp_avg"]) + list(state["exp_avg_sq"])):
            dst.copy_(src)


@dataclass
class Checkpointing:
    """Where and when :meth:`Engine.run` saves its state (see :mod:`vbmi.train.checkpoint`).

    ``extra_state()`` returns the caller's own state (data generator states, records, EMA buffers); it
    is saved beside the engine's and handed back by :meth:`Engine.resume`. A checkpoint is written at a
    boundary step (``boundary(step)``, default: every step) once ``every_s`` seconds have passed since
    the last one, and always when ``stop_at`` is reached.
    """

    path: Any  # str | os.PathLike
    fingerprint: str
    extra_state: Callable[[], dict] = dict
    every_s: float = 300.0
    boundary: Callable[[int], bool] = lambda step: True  # noqa: E731


@dataclass
class RunOutcome:
    """What :meth:`Engine.run` did: steps ``start..stop`` run, and why it ended."""

    start: int
    stop: int
    reason: str  # 'done', 'hook', 'all_frozen' or 'stop_at' (state saved, as a kill would leave it)
    wall_s: float

    @property
    def interrupted(self) -> bool:
        return self.reason == "stop_at"


@dataclass
class Engine:
    """Steps ``members`` networks together; see the module docstring.

    Args:
        params: the trained tensors. With ``optimizer=None`` they are stacked (leading member dim, or the
            slice ``param_members[i]`` of members) and trained with :class:`StackedAdam` at ``lr``.
        members: E.
        lr: one learning rate, or ``E`` of them.
        optimizer: a ready ``torch.optim.Optimizer`` for ``members=1`` (e.g. plain Adam over an
            ``nn.Module``); then ``params`` may be empty.
        param_members / lr_groups: see :class:`StackedAdam`.
        value_range: ``(lo, hi)``, one bound each per member (sequences of floats): a value outside
            freezes the member (diverged). See :func:`vbmi.bounds.plausible_range`.
        plausible: ``plausible(step, value) -> bool [E]``, a further check; ``False`` freezes the member.
        record_steps: keep ``history [E, record_steps]`` of the values (float64).
    """

    params: Sequence[Tensor]
    members: int = 1
    lr: float | Sequence[float] | Tensor = 1e-3
    optimizer: torch.optim.Optimizer | None = None
    param_members: Sequence[slice] | None = None
    lr_groups: Sequence[slice] | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    value_range: tuple[Sequence[float], Sequence[float]] | None = None
    plausible: Callable[[int, Tensor], Tensor] | None = None
    record_steps: int | None = None
    device: torch.device | str = "cpu"
    hooks: list[Hook] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        self.device = torch.device(self.device)
        self.params = list(self.params)
        e = self.members
        if self.optimizer is not None:
            if e != 1:
                raise ValueError("a plain torch optimizer trains one member; stack E > 1 members with StackedAdam")
            self.stacked = None
        else:
            lr = torch.as_tensor(self.lr, dtype=torch.float64, device=self.device).reshape(-1)
            lr = lr.expand(e).clone() if lr.numel() == 1 else lr
            if lr.shape != (e,) or not bool(torch.all(lr > 0)):
                raise ValueError(f"lr must be one positive value or {e} of them")
            self.stacked = StackedAdam(self.params, lr, self.betas, self.eps, self.param_members, self.lr_groups)
        self.alive = torch.ones(e, dtype=torch.bool, device=self.device)
        self.diverged_step = torch.full((e,), -1, dtype=torch.long, device=self.device)
        self.history = (torch.full((e, self.record_steps), math.nan, dtype=torch.float64, device=self.device)
                        if self.record_steps is not None else None)
        self.step_count = 0  # next step to run
        self._grad_ok: Tensor | None = None
        self._nan = torch.full((e,), math.nan, dtype=torch.float64, device=self.device)
        self._zero = torch.zeros((), dtype=torch.float64, device=self.device)
        self._host = self.device.type == "cpu"  # reading values on the host is free there (no device sync)
        self._all_alive = self._host  # host-side mirror of alive.all() (on a GPU: never assumed)
        if self.value_range is not None:
            lo, hi = (list(map(float, v)) for v in self.value_range)
            if len(lo) != e or len(hi) != e:
                raise ValueError(f"value_range needs {e} lower and {e} upper bounds")
            self._lo_hi = list(zip(lo, hi))
            self._lo_t = torch.tensor(lo, dtype=torch.float64, device=self.device)
            self._hi_t = torch.tensor(hi, dtype=torch.float64, device=self.device)

    # -- divergence --------------------------------------------------------------------------------------
    def _freeze(self, bad: Tensor, step: int) -> None:
        newly = bad & self.alive
        self.diverged_step = torch.where(newly, torch.full_like(self.diverged_step, step), self.diverged_step)
        self.alive = self.alive & ~bad
        self._all_alive = self._host and bool(self.alive.all())

    def _bad_values(self, step: int, est: Tensor) -> Tensor | None:
        """Members whose value is non-finite or outside their range (``None``: none, known on the host)."""
        if self._host and self.plausible is None:
            vals = est.reshape(-1).tolist()
            if self.value_range is None:
                ok = all(math.isfinite(v) for v in vals)
            else:
                ok = all(lo <= v <= hi for v, (lo, hi) in zip(vals, self._lo_hi))  # NaN fails both
            if ok:
                return None
        bad = ~torch.isfinite(est)
        if self.value_range is not None:
            bad = bad | (est < self._lo_t) | (est > self._hi_t)
        if self.plausible is not None:
            bad = bad | ~self.plausible(step, est)
        return bad

    def report_bad_gradient(self, ok: Tensor, members: slice = slice(None)) -> None:
        """Called from the caller's backward hooks: ``ok`` (bool, one per member of ``members``) is False
        for members whose gradient is not finite; they are frozen at this step, before the update."""
        if self._grad_ok is None:
            self._grad_ok = torch.ones(self.members, dtype=torch.bool, device=self.device)
        self._grad_ok[members] &= ok.to(self.device)

    def freeze(self, members: Tensor, step: int) -> None:
        """Freeze ``members`` (bool ``[E]``) as diverged at ``step`` (e.g. from a hook)."""
        self._freeze(members.to(self.device), step)

    # -- one step ----------------------------------------------------------------------------------------
    def step(self, step: int, objective: Tensor) -> Tensor:
        """Maximise ``objective [E]`` one optimiser step; return its detached value (NaN for frozen members).

        Members whose objective is non-finite or implausible at this step are frozen before the update.
        """
        est = objective.detach().reshape(self.members)
        bad = self._bad_values(step, est)
        if bad is not None:
            self._freeze(bad, step)
        if objective.requires_grad:
            if self._all_alive:
                loss = -objective.sum()
            elif self._host and not bool(self.alive.any()):
                loss = None  # every member frozen: nothing to update
            else:
                loss = -torch.where(self.alive, objective.reshape(self.members),
                                    self._zero.to(objective.dtype)).sum()
            if loss is not None:
                if self.optimizer is not None:
                    self.optimizer.zero_grad(set_to_none=True)
                else:
                    for p in self.params:
                        p.grad = None
                self._grad_ok = None
                loss.backward()
                if self._grad_ok is not None:
                    self._freeze(~self._grad_ok, step)
                if self.optimizer is not None:
                    if bool(self.alive[0]):
                        self.optimizer.step()
                else:
                    self.stacked.step(self.alive, all_alive=self._all_alive)
        est = est.to(torch.float64)
        value = est if self._all_alive else torch.where(self.alive, est, self._nan)
        if self.history is not None and step < self.history.shape[1]:
            self.history[:, step].copy_(value)
        self.step_count = step + 1
        return value

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, step_fn: Callable[[int], Tensor], *, stop: int, start: int | None = None,
            checkpointing: Checkpointing | None = None, stop_at: int | None = None,
            progress: bool = False, desc: str = "") -> RunOutcome:
        """Run steps ``start`` (default: where the engine is) to ``stop - 1``.

        ``step_fn(step)`` returns the objective ``[E]``; hooks run after each step. Training ends early
        when a hook returns ``True`` or when every member is frozen (checked on the CPU only). With
        ``checkpointing``, state is saved at boundaries (see :class:`Checkpointing`); ``stop_at`` saves at
        the first boundary at or after that step and returns (what a kill there would leave: a test aid).
        """
        start = self.step_count if start is None else start
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=stop, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, desc=desc or f"{self.members} member(s)")
        t0 = last_save = time.monotonic()
        reason = "done"
        step = start
        try:
            while step < stop:
                if checkpointing is not None and step > start and checkpointing.boundary(step):
                    due = time.monotonic() - last_save >= checkpointing.every_s
                    halt = stop_at is not None and step >= stop_at
                    if due or halt:
                        self.save(checkpointing, step)
                        last_save = time.monotonic()
                    if halt:
                        reason = "stop_at"
                        break
                value = self.step(step, step_fn(step))
                step += 1
                if bar is not None:
                    bar.update(1)
                if any([hook(self, step - 1, value) for hook in self.hooks]):  # every hook sees every step
                    reason = "hook"
                    break
                if self.device.type == "cpu" and not bool(self.alive.any()):
                    reason = "all_frozen"
                    break
        finally:
            if bar is not None:
                bar.close()
        return RunOutcome(start=start, stop=step, reason=reason, wall_s=time.monotonic() - t0)

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Engine state: step, alive mask, divergence steps, history, optimiser moments (not the weights:
        the caller saves its modules, whose parameters the engine trains)."""
        opt = self.stacked.state_dict() if self.stacked is not None else self.optimizer.state_dict()
        return {"step": self.step_count, "alive": self.alive, "diverged_step": self.diverged_step,
                "history": self.history, "optimizer": opt}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        self.alive = state["alive"].to(self.device)
        self.diverged_step = state["diverged_step"].to(self.device)
        self._all_alive = self._host and bool(self.alive.all())
        if self.history is not None and state.get("history") is not None:
            self.history.copy_(state["history"])
        if self.stacked is not None:
            self.stacked.load_state_dict(state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])

    def save(self, checkpointing: Checkpointing, step: int) -> None:
        """Save engine and caller state at the start of ``step`` (before it runs)."""
        state = self.state_dict()
        state["step"] = step
        _ckpt.save(checkpointing.path, {"engine": state, "extra": checkpointing.extra_state()},
                   checkpointing.fingerprint)

    def resume(self, checkpointing: Checkpointing) -> dict | None:
        """Load the checkpoint if there is a usable one (else ``None``: start at step 0, with a warning
        naming the file if one was found but not usable); returns the caller's extra state."""
        state = _ckpt.load(checkpointing.path, checkpointing.fingerprint)
        if state is None:
            return None
        self.load_state_dict(state["engine"])
        return state["extra"]
