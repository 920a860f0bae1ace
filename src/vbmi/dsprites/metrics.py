"""Scoring a dSprites representation: normalised MI latent x factor, gap, MIG, and the Fig. 5 tuning data.

- :func:`encode_means` runs an encoder over images in batches (no gradients) and returns the means.
- :func:`factor_scores`: each latent's mean is discretised into ``bins`` equal-width bins over its range
  (disentanglement_lib's histogram discretisation); ``nmi[l, k] = I(z_l; v_k) / H(v_k)`` with the
  plug-in MI over the evaluation images and the factor's class entropy, so 1 means latent l determines
  factor k. Per factor: the best value, the winning latent, and the gap between the best and the second
  best latent; MIG (Chen et al. 2018) is the mean gap over factors. ``colour`` (constant) is left out.
- :func:`tuning`: the data of the paper's Fig. 5 (layout of Chen et al. 2018): for each latent, its mean
  activation over the (posX, posY) grid, and against scale and against orientation for each shape.
  :func:`active_latents` marks latents whose mean varies across images (variance > 1e-2).

Note: square and ellipse are rotation-symmetric (a quarter and a half turn), so the orientation factor
is ambiguous for two of the three shapes and a perfect orientation code cannot reach nmi = 1.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import DSprites

__all__ = [
    "SCORED_FACTORS",
    "encode_means",
    "active_latents",
    "discretize",
    "mutual_info",
    "entropy",
    "factor_scores",
    "tuning",
]

SCORED_FACTORS: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")  # columns 1..5


@torch.no_grad()
def encode_means(
    encoder: torch.nn.Module,
    ds: DSprites,
    rows: np.ndarray | None = None,
    *,
    batch: int = 1024,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Means ``mu(x)`` of the encoder for images ``rows`` of ``ds`` -> (n, D) float64."""
    rows = np.arange(len(ds)) if rows is None else np.asarray(rows)
    was_training = encoder.training
    encoder.eval()
    out = []
    for s in range(0, len(rows), batch):
        x = torch.from_numpy(ds.images(rows[s : s + batch])).to(device=device, dtype=torch.float32)[:, None]
        out.append(encoder(x)[0].double().cpu().numpy())
    encoder.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0))


def active_latents(mu: np.ndarray, threshold: float = 1e-2) -> np.ndarray:
    """Boolean (D,): variance of the latent's mean across images above ``threshold``."""
    return mu.var(axis=0) > threshold


def discretize(mu: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width histogram bins over each column's range -> (n, D) int in [0, bins)."""
    lo, hi = mu.min(axis=0), mu.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(((mu - lo) / width * bins).astype(np.int64), 0, bins - 1)


def entropy(labels: np.ndarray) -> float:
    """Plug-in entropy (nats) of integer labels."""
    p = np.bincount(labels) / labels.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI (nats) between two integer label arrays."""
    na, nb = a.max() + 1, b.max() + 1
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / a.size
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def factor_scores(mu: np.ndarray, classes: np.ndarray, *, bins: int = 20) -> dict[str, np.ndarray | float]:
    """Normalised MI matrix and its summaries for means ``mu`` (n, D) and ``latents_classes`` (n, 6).

    Returns ``nmi`` (D, F), ``best`` (F,), ``gap`` (F,), ``winner`` (F,) int, ``mig`` float, ``active`` (D,)
    bool and ``mean_var`` (D,) over the factors :data:`SCORED_FACTORS`.
    """
    codes = discretize(mu, bins)
    factors = np.asarray(classes)[:, 1:6]
    n_lat, n_fac = codes.shape[1], factors.shape[1]
    nmi = np.zeros((n_lat, n_fac))
    for k in range(n_fac):
        h = entropy(factors[:, k])
        for d in range(n_lat):
            nmi[d, k] = mutual_info(codes[:, d], factors[:, k]) / h if h > 0 else 0.0
    order = np.sort(nmi, axis=0)[::-1]  # (D, F), descending down each column
    gap = order[0] - (order[1] if n_lat > 1 else 0.0)
    return {
        "nmi": nmi,
        "best": order[0],
        "gap": gap,
        "winner": nmi.argmax(axis=0),
        "mig": float(gap.mean()),
        "active": active_latents(mu),
        "mean_var": mu.var(axis=0),
    }


def tuning(mu: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
    """Mean activation of every latent (Fig. 5): ``pos`` (D, 32 posY, 32 posX), ``scale`` (D, 3 shapes, 6),
    ``orientation`` (D, 3 shapes, 40); NaN where no evaluated image has that factor value."""
    classes = np.asarray(classes)
    n_lat = mu.shape[1]

    def group_mean(keys: np.ndarray, size: int) -> np.ndarray:
        counts = np.bincount(keys, minlength=size).astype(np.float64)
        sums = np.stack([np.bincount(keys, weights=mu[:, d], minlength=size) for d in range(n_lat)])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)  # (D, size)

    pos = group_mean(classes[:, 5] * 32 + classes[:, 4], 32 * 32).reshape(n_lat, 32, 32)
    scale = group_mean(classes[:, 1] * 6 + classes[:, 2], 3 * 6).reshape(n_lat, 3, 6)
    orient = group_mean(classes[:, 1] * 40 + classes[:, 3], 3 * 40).reshape(n_lat, 3, 40)
    return {"pos": pos, "scale": scale, "orientation": orient}
