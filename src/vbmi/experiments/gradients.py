"""Accuracy of encoder gradients from MI bounds with the optimal critic (Fig. 4 of the paper, Sec. 3).

The encoder family of Sec. 3: ``x ~ N(0, I_d)``, ``p_rho(y_i | x_i) = N(rho_i x_i, 1 - rho_i^2)`` with one
correlation per dimension, reparameterised as ``y = rho * x + sqrt(1 - rho^2) * eps``. The true
``I(X; Y) = -1/2 sum_i log(1 - rho_i^2)`` and its gradient ``dI/drho_i = rho_i / (1 - rho_i^2)`` are
analytic (:func:`vbmi.data.encoder_mi`, :func:`vbmi.data.encoder_mi_grad`).

For each replicate batch of K pairs we differentiate, with respect to the vector rho, each bound
evaluated with the optimal critic *of the current encoder*: scores ``log p_rho(y_j | x_i)`` (and
``log p(y_j)``, the N(0, I) marginal, which does not depend on rho except through y), so rho enters
both through the samples y (reparameterisation) and through the critic, as in the structured bounds
of Sec. 2.5 where the encoder is the known conditional:

* ``nwj``: :func:`vbmi.bounds.nwj` on ``1 + log p(y|x)/p(y)``. Its value is unbiased for I at every
  rho, so (exchanging derivative and expectation) its gradient is unbiased for ``dI/drho``;
* ``js``: :func:`vbmi.bounds.js` on the exact JS logits ``log p(y|x)/p(y)``: value as I_NWJ,
  gradient that of the f-GAN JS objective (how I_JS trains, App. D), i.e. the gradient of a JS
  divergence bound, not of I: biased for ``dI/drho`` by construction;
* ``nce``: :func:`vbmi.bounds.nce` on ``log p(y|x)`` (I_TNCE, Eq. 12);
* I_alpha over an alpha grid: :func:`vbmi.bounds.interpolated` with ``q = p(y)``, whose value and
  gradient w.r.t. the scores come in closed form from
  :func:`vbmi.experiments.montecarlo.interpolated_value_and_grad` (tested against autograd through
  :func:`vbmi.bounds.interpolated`); alpha = 0 is NWJ again.

Per-replicate gradients, vectorised
-----------------------------------
Replicates are a leading dim. Estimate r depends only on replicate r's samples and on its own copy
``rho_rep[r]`` of rho, so the vector-Jacobian product of the ``[R]`` estimates with a cotangent of
ones *is* the ``[R, d]`` matrix of per-replicate gradients: exactly what
``torch.func.vmap(torch.func.grad(single_batch_estimate))`` returns (tested against it), without
vmap's per-op batching rules. The computation is split in two stages: (1) bound -> ``d est / d log_p``
(``[R, K, K]``) and ``d est / d log p(y)``: a ``torch.func.vjp`` through :mod:`vbmi.bounds` for NWJ,
JS and NCE (about ten K^2 operations each), the closed form for I_alpha (autograd through the fused
I_alpha records several times more K^2 operations per alpha), and (2) the encoder's score map
rho -> (log_p, log p(y)), whose vjp is applied to all bounds' cotangents at once in closed form
(:func:`encoder_scores_vjp`: row/column sums and one matrix product per bound, where the
``torch.func.vmap``-ed autograd vjp makes ~20 elementwise passes over ``[B, R, K, K]``).
Differentiating all 3 + A estimates with one ``jacrev`` instead would push each of the 3 + A
cotangents through every bound's graph, O((3+A)^2 K^2) work instead of O((3+A) K^2).

Precision: float64 throughout. Measured on the same samples (K = 256, I = 10 nats), float32
gradients had relative RMS error 6e-4 at alpha = 0.1, 7e-3 at 0.9 and 36% at alpha = 1: the I_alpha
joint term's gradient is a difference of near-equal softmax weights down each column.

Statistics
----------
The squared error of one replicate is the mean over the d coordinates of ``(g_hat - dI/drho)^2``; the
cube holds its mean over replicates (``mse``, with a standard error), its median
(``median_squared_error``; the TUBA end, alpha -> 0, has heavy-tailed gradient errors at high MI, so
the mean moves between replicate sets while the median is stable), the squared bias of the mean
gradient and the variance, both averaged over coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from .. import bounds as B
from ..data import encoder_mi_grad, gaussian_log_p_y, gaussian_log_p_y_given_x
from .montecarlo import _alphas, cell_seed, grid_setup, interpolated_fused, interpolated_value_and_grad

__all__ = [
    "BOUNDS",
    "PROFILES",
    "encoder_rho",
    "encoder_scores",
    "encoder_scores_vjp",
    "bound_objectives",
    "per_replicate_gradients",
    "simulate_gradients",
    "best_alpha",
]

BOUNDS: tuple[str, ...] = ("nwj", "js", "nce")
"""Alpha-free estimators of Fig. 4 (I_alpha has its own ``alpha`` dim)."""

PROFILES: tuple[str, ...] = ("equal", "dirichlet")
_STAGE_GRADIENTS = 4


def encoder_rho(mi: float, d: int = 20, *, profile: str = "equal", seed: int = 0, dtype=torch.float64) -> Tensor:
    """Per-dimension correlations ``rho [d]`` with total ``I(X; Y) = mi``.

    ``profile="equal"``: every dim carries mi / d. ``"dirichlet"``: the shares ``w ~ Dirichlet(1, ..., 1)``
    are drawn once from ``seed`` (the same for every mi), dim i carries ``mi * w_i``, so the gradient
    components differ. ``rho_i = sqrt(1 - exp(-2 I_i))``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    if mi < 0:
        raise ValueError("mutual information must be >= 0")
    if profile == "equal":
        shares = torch.full((d,), 1.0 / d, dtype=torch.float64)
    else:
        g = torch.Generator().manual_seed(int(seed))
        e = -torch.log(torch.rand(d, generator=g, dtype=torch.float64))  # Exp(1) -> Dirichlet(1)
        shares = e / e.sum()
    return torch.sqrt(-torch.expm1(-2.0 * mi * shares)).to(dtype)


def encoder_scores(rho_rep: Tensor, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
    """``(log p_rho(y_j | x_i) [R, K, K], log p(y_j) [R, K])`` with ``y = rho x + sqrt(1 - rho^2) eps``.

    ``rho_rep [R, d]`` (one copy of rho per replicate, so gradients stay per replicate), ``x, eps
    [R, K, d]``. Differentiable in ``rho_rep`` through y and through the critic.
    """
    r = rho_rep.unsqueeze(-2)  # [R, 1, d]
    y = r * x + torch.sqrt(1.0 - r**2) * eps  # [R, K, d]
    return gaussian_log_p_y_given_x(x, y, rho_rep, per_dim=True), gaussian_log_p_y(y)


def encoder_scores_vjp(rho: Tensor, x: Tensor, eps: Tensor, cot_p: Tensor, cot_y: Tensor) -> Tensor:
    r"""Vector-Jacobian product of :func:`encoder_scores` w.r.t. rho, in closed form, batched over cotangents.

    ``rho [d]``, ``x, eps [R, K, d]``, ``cot_p [..., R, K, K]`` (cotangent of log_p), ``cot_y [..., R, K]``
    (of log p(y)); returns ``[..., R, d]``: ``sum_ij cot_p[ij] d log_p_ij / d rho_r + sum_j cot_y[j]
    d log p(y_j) / d rho_r`` for each replicate r. Per dim (sigma^2 = 1 - rho^2,
    ``y_j = rho x_j + sigma eps_j``, ``y'_j = dy_j/drho = x_j - rho eps_j / sigma``), the total derivative of
    ``log N(y_j; rho x_i, sigma^2)`` is

    .. math:: \frac{\rho}{\sigma^2} - \frac{y_j y'_j}{\sigma^2} - \frac{\rho y_j^2}{\sigma^4}
              - \rho x_i^2 \Big(\frac{1}{\sigma^2} + \frac{\rho^2}{\sigma^4}\Big)
              + x_i \Big(y_j \big(\frac{1}{\sigma^2} + \frac{2\rho^2}{\sigma^4}\big) + \frac{\rho y'_j}{\sigma^2}\Big),

    separable in (i, j) except the last term, so the contraction with ``cot_p`` needs its row and
    column sums and one matrix product ``cot_p^T x`` (K^2 d) per bound, where autograd through the
    score map under ``vmap`` made ~20 elementwise passes over ``[B, R, K, K]``. Tested against autograd.
    """
    r = rho.to(x.dtype)
    var = 1.0 - r**2  # [d]
    sd = torch.sqrt(var)
    y = r * x + sd * eps  # [R, K, d]
    dy = x - r * eps / sd  # [R, K, d]
    total = cot_p.sum((-2, -1)).unsqueeze(-1)  # [..., R, 1]
    row = cot_p.sum(-1)  # [..., R, K] (over j, indexed by i)
    col = cot_p.sum(-2)  # [..., R, K] (over i, indexed by j)
    j_term = -(y * dy) / var - r * y**2 / var**2  # [R, K, d]
    i_term = -r * x**2 * (1.0 / var + r**2 / var**2)  # [R, K, d]
    w = y * (1.0 / var + 2.0 * r**2 / var**2) + r * dy / var  # [R, K, d]
    cross = (cot_p.transpose(-1, -2) @ x * w).sum(-2)  # [..., R, d]: sum_j (sum_i G_ij x_i) w_j
    out = total * (r / var) + (col.unsqueeze(-1) * j_term).sum(-2) + (row.unsqueeze(-1) * i_term).sum(-2) + cross
    return out - (cot_y.unsqueeze(-1) * y * dy).sum(-2)  # log p(y) = -|y|^2/2 + const


def bound_objectives(alphas: Sequence[float]) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """Name -> ``objective(log_p, log_p_y) -> [R]`` whose gradient is the bound's (module docstring).

    I_alpha entries are named ``alpha=<value>``.
    """
    out: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "nwj": lambda lp, ly: B.nwj(lp - ly.unsqueeze(-2) + 1.0),
        "js": lambda lp, ly: B.js(lp - ly.unsqueeze(-2)),
        "nce": lambda lp, ly: B.nce(lp),
    }
    for a in _alphas(alphas):
        out[f"alpha={a!r}"] = lambda lp, ly, a=a: interpolated_fused(lp, ly, a)
    return out


def per_replicate_gradients(
    rho: Tensor, x: Tensor, eps: Tensor, alphas: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Values ``[R, 3 + A]`` and per-replicate gradients ``d est / d rho`` ``[R, 3 + A, d]``.

    Columns: nwj, js, nce, then I_alpha for each alpha. ``rho [d]``, ``x, eps [R, K, d]`` (same dtype).
    Two-stage ``torch.func.vjp`` with a ones cotangent over the replicate dim (module docstring).
    """
    n_rep, _, d = x.shape
    with torch.no_grad():
        log_p, log_p_y = encoder_scores(rho.to(x.dtype).expand(n_rep, d), x, eps)
    ones = torch.ones(n_rep, dtype=x.dtype, device=x.device)
    plain = bound_objectives([])
    alist = _alphas(alphas)
    cot_p = log_p.new_empty((len(plain) + len(alist),) + tuple(log_p.shape))  # [B, R, K, K], no stacking copy
    values, cot_y = [], []
    for b, objective in enumerate(plain.values()):
        value, pullback = torch.func.vjp(objective, log_p, log_p_y)
        g_p, g_y = pullback(ones)  # [R, K, K], [R, K]: per replicate, since replicates do not interact
        values.append(value.detach())
        cot_p[b] = g_p
        cot_y.append(g_y)
    values_a, _, g_ya = interpolated_value_and_grad(log_p, log_p_y, alist, out=cot_p[len(plain) :])  # [R, A], -, [A, R, K]
    cot_y = torch.cat([torch.stack(cot_y), g_ya])  # [B, R, K]
    # Stage 2: all bounds' cotangents through the encoder's score map at once.
    grads = encoder_scores_vjp(rho, x, eps, cot_p, cot_y)  # [B, R, d]
    return torch.cat([torch.stack(values, dim=-1), values_a], dim=-1), grads.transpose(0, 1)


def _draw(n_rep: int, k: int, d: int, generator: torch.Generator, dtype, device) -> tuple[Tensor, Tensor]:
    """``x, eps [R, K, d]`` standard normals, in the order :func:`vbmi.data.sample_encoder` draws them."""
    x = torch.randn((n_rep, k, d), generator=generator, dtype=dtype, device=device)
    eps = torch.randn((n_rep, k, d), generator=generator, dtype=dtype, device=device)
    return x, eps


def _grad_stats(grads: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """``grads [R, B, d]``, ``truth [d]`` -> statistics ``[B]``."""
    r = grads.shape[0]
    sq = ((grads - truth) ** 2).mean(-1)  # [R, B]
    mean_grad = grads.mean(0)  # [B, d]
    return {
        "mse": sq.mean(0),
        "mse_se": sq.std(0, ddof=1) / math.sqrt(r),
        "median_squared_error": np.median(sq, axis=0),
        "bias_squared": ((mean_grad - truth) ** 2).mean(-1),
        "variance": grads.var(0, ddof=1).mean(-1),
        "max_abs_bias_z": (np.abs(mean_grad - truth) / (grads.std(0, ddof=1) / math.sqrt(r) + 1e-300)).max(-1),
    }


_ATTRS = {
    "mse": ("nat^2", "gradient MSE", "Mean over replicates of mean_i (dI_hat/drho_i - dI/drho_i)^2 (rho is dimensionless)."),
    "mse_se": ("nat^2", "standard error of the gradient MSE", "Sample std of the per-replicate squared error / sqrt(R)."),
    "median_squared_error": (
        "nat^2",
        "median gradient squared error",
        "Median over replicates of mean_i (dI_hat/drho_i - dI/drho_i)^2: robust to the heavy tails near alpha = 0.",
    ),
    "bias_squared": ("nat^2", "squared gradient bias", "mean_i (mean over replicates of dI_hat/drho_i - dI/drho_i)^2."),
    "variance": ("nat^2", "gradient variance", "mean_i of the sample variance of dI_hat/drho_i over replicates."),
    "max_abs_bias_z": (
        "1",
        "largest gradient bias in standard errors",
        "max_i |mean dI_hat/drho_i - dI/drho_i| / standard error of the mean: ~N(0,1)-sized where unbiased.",
    ),
}


def simulate_gradients(
    true_mi: Sequence[float],
    batch_sizes: Sequence[int],
    alphas: Sequence[float],
    *,
    replicates: int,
    max_replicates: int,
    d: int = 20,
    profile: str = "equal",
    seed: int = 0,
    max_chunk_elements: int = 1 << 18,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> xr.Dataset:
    """Gradient MSE of every Fig. 4 estimator over a (true MI, batch size) grid.

    Replicates per batch size as in :func:`vbmi.experiments.montecarlo.replicates_for`; chunks of at
    most ``max_chunk_elements`` score entries (at least one replicate); chunk c of cell (i, K) draws from
    a generator seeded with ``cell_seed(seed, 4, i, K, c)``. Returns a Dataset with dims ``bound`` (nwj,
    js, nce), ``alpha``, ``true_mi``, ``batch_size``: the :data:`_ATTRS` statistics on
    ``(bound, true_mi, batch_size)`` and prefixed ``interpolated_`` on ``(alpha, true_mi, batch_size)``;
    ``true_gradient_sq(true_mi)`` (mean_i (dI/drho_i)^2, the ground truth's scale) is a coordinate.
    """
    mis, ks, alist, n_rep = grid_setup(true_mi, batch_sizes, alphas, replicates=replicates,
                                       max_replicates=max_replicates)
    device = torch.device(device)
    nb = len(BOUNDS)
    acc_b = {s: np.full((nb, len(mis), len(ks)), np.nan) for s in _ATTRS}
    acc_a = {s: np.full((len(alist), len(mis), len(ks)), np.nan) for s in _ATTRS}
    truth_sq = np.zeros(len(mis))
    for i, mi in enumerate(mis):
        rho = encoder_rho(mi, d, profile=profile, seed=seed, dtype=dtype).to(device)
        truth = encoder_mi_grad(rho).double().cpu().numpy()
        truth_sq[i] = float((truth**2).mean())
        for j, k in enumerate(ks):
            step = max(1, max_chunk_elements // (k * k))
            grads = []
            for c, start in enumerate(range(0, n_rep[k], step)):
                r = min(step, n_rep[k] - start)
                gen = torch.Generator(device=device).manual_seed(cell_seed(seed, _STAGE_GRADIENTS, i, k, c))
                x, eps = _draw(r, k, d, gen, dtype, device)
                _, g = per_replicate_gradients(rho, x, eps, alist)
                grads.append(g.double().cpu().numpy())
            st = _grad_stats(np.concatenate(grads, axis=0), truth)
            for s, v in st.items():
                acc_b[s][:, i, j] = v[:nb]
                acc_a[s][:, i, j] = v[nb:]
            if progress:
                print(f"gradients: I = {mi:g} nats, K = {k}: {n_rep[k]} replicates", flush=True)
    data = {}
    for s, (units, long_name, desc) in _ATTRS.items():
        data[s] = (("bound", "true_mi", "batch_size"), acc_b[s], {"units": units, "long_name": long_name, "description": desc})
        data[f"interpolated_{s}"] = (
            ("alpha", "true_mi", "batch_size"),
            acc_a[s],
            {"units": units, "long_name": f"I_alpha {long_name}", "description": f"{desc} I_alpha with q = p(y), per alpha."},
        )
    data["replicates"] = (
        ("batch_size",),
        np.asarray([n_rep[k] for k in ks], dtype=np.int64),
        {"units": "1", "long_name": "replicates", "description": "Independent batches per (true_mi, batch_size) cell."},
    )
    return xr.Dataset(
        data,
        coords={
            "bound": np.asarray(BOUNDS, dtype=str),
            "alpha": np.asarray(alist, dtype=np.float64),
            "true_mi": ("true_mi", np.asarray(mis, dtype=np.float64), {"units": "nat", "long_name": "true MI"}),
            "batch_size": np.asarray(ks, dtype=np.int64),
            "true_gradient_sq": (
                ("true_mi",),
                truth_sq,
                {
                    "units": "nat^2",
                    "long_name": "mean squared true gradient",
                    "description": "mean_i (dI/drho_i)^2 = mean_i (rho_i / (1 - rho_i^2))^2 (rho is dimensionless)",
                },
            ),
        },
        attrs={"d": int(d), "seed": int(seed), "profile": profile, "figure": "Fig. 4"},
    )


def best_alpha(ds: xr.Dataset, statistic: str = "mse") -> xr.DataArray:
    """The alpha with the smallest ``interpolated_<statistic>`` per (true_mi, batch_size) (Fig. 4 right)."""
    var = ds[f"interpolated_{statistic}"]
    out = var.fillna(np.inf).idxmin("alpha")
    out.attrs = {"units": "1", "long_name": f"alpha with the lowest gradient {statistic.replace('_', ' ')}"}
    return out
