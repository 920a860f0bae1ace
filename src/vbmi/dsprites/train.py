"""Checkpointed training of the dSprites encoder on the Lagrangian of Eq. 15 (see :mod:`.objective`).

Everything random is drawn from two explicit generators seeded from ``TrainConfig.seed``: one on the CPU
for the minibatch indices and the initial weights, one on the training device for the reparameterisation
and pixel noise. A checkpoint holds the step, both networks, Adam's state, the multipliers, both
generators' states, the logged history and the running sums of the current log interval, so a run
resumed from any checkpoint continues bit for bit as the uninterrupted run would (on the same device).
Checkpoints are written atomically every ``checkpoint_every_s`` seconds and at the end, and read with
``torch.load(weights_only=True)`` (no pickled code). Each carries a fingerprint of the training config
and of the data's content (:meth:`DSprites.fingerprint`: grid index and pixels); one resume policy: a
checkpoint that does not read or does not match is named in a warning and training starts from step 0
(:mod:`vbmi.train.checkpoint` does the saving, loading and fingerprinting). The library never sets
thread counts: the caller does (on a loaded 2-core machine two torch threads ran up to 12x slower than
one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..train import checkpoint as ckpt_io
from ..utils import make_generator, resolve_device
from .data import DSprites
from .model import ConvEncoder, EncoderConfig, LogQ
from .objective import ObjectiveConfig, dual_update, lagrangian, tc_weight, terms

__all__ = ["TrainConfig", "TrainResult", "LOGGED", "train", "load_checkpoint", "config_from_dict", "fingerprint"]

LOGGED: tuple[str, ...] = ("ijs", "tnce", "loo_sum", "tc", "smooth", "lambda_tc", "lambda_smooth", "tc_weight", "loss")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 64  # the measurements; a K x K score matrix per step
    lr: float = 1e-4  # Adam, as disentanglement_lib's models
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
class TrainResult:
    encoder: ConvEncoder
    log_q: LogQ
    history: dict[str, np.ndarray]  # LOGGED names and "step" -> (n_logs,)
    step: int
    lam: torch.Tensor
    seconds: float  # wall time of all the steps, summed over resumed runs
    device: str


def _new_state(cfg: TrainConfig, device: torch.device):
    g_init = make_generator(cfg.seed)  # CPU: weights, then minibatch indices
    encoder = ConvEncoder(cfg.encoder).reset_parameters(g_init).to(device)
    log_q = LogQ(cfg.encoder, generator=g_init).to(device)
    g_noise = make_generator(cfg.seed + 1_000_003, device)
    opt = torch.optim.Adam([*encoder.parameters(), *log_q.parameters()], lr=cfg.lr)
    lam = torch.tensor([cfg.objective.lambda_tc_init, cfg.objective.lambda_smooth_init], dtype=torch.float64)
    return encoder, log_q, opt, g_init, g_noise, lam


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The saved training state of a checkpoint or final model file, read safely (``weights_only=True``)
    onto the CPU, whatever its fingerprint (evaluation reads the final model; resuming goes through
    :func:`vbmi.train.checkpoint.load`, which checks it)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return blob["state"] if isinstance(blob, dict) and "state" in blob and "format" in blob else blob


def fingerprint(cfg: TrainConfig, data_fingerprint: str) -> str:
    """What a checkpoint must match to be resumed: the training config, the data's content hash
    (:meth:`DSprites.fingerprint`) and the code version (:func:`vbmi.train.checkpoint.fingerprint`)."""
    return ckpt_io.fingerprint(config=cfg.to_dict(), data=data_fingerprint)


def train(
    ds: DSprites,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "auto",
    checkpoint: str | os.PathLike | None = None,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume from ``checkpoint`` if that file exists and matches) up to ``cfg.steps`` steps.

    ``stop_at`` ends the run early after that step, with a checkpoint, as an interruption would (tests).
    The checkpoint's fingerprint covers ``cfg`` and the content of ``ds`` (:meth:`DSprites.fingerprint`);
    a checkpoint that does not match, or does not read, is reported with a warning naming it and training
    starts from step 0 (:func:`vbmi.train.checkpoint.load`). The caller deletes the checkpoint once the final model
    is safely written (workflow/scripts/dsprites_train.py), so a forced rerun trains again.
    """
    dev = resolve_device(device)
    encoder, log_q, opt, g_data, g_noise, lam = _new_state(cfg, dev)
    history: dict[str, list[float]] = {k: [] for k in ("step", *LOGGED)}
    acc = torch.zeros(len(LOGGED), dtype=torch.float64)
    step, elapsed_before = 0, 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    fp = fingerprint(cfg, ds.fingerprint()) if ckpt is not None else ""
    st = ckpt_io.load(ckpt, fp)  # None: step 0 (with a warning naming the file if it did not match or read)
    if st is not None:
        encoder.load_state_dict(st["encoder"])
        log_q.load_state_dict(st["log_q"])
        opt.load_state_dict(st["opt"])
        lam, acc, step = st["lam"], st["acc"], int(st["step"])
        g_data.set_state(st["g_data"])
        g_noise.set_state(st["g_noise"])
        history = {k: v.tolist() for k, v in st["history"].items()}
        elapsed_before = float(st["seconds"])

    def state() -> dict[str, Any]:
        return {
            "step": step,
            "encoder": encoder.state_dict(),
            "log_q": log_q.state_dict(),
            "opt": opt.state_dict(),
            "lam": lam,
            "acc": acc,
            "g_data": g_data.get_state(),
            "g_noise": g_noise.get_state(),
            "history": {k: torch.tensor(v, dtype=torch.float64) for k, v in history.items()},
            "config": json.dumps(cfg.to_dict(), sort_keys=True),
            "seconds": elapsed_before + time.monotonic() - t0,
            "device": str(dev),
        }

    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    t0 = last_ckpt = time.monotonic()
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not progress,
        unit="step",
        mininterval=5.0,
        desc=f"dsprites seed {cfg.seed}",
    )
    encoder.train()
    n = len(ds)
    while step < end:
        rows = torch.randint(n, (cfg.batch_size,), generator=g_data).numpy()
        x = torch.from_numpy(ds.images(rows)).to(device=dev, dtype=torch.float32)[:, None]  # [K, 1, 64, 64]
        t = terms(encoder, log_q, x, g_noise, noise_var=cfg.objective.noise_var, tc_lower=cfg.objective.tc_lower)
        w = tc_weight(step, cfg.objective)
        loss = lagrangian(t, lam.to(dev, torch.float32), w, cfg.objective)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lam = dual_update(lam, {k: v.detach().double().cpu() for k, v in t.items()}, w, cfg.objective)
        vals = (
            torch.stack([t["ijs"].detach(), t["tnce"], t["loo_sum"].detach(), t["tc"].detach(), t["smooth"].detach()])
            .double()
            .cpu()
        )
        acc += torch.cat([vals, lam, torch.tensor([w, loss.item()], dtype=torch.float64)])
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            k = (step - 1) % cfg.log_every + 1
            history["step"].append(float(step))
            for name, v in zip(LOGGED, (acc / k).tolist()):
                history[name].append(v)
            acc = torch.zeros_like(acc)
            bar.set_postfix(
                ijs=f"{history['ijs'][-1]:.2f}",
                tc=f"{history['tc'][-1]:.2f}",
                smooth=f"{history['smooth'][-1]:.2f}",
                refresh=False,
            )
        bar.update(1)
        if ckpt is not None and time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
            ckpt_io.save(ckpt, state(), fp)
            last_ckpt = time.monotonic()
    bar.close()
    if ckpt is not None:
        ckpt_io.save(ckpt, state(), fp)
    hist = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}
    return TrainResult(encoder, log_q, hist, step, lam, elapsed_before + time.monotonic() - t0, str(dev))
