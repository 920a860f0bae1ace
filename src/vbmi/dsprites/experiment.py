"""From trained checkpoints to one dSprites result cube: training curves, factor scores, Fig. 5 tuning data.

Every trained encoder is scored beside a *random* encoder: the same network at its seeded initial weights
(before step 0), evaluated on the same images, so every number has its untrained baseline.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import torch
import xarray as xr

from ..utils import resolve_device
from .data import DSprites, factor_values
from .metrics import SCORED_FACTORS, encode_means, factor_scores, tuning
from .model import ConvEncoder
from .train import LOGGED, TrainConfig, _new_state, config_from_dict, load_checkpoint
from ..results import TIMING_ATTR

__all__ = ["load_trained", "evaluation_rows", "evaluate", "build_cube"]

_TERMS = {  # long_name, units, description
    "ijs": (
        "I_JS estimate of I(X;Y)",
        "nat",
        "structured I_JS lower bound (Eq. 18), critic log p(y|x) - log q(y), mean over the log interval",
    ),
    "tnce": (
        "I_TNCE estimate of I(X;Y)",
        "nat",
        "critic-free InfoNCE lower bound with log p(y|x) (Eq. 12), at most log(batch size); logged only",
    ),
    "loo_sum": (
        "sum_d LOO upper bound on I(X;Y_d)",
        "nat",
        "sum over latent dims of the leave-one-out upper bound (Eq. 13)",
    ),
    "tc": ("TC(Y) upper bound", "nat", "loo_sum - ijs: the total-correlation bound constrained by delta (Eq. 15)"),
    "smooth": (
        "smoothness KL",
        "nat",
        "E KL(p(y|x) || p(y|x+eps)), eps ~ N(0, noise_var) on pixels, constrained by gamma (Eq. 15)",
    ),
    "lambda_tc": (
        "Lagrange multiplier of the TC constraint",
        "1",
        "dual-ascent multiplier; the applied weight is tc_weight * lambda_tc",
    ),
    "lambda_smooth": ("Lagrange multiplier of the smoothness constraint", "1", "dual-ascent multiplier"),
    "tc_weight": (
        "TC ramp weight",
        "1",
        "linear ramp of the TC term from 0 to 1 (a TC weight from step 0 collapsed the encoder)",
    ),
    "loss": ("Lagrangian", "nat", "-ijs + tc_weight lambda_tc (tc - delta) + lambda_smooth (smooth - gamma)"),
}


def load_trained(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[ConvEncoder, ConvEncoder, dict, TrainConfig]:
    """``(trained encoder, the same encoder at its initial weights, history, config)`` from a checkpoint.

    ``history`` also holds ``seconds`` (training wall time) and ``device`` (where it trained)."""
    import json

    st = load_checkpoint(path)
    cfg = config_from_dict(json.loads(st["config"]))
    trained, _, _, _, _, _ = _new_state(cfg, torch.device("cpu"))
    initial, _, _, _, _, _ = _new_state(cfg, torch.device("cpu"))
    trained.load_state_dict(st["encoder"])
    history = {k: v.numpy() for k, v in st["history"].items()}
    history["seconds"], history["device"] = float(st["seconds"]), str(st["device"])
    return trained.to(device).eval(), initial.to(device).eval(), history, cfg


def evaluation_rows(ds: DSprites, n_eval: int | None, seed: int) -> np.ndarray:
    """``n_eval`` random rows of ``ds`` (all of them when ``n_eval`` is None or >= len(ds)), sorted."""
    if n_eval is None or n_eval >= len(ds):
        return np.arange(len(ds))
    return np.sort(np.random.default_rng(seed).choice(len(ds), size=n_eval, replace=False))


def evaluate(
    encoder: ConvEncoder,
    ds: DSprites,
    rows: np.ndarray,
    *,
    bins: int = 20,
    device: str | torch.device = "cpu",
    batch: int = 1024,
) -> dict[str, np.ndarray | float]:
    """Factor scores (:func:`.metrics.factor_scores`) and tuning data (:func:`.metrics.tuning`) of one encoder."""
    mu = encode_means(encoder, ds, rows, batch=batch, device=device)
    classes = ds.latents_classes[rows]
    return {**factor_scores(mu, classes, bins=bins), **tuning(mu, classes)}



def _var(dims: tuple[str, ...], data: np.ndarray, long_name: str, units: str, description: str) -> xr.Variable:
    return xr.Variable(dims, data, attrs={"long_name": long_name, "units": units, "description": description})


def build_cube(
    ds: DSprites,
    checkpoints: Mapping[int, str | os.PathLike],
    *,
    n_eval: int | None = 10000,
    eval_seed: int = 0,
    bins: int = 20,
    device: str | torch.device = "auto",
) -> xr.Dataset:
    """One cube over seeds: training curves (seed, step), scores (seed, encoder, latent, factor), tuning.

    ``checkpoints`` maps each seed to its final checkpoint; ``ds`` is the image set the scores use (the
    evaluation draws ``n_eval`` of its images with ``eval_seed``; the same images for every encoder).
    """
    dev = resolve_device(device)
    rows = evaluation_rows(ds, n_eval, eval_seed)
    seeds = sorted(checkpoints)
    hist, scores, tun = [], [], []
    for s in seeds:
        trained, initial, history, _ = load_trained(checkpoints[s], dev)
        hist.append(history)
        ev = {
            "trained": evaluate(trained, ds, rows, bins=bins, device=dev),
            "random": evaluate(initial, ds, rows, bins=bins, device=dev),
        }
        scores.append(ev)
        tun.append(ev["trained"])
    steps = hist[0]["step"]
    if any(len(h["step"]) != len(steps) or not np.array_equal(h["step"], steps) for h in hist):
        raise ValueError("checkpoints of different seeds logged different steps; train them with one config")
    enc = ("trained", "random")
    n_lat = scores[0]["trained"]["nmi"].shape[0]
    v: dict[str, xr.Variable] = {}
    for k in LOGGED:
        v[k] = _var(("seed", "step"), np.stack([h[k] for h in hist]), *_TERMS[k])

    def stack(key: str) -> np.ndarray:
        return np.stack([np.stack([np.asarray(sc[e][key]) for e in enc]) for sc in scores])

    v["nmi"] = _var(
        ("seed", "encoder", "latent", "factor"),
        stack("nmi"),
        "normalised MI latent x factor",
        "1",
        f"I(z_l; v_k) / H(v_k), latent means discretised in {bins} equal-width bins, plug-in over the evaluation images",
    )
    v["best_nmi"] = _var(
        ("seed", "encoder", "factor"), stack("best"), "best normalised MI per factor", "1", "max over latents of nmi"
    )
    v["gap"] = _var(
        ("seed", "encoder", "factor"),
        stack("gap"),
        "MI gap per factor",
        "1",
        "best minus second-best normalised MI over latents (its mean over factors is MIG)",
    )
    v["winner"] = _var(
        ("seed", "encoder", "factor"),
        stack("winner").astype(np.int32),
        "winning latent per factor",
        "1",
        "index of the latent with the largest normalised MI for the factor",
    )
    v["mig"] = _var(
        ("seed", "encoder"),
        stack("mig"),
        "mutual information gap (MIG)",
        "1",
        "Chen et al. 2018: mean over the five factors of the gap",
    )
    v["mean_var"] = _var(
        ("seed", "encoder", "latent"),
        stack("mean_var"),
        "variance of the latent mean",
        "1",
        "variance across evaluation images of mu_l(x); active when > 1e-2",
    )
    v["active"] = _var(
        ("seed", "encoder", "latent"),
        stack("active").astype(np.int8),
        "active latent",
        "1",
        "1 when the variance of the latent's mean across images exceeds 1e-2",
    )
    v["tuning_pos"] = _var(
        ("seed", "latent", "pos_y", "pos_x"),
        np.stack([t["pos"] for t in tun]),
        "mean activation over position",
        "1",
        "mean of mu_l(x) over evaluation images at each (posY, posX) (Fig. 5, first column)",
    )
    v["tuning_scale"] = _var(
        ("seed", "latent", "shape", "scale"),
        np.stack([t["scale"] for t in tun]),
        "mean activation vs scale",
        "1",
        "mean of mu_l(x) per shape and scale (Fig. 5)",
    )
    v["tuning_orientation"] = _var(
        ("seed", "latent", "shape", "orientation"),
        np.stack([t["orientation"] for t in tun]),
        "mean activation vs orientation",
        "1",
        "mean of mu_l(x) per shape and orientation (Fig. 5)",
    )
    v["train_seconds"] = _var(
        ("seed",),
        np.array([h["seconds"] for h in hist]),
        "training wall time",
        "s",
        "wall-clock seconds of all training steps (summed over resumed runs)",
    )
    v["train_seconds"].attrs[TIMING_ATTR] = "wall-clock"  # excluded from rerun identity
    v["steps_per_s"] = _var(
        ("seed",),
        np.array([h["step"][-1] / h["seconds"] for h in hist]),
        "training speed",
        "1/s",
        "training steps per wall-clock second on the training device",
    )
    v["steps_per_s"].attrs[TIMING_ATTR] = "wall-clock"  # excluded from rerun identity
    vals = factor_values()
    coords = {
        "seed": np.array(seeds, dtype=np.int64),
        "step": steps.astype(np.int64),
        "encoder": list(enc),
        "latent": np.arange(n_lat, dtype=np.int64),
        "factor": list(SCORED_FACTORS),
        "shape": ["square", "ellipse", "heart"],
        "scale": vals[2],
        "orientation": vals[3],
        "pos_x": vals[4],
        "pos_y": vals[5],
    }
    out = xr.Dataset(v, coords=coords)
    out.attrs.update(
        {
            "n_images": int(len(ds)),
            "n_eval_images": int(len(rows)),
            "data_source": ds.source,
            "bins": int(bins),
            "train_device": ",".join(sorted({h["device"] for h in hist})),
        }
    )
    return out
