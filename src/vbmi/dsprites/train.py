"""Checkpointed training of the dSprites encoder on the Lagrangian of Eq. 15 (see :mod:`.objective`).

The loop is the shared :class:`vbmi.train.Engine` (one member, ``torch.optim.Adam``): the step function
draws the minibatch and returns minus the Lagrangian, the engine steps the optimiser, and a hook does
the dual (Lagrange multiplier) update and accumulates the logged history.

Everything random is drawn from two explicit generators seeded from ``TrainConfig.seed``: one on the CPU
for the minibatch indices and the initial weights, one on the training device for the reparameterisation
and pixel noise. A checkpoint holds the engine's state (step, Adam's state, divergence) and ours (both
networks, the multipliers, both generators' states, the logged history and the running sums of the
current log interval), so a run resumed from any checkpoint continues bit for bit as the uninterrupted
run would (on the same device). Checkpoints are written atomically every ``checkpoint_every_s`` seconds
and at the end, and read with ``torch.load(weights_only=True)`` (no pickled code). Each carries a
fingerprint of the training config and of the data's content (:meth:`DSprites.fingerprint`: grid index
and pixels); one resume policy: a checkpoint that does not read or does not match is named in a warning
and training starts from step 0 (:mod:`vbmi.train.checkpoint` does the saving, loading and
fingerprinting). A non-finite Lagrangian freezes the run at that step (the engine applies no update) and
ends it with a :class:`TrainingDiverged` warning. The library never sets thread counts: the caller does
(on a loaded 2-core machine two torch threads ran up to 12x slower than one).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..train import checkpoint as ckpt_io
from ..train.engine import Checkpointing, Engine
from ..utils import make_generator, resolve_device
from .data import DSprites
from .model import ConvEncoder, EncoderConfig, LogQ
from .objective import ObjectiveConfig, dual_update, lagrangian, memory_on, tc_delta, tc_weight, terms

__all__ = [
    "TrainConfig",
    "EncoderTrainResult",
    "TrainingDiverged",
    "ClippedAdam",
    "LOGGED",
    "train",
    "load_checkpoint",
    "config_from_dict",
    "fingerprint",
]

LOGGED: tuple[str, ...] = ("ijs", "tnce", "loo_sum", "tc", "smooth", "lambda_tc", "lambda_smooth", "tc_weight", "loss")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 64  # the measurements; a K x K score matrix per step
    lr: float = 1e-4  # Adam, as disentanglement_lib's models
    # > 0: the gradient's norm is clipped to grad_clip x its running average (an EMA of past clipped norms)
    grad_clip: float = 0.0
    # Adam's rate is lr x memory_lr_scale from objective.memory_start on (1: one rate throughout)
    memory_lr_scale: float = 1.0
    seed: int = 0
    log_every: int = 25  # history holds the mean of each term over every log interval
    checkpoint_every_s: float = 300.0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested dicts (unknown keys raise ``TypeError`` naming them)."""
    d = dict(d)
    enc = EncoderConfig(**d.pop("encoder", {}))
    obj = ObjectiveConfig(**d.pop("objective", {}))
    return TrainConfig(encoder=enc, objective=obj, **d)


@dataclass
class EncoderTrainResult:
    """What :func:`train` returns: the trained encoder, its q(y) and its records (critic runs return
    :class:`vbmi.experiments.training.TrainResult`)."""

    encoder: ConvEncoder
    log_q: LogQ
    history: dict[str, np.ndarray]  # LOGGED names and "step" -> (n_logs,)
    step: int
    lam: torch.Tensor
    seconds: float  # wall time of all the steps, summed over resumed runs
    device: str


class TrainingDiverged(RuntimeWarning):
    """Training stopped early because the Lagrangian was not finite; the message names the step."""


def _new_state(cfg: TrainConfig, device: torch.device):
    g_init = make_generator(cfg.seed)  # CPU: weights, then minibatch indices
    encoder = ConvEncoder(cfg.encoder).reset_parameters(g_init).to(device)
    log_q = LogQ(cfg.encoder, generator=g_init).to(device)
    g_noise = make_generator(cfg.seed + 1_000_003, device)
    params = [*encoder.parameters(), *log_q.parameters()]
    if cfg.grad_clip > 0:
        opt: torch.optim.Optimizer = ClippedAdam(params, lr=cfg.lr, clip=cfg.grad_clip)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr)
    lam = torch.tensor([cfg.objective.lambda_tc_init, cfg.objective.lambda_smooth_init], dtype=torch.float64)
    return encoder, log_q, opt, g_init, g_noise, lam


class ClippedAdam(torch.optim.Adam):
    """Adam whose step first clips the gradient's total norm to ``clip`` times a running average of the
    norms it has passed (an EMA with rate 0.01, seeded with the first norm).

    Why: a batch whose smoothness KL or I_JS term spikes by orders of magnitude hands Adam a gradient
    ~100x its running second moment, and the resulting step (up to ~30 lr per weight) wrecks the encoder;
    with remembered negatives such spikes collapsed runs to zero information. The EMA is kept in the
    parameter group, so it is saved and restored with the optimiser's state.
    """

    def __init__(self, params, lr: float, clip: float, ema_rate: float = 0.01) -> None:
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        super().__init__(params, lr=lr)
        for g in self.param_groups:
            g.update(clip=float(clip), ema_rate=float(ema_rate), norm_ema=0.0)

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            grads = [p for p in g["params"] if p.grad is not None]
            limit = g["clip"] * g["norm_ema"] if g["norm_ema"] > 0 else math.inf
            norm = float(torch.nn.utils.clip_grad_norm_(grads, max_norm=limit))
            if math.isfinite(norm):
                kept = min(norm, limit)
                g["norm_ema"] = kept if g["norm_ema"] == 0 else g["norm_ema"] + g["ema_rate"] * (kept - g["norm_ema"])
        return super().step(closure)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The saved training state of a checkpoint or final model file, read safely (``weights_only=True``)
    onto the CPU, whatever its fingerprint (evaluation reads the final model; resuming goes through
    :meth:`vbmi.train.Engine.resume`, which checks it).

    One flat dict: ``step``, ``encoder``, ``log_q``, ``opt``, ``lam``, ``acc``, ``g_data``, ``g_noise``,
    ``history``, ``config``, ``seconds``, ``device`` and ``diverged_step`` (-1 unless training diverged).
    Files the engine wrote keep the caller's state under ``extra`` and the step and optimiser under
    ``engine``; they are flattened here so every reader sees the layout older files have.
    """
    blob = ckpt_io.read(path)  # a damaged file raises ValueError naming it
    st = blob["state"] if isinstance(blob, dict) and "state" in blob and "format" in blob else blob
    if isinstance(st, dict) and "engine" in st and "extra" in st:
        eng = st["engine"]
        return {**st["extra"], "step": int(eng["step"]), "opt": eng["optimizer"],
                "diverged_step": int(eng["diverged_step"][0])}
    return st


def fingerprint(cfg: TrainConfig, data_fingerprint: str) -> str:
    """What a checkpoint must match to be resumed: the training config, the data's content hash
    (:meth:`DSprites.fingerprint`) and the code version (:func:`vbmi.train.checkpoint.fingerprint`)."""
    return ckpt_io.fingerprint(config=cfg.to_dict(), data=data_fingerprint)


class _Lagrangian:
    """The caller's side of the engine for one run: the step function (batch, terms, objective), the hook
    that does the dual update and accumulates the log, and the state a checkpoint keeps beside the engine's.

    ``step_fn`` hands the step's terms to the hook through ``_pending``: the hook must see the terms of the
    batch the optimiser just stepped on, as the dual update of Eq. 15 uses the same minibatch estimates.
    """

    def __init__(self, ds: DSprites, cfg: TrainConfig, dev: torch.device) -> None:
        self.ds, self.cfg, self.dev = ds, cfg, dev
        self.encoder, self.log_q, self.opt, self.g_data, self.g_noise, self.lam = _new_state(cfg, dev)
        self.history: dict[str, list[float]] = {k: [] for k in ("step", *LOGGED)}
        self.acc = torch.zeros(len(LOGGED), dtype=torch.float64)
        self.seconds_before, self.t0 = 0.0, time.monotonic()
        self._pending: tuple[dict[str, torch.Tensor], float, float] | None = None
        d = cfg.encoder.latent_dim
        self.memory = (torch.zeros(0, d, device=dev), torch.zeros(0, d, device=dev))  # newest last

    def step_fn(self, step: int) -> torch.Tensor:
        """Draw a batch, evaluate the terms; the objective to maximise is minus the Lagrangian, ``[1]``."""
        cfg = self.cfg
        for group in self.opt.param_groups:  # a function of the step alone: a resumed run sets the same rate
            group["lr"] = cfg.lr * (cfg.memory_lr_scale if memory_on(step, cfg.objective) else 1.0)
        rows = torch.randint(len(self.ds), (cfg.batch_size,), generator=self.g_data).numpy()
        x = torch.from_numpy(self.ds.images(rows)).to(device=self.dev, dtype=torch.float32)[:, None]  # [K,1,64,64]
        t = terms(self.encoder, self.log_q, x, self.g_noise, noise_var=cfg.objective.noise_var,
                  tc_lower=cfg.objective.tc_lower, ijs_memory=self._recent(cfg.objective.ijs_memory, step),
                  tc_memory=self._recent(cfg.objective.tc_memory, step))
        w, delta = tc_weight(step, cfg.objective), tc_delta(step, cfg.objective)
        self._pending = (t, w, delta)
        return -lagrangian(t, self.lam.to(self.dev, torch.float32), w, cfg.objective, delta).reshape(1)

    def _recent(self, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The newest ``n`` remembered posteriors (``None`` for n = 0 or before ``memory_start``)."""
        if n == 0 or not memory_on(step, self.cfg.objective):
            return None
        return self.memory[0][-n:], self.memory[1][-n:]

    def after_step(self, engine: Engine, step: int, value: torch.Tensor) -> bool:
        """Dual update and log accumulation; nothing on a step the engine froze (its terms are not finite
        and would turn the multipliers and the log into NaN: the run keeps the state before that step)."""
        t, w, delta = self._pending
        self._pending = None
        loss = -value.item()
        if not math.isfinite(loss):
            return True  # the engine has frozen the member; end here (it checks 'all_frozen' on the CPU only)
        cfg = self.cfg
        mu, logvar = t.pop("mu"), t.pop("logvar")
        m = max(cfg.objective.tc_memory, cfg.objective.ijs_memory)
        if m:
            self.memory = (torch.cat([self.memory[0], mu])[-m:], torch.cat([self.memory[1], logvar])[-m:])
        self.lam = dual_update(self.lam, {k: v.detach().double().cpu() for k, v in t.items()}, w, cfg.objective, delta)
        vals = torch.stack([t["ijs"].detach(), t["tnce"], t["loo_sum"].detach(), t["tc"].detach(),
                            t["smooth"].detach()]).double().cpu()
        self.acc += torch.cat([vals, self.lam, torch.tensor([w, loss], dtype=torch.float64)])
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            k = (done - 1) % cfg.log_every + 1
            self.history["step"].append(float(done))
            for name, v in zip(LOGGED, (self.acc / k).tolist()):
                self.history[name].append(v)
            self.acc = torch.zeros_like(self.acc)
        return False

    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.t0

    def state(self) -> dict[str, Any]:
        """Everything but the engine's part (step, optimiser, divergence), for the checkpoint's ``extra``."""
        return {
            "encoder": self.encoder.state_dict(),
            "log_q": self.log_q.state_dict(),
            "lam": self.lam,
            "acc": self.acc,
            "memory_mu": self.memory[0].cpu(),
            "memory_logvar": self.memory[1].cpu(),
            "g_data": self.g_data.get_state(),
            "g_noise": self.g_noise.get_state(),
            "history": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.history.items()},
            "config": json.dumps(self.cfg.to_dict(), sort_keys=True),
            "seconds": self.seconds(),
            "device": str(self.dev),
        }

    def load(self, st: dict[str, Any]) -> None:
        self.encoder.load_state_dict(st["encoder"])
        self.log_q.load_state_dict(st["log_q"])
        self.lam, self.acc = st["lam"], st["acc"]
        if "memory_mu" in st:
            self.memory = (st["memory_mu"].to(self.dev), st["memory_logvar"].to(self.dev))
        self.g_data.set_state(st["g_data"])
        self.g_noise.set_state(st["g_noise"])
        self.history = {k: v.tolist() for k, v in st["history"].items()}
        self.seconds_before = float(st["seconds"])


def train(
    ds: DSprites,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "auto",
    checkpoint: str | os.PathLike | None = None,
    stop_at: int | None = None,
    progress: bool = True,
) -> EncoderTrainResult:
    """Train (or resume from ``checkpoint`` if that file exists and matches) up to ``cfg.steps`` steps.

    ``stop_at`` ends the run early after that step, with a checkpoint, as an interruption would (tests).
    The checkpoint's fingerprint covers ``cfg`` and the content of ``ds`` (:meth:`DSprites.fingerprint`);
    a checkpoint that does not match, or does not read, is reported with a warning naming it and training
    starts from step 0 (:meth:`vbmi.train.Engine.resume`). The caller deletes the checkpoint once the final
    model is safely written (workflow/scripts/dsprites_train.py), so a forced rerun trains again.

    A non-finite Lagrangian ends training at that step with a :class:`TrainingDiverged` warning naming it;
    the result (and the checkpoint) keep the weights, multipliers and log of the steps before it.
    """
    dev = resolve_device(device)
    run = _Lagrangian(ds, cfg, dev)
    engine = Engine([], members=1, optimizer=run.opt, device=dev, hooks=[run.after_step])
    ck = None
    if checkpoint is not None:
        ck = Checkpointing(Path(checkpoint), fingerprint(cfg, ds.fingerprint()), run.state, cfg.checkpoint_every_s)
        extra = engine.resume(ck)  # None: step 0 (with a warning naming the file if it did not match or read)
        if extra is not None:
            run.load(extra)
    run.t0 = time.monotonic()
    run.encoder.train()
    # ``stop_at`` as the end of this run rather than the engine's ``stop_at``: the engine honours that only
    # with a checkpoint, and only after at least one step; here it stops there with or without one.
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    # A frozen (diverged) run resumed would diverge again at the same step: it is not stepped.
    if bool(engine.alive.all()):
        engine.run(run.step_fn, stop=end, checkpointing=ck, progress=progress, desc=f"dsprites seed {cfg.seed}")
    if ck is not None:
        engine.save(ck, engine.step_count)
    step = engine.step_count
    if not bool(engine.alive.all()):
        step = int(engine.diverged_step[0])
        where = f"; checkpoint {checkpoint}" if checkpoint is not None else ""
        warnings.warn(f"dSprites training (seed {cfg.seed}) diverged: the Lagrangian of step {step + 1} of "
                      f"{cfg.steps} is not finite; training stopped with the weights after {step} steps{where}",
                      TrainingDiverged, stacklevel=2)
    hist = {k: np.asarray(v, dtype=np.float64) for k, v in run.history.items()}
    return EncoderTrainResult(run.encoder, run.log_q, hist, step, run.lam, run.seconds(), str(dev))
