"""Bias, variance and MSE of MI bounds with the optimal critic (Fig. 3 of the paper, Sec. 3).

No training: on the d-dimensional correlated Gaussian (App. B) the critics are exact, so the only
error left is the bound's own bias and variance. Every bound is evaluated from one matrix
``log_p[..., i, j] = log p(y_j | x_i)`` (rows x, columns y, positives on the diagonal, leading dims =
independent replicates) and ``log_p_y[..., j] = log p(y_j)``:

=============  ==========================================  ============================================
name           critic                                      bound (vbmi.bounds)
=============  ==========================================  ============================================
``nwj``        ``f = 1 + log p(y|x)/p(y)``                 :func:`vbmi.bounds.nwj` (Eq. 7), unbiased
``js``         JS logits ``V = log p(y|x)/p(y)``           :func:`vbmi.bounds.js` (App. D, Eq. 18)
``nce``        ``f = log p(y|x)`` (= I_TNCE, Eq. 12)       :func:`vbmi.bounds.nce` (Eq. 10), <= log K
``loo_upper``  ``log p(y|x)``                              :func:`vbmi.bounds.loo_upper` (Eq. 13)
I_alpha        ``f = log p(y|x)``, ``q = p(y)``            :func:`vbmi.bounds.interpolated` (Eq. 11)
=============  ==========================================  ============================================

With the exact JS logits, I_JS's *value* ``1 + E_p[V] - E_q[e^V]`` is I_NWJ at its optimal critic,
sample for sample (App. D: "if V is exact ... the first term is exactly KL"); the two differ in their
*gradients* (:mod:`vbmi.experiments.gradients`). I_alpha at alpha = 0 is I_NWJ again (q = p(y)).

Fused evaluation
----------------
:func:`optimal_critic_bounds` evaluates all of them from one pass over the matrix: the off-diagonal
column maximum ``c_j`` and ``E[i, j] = exp(log_p[i, j] - c_j)`` (one ``exp`` per element) give the
off-diagonal column log-sum-exp ``O_j`` exactly, from which NWJ/JS, NCE, the LOO upper bound and
I_alpha's marginal term are O(K) each. I_alpha's joint term needs, for every held-out row k != j,
``log(alpha m(y_j; x_{-k}) + (1 - alpha) q(y_j))``: the held-out mixture is
``e^{log_p[j, j]} + e^{c_j} (S_j - E[k, j])`` with ``S_j = sum_{i != j} E[i, j] >= 1``, so per alpha the
only O(K^2) work is one fused multiply-add and a product down the column, with one ``log`` per group
of G rows (:func:`_sum_log_rows`); no K^3 anything, no second exp pass. For the row holding the column
maximum the held-out sum is taken from a sum that excludes it (as in
:func:`vbmi.bounds.loo_logmeanexp_columns`), so no catastrophic ``S - 1`` cancellation occurs.
Tests check the fused values equal :func:`reference_bounds` (the plain :mod:`vbmi.bounds` calls).

Precision
---------
Everything runs in float64 by default. In float32 the score matrix itself loses accuracy at high MI:
``gaussian_log_p_y_given_x`` forms ``|y - rho x|^2 / (1 - rho^2)`` from squared norms ~ d / (1 - rho^2)
(~ 54 at 10 nats) minus a matrix product, so float32's 6e-8 relative error becomes ~1e-5 nats per
entry and the NWJ marginal term ``E_q[r]`` (dominated by rare r ~ e^{20}) amplifies it; the I_alpha
joint term averages K(K-1) logs of near-equal numbers. float64 costs ~2x on a CPU and nothing here
is memory-bound at the chunk sizes used.

The closed-form NWJ variance
----------------------------
See :func:`nwj_variance_closed_form` for the derivation; the Monte Carlo cube stores both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from .. import bounds as B
from ..data import gaussian_log_p_y, mi_to_rho, sample_gaussian
from ..utils import exp_clamp

__all__ = [
    "FIG3_BOUNDS",
    "optimal_critic_bounds",
    "reference_bounds",
    "gaussian_scores",
    "interpolated_fused",
    "interpolated_value_and_grad",
    "nwj_variance_closed_form",
    "nwj_variance_fourth_moment_finite_below",
    "replicates_for",
    "cell_seed",
    "simulate",
]

FIG3_BOUNDS: tuple[str, ...] = ("nwj", "js", "nce", "loo_upper")
"""The alpha-free estimators of Fig. 3 (I_alpha has its own ``alpha`` dim)."""

_STAGE_MONTECARLO = 3  # mixed into every cell seed so Fig. 3 and Fig. 4 never share random streams


# --------------------------------------------------------------------------------------------------
# Fused bound evaluation on a [..., K, K] batch
# --------------------------------------------------------------------------------------------------
def _safe_exp(x: Tensor) -> Tensor:
    return torch.exp(torch.clamp(x, max=exp_clamp(x.dtype)))


def _column_stats(log_p: Tensor) -> dict[str, Tensor]:
    """Shared pass: off-diagonal column max, shifted exponentials, held-out sums (see module doc).

    Returns ``diag [..., K]``; ``cmax [..., K]`` (max over i != j of log_p[i, j]);
    ``log_off [..., K]`` (``O_j = log sum_{i != j} exp log_p[i, j]``); ``s_wo_max [..., K]`` (that sum
    without the max row, in units of ``e^{c_j}``, summed exactly rather than as ``S_j - 1``); and
    ``one_minus_e [..., K, K] = 1 - E``, so that the held-out sum ``sum_{i != j, k} E[i, j]`` is
    ``s_wo_max_j + one_minus_e[k, j]`` for every row k: exactly ``s_wo_max_j`` at the max row (where
    ``E = exp(0) = 1``), ``S_j - E[k, j] >= 1`` elsewhere, ``S_j`` on the diagonal.
    Only arithmetic masks (boolean ``where``/``masked_fill`` and ``max`` with indices cost 5-15x an
    ``exp`` pass per element, bench/proposals.py); in-place updates of its own temporaries only under
    ``no_grad``, so autograd and ``torch.func`` work (tested). The frac() trick for the sum without
    the max row is the bench helper's proposal (bench/proposals.py).
    """
    k = log_p.shape[-1]
    neg_diag = torch.zeros(k, k, dtype=log_p.dtype, device=log_p.device).fill_diagonal_(float("-inf"))
    diag = torch.diagonal(log_p, dim1=-2, dim2=-1)  # [..., K]
    e = log_p + neg_diag  # [..., K, K]: -inf on the diagonal (a fresh tensor, updated in place below)
    cmax = e.amax(dim=-2)  # [..., K]: off-diagonal column max (no indices: max-with-indices ran ~5x slower)
    if torch.is_grad_enabled():  # amax's backward needs its input: no in-place updates
        e = torch.exp(e - cmax.unsqueeze(-2))  # [..., K, K] in [0, 1]; 0 on the diagonal, exactly 1 on the max row
    else:  # no autograd: reuse the temporary (a fresh [R, K, K] allocation page-faults; ~1 pass each)
        e = e.sub_(cmax.unsqueeze(-2)).exp_()
    # Sum without the max row, exactly: frac() zeroes the entries equal to 1 (the max row and any exact
    # ties); n_one counts them, and all but one of them are added back.
    s_all = e.sum(-2)  # [..., K] >= 1
    s_lt = torch.frac(e).sum(-2)  # [..., K]
    n_one = torch.round(s_all - s_lt).detach()  # [..., K] >= 1
    s_wo_max = s_lt + (n_one - 1.0)  # [..., K]: sum over i != j without one max row
    return {
        "diag": diag,
        "cmax": cmax,
        "log_off": cmax + torch.log(s_all),
        "s_wo_max": s_wo_max,
        "one_minus_e": 1.0 - e,
        "e": e,
    }


def _nwj_from_stats(st: Mapping[str, Tensor], log_p_y: Tensor, k: int) -> Tensor:
    # nwj(1 + log_p - log_p_y): 1 + mean_j (log_p_jj - log p(y_j)) - mean_{i != j} p(y_j|x_i)/p(y_j)
    joint = (st["diag"] - log_p_y).mean(-1)
    log_marg = torch.logsumexp(st["log_off"] - log_p_y, dim=-1) - math.log(k * (k - 1))
    return 1.0 + joint - _safe_exp(log_marg)


def _group_size(k: int) -> int:
    """Largest divisor of K not above 600 / log(K + 1) (so no padding copy is needed)."""
    gmax = max(1, min(k, int(600.0 // math.log(k + 1.0))))
    return max(g for g in range(1, gmax + 1) if k % g == 0)


def _sum_log_rows(inner: Tensor, k: int) -> Tensor:
    """``sum_i log inner[..., i, j]`` down each column, with ~K/G logs instead of K (float64).

    Entries off the max row lie in [1, K + 1] (module docstring), so products of
    G <= 600 / log(K + 1) rows (G divides K) stay below e^600; the column is multiplied in groups of G
    rows and one ``log`` is taken per group (relative rounding ~G * eps, ~1e-14 nats). The max-row entry
    is ``(s_wo_max + T) e^{-shift}``, which underflows a group only below ~1e-300 (the diagonal and
    every other off-diagonal entry ~690 nats under the column maximum, far outside this experiment);
    the result is then -inf, never silently wrong, and :func:`simulate` raises on non-finite estimates.
    No data-dependent branches, so the function works under ``torch.func.vmap``.
    """
    g = _group_size(k)
    if inner.dtype != torch.float64 or g == 1:
        return torch.log(inner).sum(-2)
    groups = inner.reshape(inner.shape[:-2] + (k // g, g, k)).prod(-2)  # [..., K/G, K]
    return torch.log(groups).sum(-2)


def _interpolated_from_stats(
    st: Mapping[str, Tensor], log_q: Tensor, alpha: float, k: int, parts: dict | None = None
) -> Tensor:
    """I_alpha (Eq. 11) with critic log_p and baseline log_q, for one alpha in [0, 1]; shape [...].

    If ``parts`` is a dict, the per-alpha intermediates (``shift, scale, offset, inner, log_dd``) are
    stored in it for :func:`interpolated_value_and_grad`.
    """
    diag, cmax, log_off = st["diag"], st["cmax"], st["log_off"]
    if alpha == 0.0:  # denominator q(y): I_TUBA with a = q; no K^2 work
        return _nwj_from_stats(st, log_q, k)
    log_a = math.log(alpha / (k - 1))  # alpha m = (alpha / (K - 1)) * held-out sum
    # log_den[k, j] = c_j + log_a + log(held[k, j] + T_j), held = s_wo_max_j + (1 - E[k, j]),
    # T_j = e^{log_p_jj - c_j} + (1 - alpha)(K - 1)/alpha * e^{log q_j - c_j} (the diagonal term + q).
    log_t = diag - cmax  # [..., K]
    if alpha < 1.0:
        log_t = torch.logaddexp(log_t, math.log((1.0 - alpha) * (k - 1) / alpha) + log_q - cmax)
    shift = log_t.clamp_min(0.0)  # [..., K]: keeps (held + T) e^{-shift} in (0, K + 1]
    scale = torch.exp(-shift)  # [..., K]
    offset = st["s_wo_max"] * scale + torch.exp(log_t - shift)  # [..., K]
    # inner[k, j] = (held[k, j] + T_j) e^{-shift_j}: one fused multiply-add per element.
    inner = torch.addcmul(offset.unsqueeze(-2), st["one_minus_e"], scale.unsqueeze(-2))  # [..., K, K]
    inner_diag = offset + scale  # [..., K]: row k = j (E = 0 there), excluded from the sum
    sum_log_inner = _sum_log_rows(inner, k) - torch.log(inner_diag)  # [..., K]: over k != j
    sum_log_den = (k - 1) * (cmax + log_a + shift) + sum_log_inner  # [..., K]
    joint = diag.mean(-1) - sum_log_den.sum(-1) / (k * (k - 1))
    # Marginal: y_j against x_{-j}, denominator with x_j held out: log(alpha/(K-1) e^{O_j} + (1-alpha) q_j).
    if alpha < 1.0:
        log_dd = torch.logaddexp(log_a + log_off, math.log1p(-alpha) + log_q)
    else:
        log_dd = log_a + log_off
    log_marg = torch.logsumexp(log_off - log_dd, dim=-1) - math.log(k * (k - 1))
    if parts is not None:
        parts.update(shift=shift, scale=scale, offset=offset, inner=inner, log_dd=log_dd)
    return 1.0 + joint - _safe_exp(log_marg)


def interpolated_value_and_grad(
    log_p: Tensor, log_p_y: Tensor, alphas: Sequence[float], *, out: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    r"""I_alpha for several alphas with its analytic gradient w.r.t. ``log_p`` and ``log_p_y``.

    Returns ``value [..., A]``, ``d value / d log_p [A, ..., K, K]`` (alpha leading, written into
    ``out`` when given, so a caller can stack it with other cotangents without a copy) and
    ``d value / d log_p_y [A, ..., K]``, from one shared pass, without autograd, in place: ~6
    elementwise K^2 operations per alpha, several times fewer than autograd records through
    :func:`interpolated_fused`.
    With ``a_ij = p(y_j|x_i)``, ``c = 1/(K(K-1))``, ``beta = alpha/(K-1)``, held-out denominators
    ``den_kj = beta (sum_{i != k} a_ij) + (1 - alpha) q_j`` (k != j), ``u_kj = 1/den_kj``,
    ``U_j = sum_{k != j} u_kj``, ``dd_j = beta sum_{i != j} a_ij + (1 - alpha) q_j``:

    .. math::
        \partial I / \partial \log p_{jj} = 1/K - c \beta U_j a_{jj}, \qquad
        \partial I / \partial \log p_{ij} = -c \beta (U_j - u_{ij}) a_{ij}
            - c (1 - \alpha) q_j a_{ij} / dd_j^2 \;(i \ne j),

        \partial I / \partial \log q_j = c (1 - \alpha) q_j (\textstyle\sum_{i \ne j} a_{ij} / dd_j^2 - U_j).

    (The exponent clamp of the marginal term is ignored: it never binds with the exact critic.)
    Tested against autograd through :func:`vbmi.bounds.interpolated`. alpha = 0 is I_NWJ here too.
    """
    k = _check_inputs(log_p, log_p_y)
    alist = _alphas(alphas)
    if out is None:
        out = log_p.new_empty((len(alist),) + tuple(log_p.shape))
    with torch.no_grad():
        st = _column_stats(log_p)
        diag, cmax, log_off = st["diag"], st["cmax"], st["log_off"]
        c = 1.0 / (k * (k - 1))
        ce = st["e"] * c  # [..., K, K]: c E_ij, 0 on the diagonal
        values, g_y = [], []
        for a_idx, alpha in enumerate(alist):
            g = out[a_idx]  # [..., K, K]
            if alpha == 0.0:  # NWJ with critic 1 + log p - log q: d/dlog p_ij = -c a_ij / q_j, diag 1/K
                values.append(_nwj_from_stats(st, log_p_y, k))
                torch.mul(ce, -torch.exp(cmax - log_p_y).unsqueeze(-2), out=g)
                g.diagonal(dim1=-2, dim2=-1).fill_(1.0 / k)
                g_y.append(-1.0 / k + c * torch.exp(log_off - log_p_y))
                continue
            parts: dict = {}
            values.append(_interpolated_from_stats(st, log_p_y, alpha, k, parts))
            shift, scale, offset, log_dd = parts["shift"], parts["scale"], parts["offset"], parts["log_dd"]
            torch.reciprocal(parts["inner"], out=g)  # [..., K, K]: 1 / (beta e^{c_j} e^{shift_j}) u_kj
            v = g.sum(-2) - torch.reciprocal(offset + scale)  # [..., K]: sum over k != j
            # beta U_j a_ij = E_ij scale_j V_j;  beta u_ij a_ij = E_ij scale_j recip_ij
            if alpha < 1.0:
                marg = (1.0 - alpha) * torch.exp(log_p_y + cmax - 2.0 * log_dd)  # [..., K]
                log_beta = math.log(alpha / (k - 1))
                g_y.append(
                    c * (1.0 - alpha) * (
                        torch.exp(log_p_y + log_off - 2.0 * log_dd)
                        - torch.exp(log_p_y + torch.log(v) - shift - log_beta - cmax)
                    )
                )
            else:
                marg = torch.zeros_like(cmax)
                g_y.append(torch.zeros_like(cmax))
            g.mul_(scale.unsqueeze(-2)).sub_((scale * v + marg).unsqueeze(-2)).mul_(ce)  # 0 on the diagonal
            g.diagonal(dim1=-2, dim2=-1).copy_(1.0 / k - c * torch.exp(diag - cmax) * scale * v)
    return torch.stack(values, -1), out, torch.stack(g_y, 0)


def _check_inputs(log_p: Tensor, log_p_y: Tensor) -> int:
    if not isinstance(log_p, Tensor) or log_p.ndim < 2 or log_p.shape[-1] != log_p.shape[-2]:
        raise ValueError(f"log_p must have shape [..., K, K], got {getattr(log_p, 'shape', None)}")
    k = log_p.shape[-1]
    if k < 2:
        raise ValueError(f"need K >= 2, got {k}")
    if log_p_y.shape[-1] != k:
        raise ValueError(f"log_p_y must have shape [..., K] with K = {k}, got {tuple(log_p_y.shape)}")
    return k


def _alphas(alphas: Sequence[float] | Tensor) -> list[float]:
    out = [float(a) for a in (alphas.tolist() if isinstance(alphas, Tensor) else alphas)]
    bad = [a for a in out if not 0.0 <= a <= 1.0]
    if bad:
        raise ValueError(f"alpha must lie in [0, 1], got {bad}")
    return out


def interpolated_fused(log_p: Tensor, log_p_y: Tensor, alpha: float) -> Tensor:
    """I_alpha with critic ``log_p`` and ``q = exp(log_p_y)`` for one alpha, fused; equals
    ``vbmi.bounds.interpolated(log_p, log_baseline=log_p_y, alpha=alpha)``. Differentiable."""
    k = _check_inputs(log_p, log_p_y)
    (a,) = _alphas([alpha])
    return _interpolated_from_stats(_column_stats(log_p), log_p_y, a, k)


def optimal_critic_bounds(
    log_p: Tensor, log_p_y: Tensor, alphas: Sequence[float] | Tensor = (), *, chunk_elements: int = 1 << 18
) -> dict[str, Tensor]:
    """Every Fig. 3 estimator on a batch of problems, from one shared pass (module docstring).

    ``log_p[..., i, j] = log p(y_j | x_i)`` (``[..., K, K]``), ``log_p_y[..., j] = log p(y_j)``
    (``[..., K]``), leading dims are independent problems (e.g. ``[R]`` replicates). Returns
    ``{"nwj", "js", "nce", "loo_upper"}: [...]`` and ``"interpolated": [..., A]`` (one column per alpha).
    Equals :func:`reference_bounds` (tested); one ``exp`` per score entry plus, per alpha, a
    multiply-add, a product and one ``log`` per G entries. Bench (``python -m bench --only mc_roofline``,
    K = 512, one alpha, loaded 2-core CPU): 24 ns per score entry in float32 and ~50 in float64 against
    263 / 640 for the plain :func:`reference_bounds` calls.
    Purely functional, so it can be differentiated, but :mod:`vbmi.experiments.gradients` calls the
    per-bound pieces to keep one gradient per bound.

    The leading dims are flattened and processed ``chunk_elements // K^2`` problems at a time (at
    least one): a working set of ~2 MB stays in cache, where one [16, 512, 512] float64 pass per step is
    memory-bound on a CPU.
    """
    k = _check_inputs(log_p, log_p_y)
    alist = _alphas(alphas)
    lead = log_p.shape[:-2]
    n = math.prod(lead)
    step = max(1, chunk_elements // (k * k))
    if n > step:
        flat_p = log_p.reshape((n, k, k))
        flat_y = log_p_y.expand(lead + (k,)).reshape((n, k))
        parts = [optimal_critic_bounds(flat_p[i : i + step], flat_y[i : i + step], alist, chunk_elements=chunk_elements)
                 for i in range(0, n, step)]
        return {name: torch.cat([p[name] for p in parts]).reshape(lead + parts[0][name].shape[1:]) for name in parts[0]}
    st = _column_stats(log_p)
    nwj = _nwj_from_stats(st, log_p_y, k)
    out = {
        "nwj": nwj,
        "js": nwj,  # exact JS logits: the I_JS value is I_NWJ at its optimum (App. D)
        "nce": (st["diag"] - torch.logaddexp(st["log_off"], st["diag"])).mean(-1) + math.log(k),
        "loo_upper": (st["diag"] - st["log_off"]).mean(-1) + math.log(k - 1),
    }
    interp = [nwj if a == 0.0 else _interpolated_from_stats(st, log_p_y, a, k) for a in alist]
    out["interpolated"] = torch.stack(interp, dim=-1) if interp else log_p.new_zeros(log_p.shape[:-2] + (0,))
    return out


def reference_bounds(
    log_p: Tensor, log_p_y: Tensor, alphas: Sequence[float] | Tensor = ()
) -> dict[str, Tensor]:
    """The same estimators as :func:`optimal_critic_bounds`, each a plain :mod:`vbmi.bounds` call."""
    _check_inputs(log_p, log_p_y)
    ratio = log_p - log_p_y.unsqueeze(-2)  # [..., K, K]: log p(y_j|x_i) / p(y_j)
    out = {
        "nwj": B.nwj(ratio + 1.0),
        "js": B.js(ratio),
        "nce": B.tnce(log_p),
        "loo_upper": B.loo_upper(log_p),
    }
    interp = [B.interpolated(log_p, log_baseline=log_p_y, alpha=a) for a in _alphas(alphas)]
    out["interpolated"] = torch.stack(interp, dim=-1) if interp else log_p.new_zeros(log_p.shape[:-2] + (0,))
    return out


def gaussian_scores(x: Tensor, y: Tensor, rho: Tensor) -> Tensor:
    """:func:`vbmi.data.gaussian_log_p_y_given_x` (one rho per problem, ``[...]``) in three passes.

    The library forms ``|xs|^2 + |ys|^2 - 2 xs ys^T``, clamps, scales and shifts with six out-of-place
    ``[..., K, K]`` temporaries (the bench measured it at 2-4x the cost of all the bounds together);
    here ``-|xs - ys|^2 / 2 - log_norm`` is one ``baddbmm`` (row term and constant in its ``input``),
    one broadcast ``add_`` (column term) and one in-place ``minimum`` (the library's ``clamp_min(0)``
    of the squared distance). Same math, rounding differs at ~eps (tested). Formulation from
    ``bench/proposals.py`` (the bench helper's proposal). Not differentiable in place; the gradient
    experiment uses the library function.
    """
    d, k = x.shape[-1], x.shape[-2]
    lead = x.shape[:-2]
    rho = rho.to(dtype=x.dtype, device=x.device).reshape(lead + (1, 1))  # [..., 1, 1]
    var = 1.0 - rho**2
    inv_sd = torch.rsqrt(var)
    xs = x * (rho * inv_sd)  # [..., K, d]: scaled means
    ys = y * inv_sd  # [..., K, d]
    log_norm = 0.5 * d * torch.log(2 * math.pi * var)  # [..., 1, 1]
    row = -0.5 * (xs * xs).sum(-1, keepdim=True) - log_norm  # [..., K, 1]
    col = -0.5 * (ys * ys).sum(-1).unsqueeze(-2)  # [..., 1, K]
    out = torch.baddbmm(row.reshape(-1, k, 1), xs.reshape(-1, k, d), ys.reshape(-1, k, d).transpose(-1, -2))
    out = out.reshape(lead + (k, k)).add_(col)
    return torch.minimum(out, -log_norm, out=out)  # [..., K, K]: row i = x_i, column j = y_j


# --------------------------------------------------------------------------------------------------
# Closed form
# --------------------------------------------------------------------------------------------------
def nwj_variance_closed_form(mi: float | np.ndarray, batch_size: int | np.ndarray, d: int = 20) -> np.ndarray:
    r"""Exact variance of the minibatch I_NWJ estimate with the optimal critic on the Gaussian.

    Estimator (K positive pairs, the K(K-1) off-diagonal pairs for the marginal term), with
    ``r(x, y) = p(y|x)/p(y)`` and critic ``f = 1 + log r``:

    .. math:: \hat I = \underbrace{\tfrac1K \sum_j \log r_{jj}}_{A} + 1
                       - \underbrace{\tfrac{1}{K(K-1)} \sum_{i \ne j} r_{ij}}_{B}.

    *Covariances.* ``E_{p(y)}[r(x, y)] = 1`` for every x and ``E_{p(x)}[r(x, y)] = 1`` for every y, so
    every pair of terms that shares only an x, or only a y, or where one term's free variable is
    independent of the rest, is uncorrelated: ``Cov(A, B) = 0``, and in ``Var(B)`` only a term with
    itself (``Var_q r = E_q r^2 - 1``) and with its transpose ``r_ji`` (pairs (x_i, y_i), (x_j, y_j)
    swapped: ``E[r(x, y') r(x', y)] - 1``) survive, each K(K-1) times:

    .. math:: \mathrm{Var}\,\hat I = \frac{\mathrm{Var}_p \log r}{K}
              + \frac{(E_q r^2 - 1) + (E_{swap} - 1)}{K (K-1)}.

    *Gaussian integrals* (d independent dims, correlation rho, ``y = rho x + sigma eps``,
    ``sigma^2 = 1 - rho^2``). Per dim ``log r = -1/2 log sigma^2 + Q`` with
    ``Q = rho^2 (x^2 - eps^2)/2 + rho sigma x eps``, so ``Var_p log r = d rho^2``. ``Q`` is a quadratic
    form ``v^T M v / 2`` in standard normals, and ``E exp(v^T M v / 2) = det(I - M)^{-1/2}`` when
    ``I - M`` is positive definite: ``det(I - M) = 1 - rho^2`` gives
    ``E_q r^2 = E_p r = (1 - rho^2)^{-d} = e^{2I}``; for the swapped product the 4 x 4 form in
    ``(x, x', eps, eps')`` has eigenvalues ``rho, -rho, -rho(1+rho)/(1-rho), rho(1-rho)/(1+rho)``
    (all < 1) and ``det(I - M) = (1 + rho^2)^2``; with the two ``1/sigma`` normalisers
    ``E_swap = (1 - rho^4)^{-d}``. Hence

    .. math:: \mathrm{Var}\,\hat I = \frac{d\rho^2}{K} + \frac{e^{2I} + (1-\rho^4)^{-d} - 2}{K(K-1)},
              \qquad \rho^2 = 1 - e^{-2I/d}.

    At I = 10 nats, K = 64 the second term is ~1.2e5: the estimate is unbiased but nearly useless.

    *Which to trust.* The Monte Carlo variance's own standard error needs ``E_q r^4 = E_p r^3``,
    finite only for ``rho < 1/3`` per dim (``det(I - 3M) > 0``), i.e. ``I < -d/2 log(8/9)`` = 1.18 nats
    at d = 20 (:func:`nwj_variance_fourth_moment_finite_below`). Above that the sample variance
    converges slowly from below (its typical value underestimates, rare huge batches overshoot) and
    its reported standard error is itself unreliable: trust the closed form there.
    ``mi`` and ``batch_size`` broadcast (numpy).
    """
    mi = np.asarray(mi, dtype=np.float64)
    k = np.asarray(batch_size, dtype=np.float64)
    rho2 = -np.expm1(-2.0 * mi / d)
    log_swap = -d * np.log1p(-(rho2**2))
    pair = np.expm1(2.0 * mi) + np.expm1(log_swap)  # (E_q r^2 - 1) + (E_swap - 1)
    return d * rho2 / k + pair / (k * (k - 1.0))


def nwj_variance_fourth_moment_finite_below(d: int = 20) -> float:
    """MI (nats) below which the NWJ sample variance has a finite variance: rho < 1/3 per dim."""
    return -0.5 * d * math.log1p(-1.0 / 9.0)


# --------------------------------------------------------------------------------------------------
# Monte Carlo driver
# --------------------------------------------------------------------------------------------------
def grid_setup(true_mi, batch_sizes, alphas, *, replicates: int, max_replicates: int):
    """Validate a (true MI, batch size, alpha) grid; return ``mis, ks, alphas, {K: replicates}``.

    Shared by the Fig. 3 and Fig. 4 drivers.
    """
    mis = [float(m) for m in true_mi]
    ks = [int(k) for k in batch_sizes]
    alist = _alphas(alphas)
    if not mis or not ks:
        raise ValueError("true_mi and batch_sizes must be non-empty")
    if min(ks) < 3:
        raise ValueError("batch sizes must be >= 3 (the leave-one-out terms need two other samples)")
    kmax = max(ks)
    n_rep = {k: replicates_for(k, replicates=replicates, max_batch_size=kmax, max_replicates=max_replicates) for k in ks}
    if min(n_rep.values()) < 4:
        raise ValueError("need at least 4 replicates per cell for variances and their standard errors")
    return mis, ks, alist, n_rep


def replicates_for(batch_size: int, *, replicates: int, max_batch_size: int, max_replicates: int) -> int:
    """Replicates for one batch size: ``replicates`` at the largest K, ``replicates * K_max / K`` below
    it (so each cell costs about the same K * R), capped at ``max_replicates``."""
    return int(min(max_replicates, max(replicates, round(replicates * max_batch_size / batch_size))))


def cell_seed(seed: int, stage: int, *keys: int) -> int:
    """A 63-bit seed for one (stage, grid cell, chunk), independent streams via numpy's SeedSequence."""
    state = np.random.SeedSequence([int(seed), int(stage), *[int(k) for k in keys]]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _stats(est: np.ndarray, truth: float) -> dict[str, np.ndarray]:
    """Statistics over replicates (axis 0) with standard errors. ``est``: ``[R, ...]``."""
    r = est.shape[0]
    err = est - truth
    mean = est.mean(0)
    centred = est - mean
    m2 = (centred**2).mean(0)
    m4 = (centred**4).mean(0)
    var = m2 * r / (r - 1)
    sq = err**2
    return {
        "mean": mean,
        "mean_se": np.sqrt(var / r),
        "variance": var,
        # large-sample standard error of the sample variance: sqrt((mu4 - (R-3)/(R-1) sigma^4) / R)
        "variance_se": np.sqrt(np.maximum(m4 - (r - 3) / (r - 1) * var**2, 0.0) / r),
        "mse": sq.mean(0),
        "mse_se": sq.std(0, ddof=1) / math.sqrt(r),
    }


def simulate(
    true_mi: Sequence[float],
    batch_sizes: Sequence[int],
    alphas: Sequence[float],
    *,
    replicates: int,
    max_replicates: int,
    d: int = 20,
    seed: int = 0,
    max_chunk_elements: int = 1 << 18,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> xr.Dataset:
    """Monte Carlo bias / variance / MSE of every Fig. 3 estimator over a (true MI, batch size) grid.

    For each cell, ``replicates_for(K, ...)`` independent batches of K pairs are drawn
    (:func:`vbmi.data.sample_gaussian`), scored with :func:`gaussian_scores` (= :func:`vbmi.data.
    gaussian_log_p_y_given_x`), in chunks of at most ``max_chunk_elements`` score entries
    (``chunk * K * K``; peak memory is ~8 such float64 tensors), every estimator is evaluated on the
    same batches (:func:`optimal_critic_bounds`), and statistics over replicates are taken in float64.
    Chunk c of cell (i, K) draws from ``torch.Generator`` seeded with ``cell_seed(seed, 3, i, K, c)``:
    the result is a function of the arguments (chunking included), on one device.

    Returns a Dataset with dims ``bound`` (nwj, js, nce, loo_upper), ``alpha``, ``true_mi``,
    ``batch_size``; variables ``mean, bias, variance, mse`` and their ``*_se`` on
    ``(bound, true_mi, batch_size)``, the same prefixed ``interpolated_`` on
    ``(alpha, true_mi, batch_size)``, ``nwj_variance_closed_form (true_mi, batch_size)`` and
    ``replicates (batch_size)``; ``log_batch_size (batch_size)`` is a coordinate (NCE's ceiling).
    """
    mis, ks, alist, n_rep = grid_setup(true_mi, batch_sizes, alphas, replicates=replicates,
                                       max_replicates=max_replicates)
    device = torch.device(device)
    names = list(FIG3_BOUNDS)
    shape_b = (len(names), len(mis), len(ks))
    shape_a = (len(alist), len(mis), len(ks))
    acc_b = {s: np.full(shape_b, np.nan) for s in ("mean", "mean_se", "variance", "variance_se", "mse", "mse_se")}
    acc_a = {s: np.full(shape_a, np.nan) for s in acc_b}
    for i, mi in enumerate(mis):
        rho = mi_to_rho(mi, d).to(dtype)
        for j, k in enumerate(ks):
            chunk = max(1, max_chunk_elements // (k * k))
            values: list[np.ndarray] = []
            for c, r in enumerate(_chunks(n_rep[k], chunk)):
                gen = torch.Generator(device=device).manual_seed(cell_seed(seed, _STAGE_MONTECARLO, i, k, c))
                x, y = sample_gaussian(k, rho=rho.expand(r), d=d, generator=gen, dtype=dtype, device=device)
                with torch.no_grad():
                    log_p = gaussian_scores(x, y, rho.to(device).expand(r))  # [r, K, K]
                    out = optimal_critic_bounds(log_p, gaussian_log_p_y(y), alist)
                cols = [out[n].unsqueeze(-1) for n in names] + [out["interpolated"]]
                values.append(torch.cat(cols, dim=-1).double().cpu().numpy())  # [r, 4 + A]
            est = np.concatenate(values, axis=0)
            if not np.isfinite(est).all():
                raise FloatingPointError(f"non-finite estimate at I = {mi} nats, K = {k} (see _sum_log_rows)")
            st = _stats(est, mi)
            for s, v in st.items():
                acc_b[s][:, i, j] = v[: len(names)]
                acc_a[s][:, i, j] = v[len(names) :]
            if progress:
                print(f"montecarlo: I = {mi:g} nats, K = {k}: {n_rep[k]} replicates", flush=True)
    return _dataset(mis, ks, alist, names, acc_b, acc_a, n_rep, d, seed)


_STAT_ATTRS = {
    "mean": ("nat", "mean estimate", "Mean of the estimate over independent batches."),
    "mean_se": ("nat", "standard error of the mean", "Sample standard deviation / sqrt(replicates)."),
    "bias": ("nat", "bias", "Mean estimate minus the true MI (the true_mi coordinate)."),
    "bias_se": ("nat", "standard error of the bias", "Equal to mean_se."),
    "variance": ("nat^2", "variance", "Unbiased sample variance of the estimate over batches."),
    "variance_se": (
        "nat^2",
        "standard error of the variance",
        "sqrt((m4 - (R-3)/(R-1) s^4) / R) from the sample fourth central moment; meaningless where the "
        "estimator's fourth moment is infinite (NWJ above ~1.18 nats at d = 20).",
    ),
    "mse": ("nat^2", "mean squared error", "Mean of (estimate - true MI)^2 over batches."),
    "mse_se": ("nat^2", "standard error of the MSE", "Sample std of the squared error / sqrt(replicates)."),
}


def _dataset(mis, ks, alist, names, acc_b, acc_a, n_rep, d, seed) -> xr.Dataset:
    truth = np.asarray(mis)[None, :, None]
    acc_b = {**acc_b, "bias": acc_b["mean"] - truth, "bias_se": acc_b["mean_se"]}
    acc_a = {**acc_a, "bias": acc_a["mean"] - truth, "bias_se": acc_a["mean_se"]}
    data = {}
    for s, (units, long_name, desc) in _STAT_ATTRS.items():
        data[s] = (("bound", "true_mi", "batch_size"), acc_b[s], {"units": units, "long_name": long_name, "description": desc})
        data[f"interpolated_{s}"] = (
            ("alpha", "true_mi", "batch_size"),
            acc_a[s],
            {
                "units": units,
                "long_name": f"I_alpha {long_name}",
                "description": f"{desc} I_alpha (Eq. 11) with critic log p(y|x), q = p(y), per alpha.",
            },
        )
    data["nwj_variance_closed_form"] = (
        ("true_mi", "batch_size"),
        nwj_variance_closed_form(np.asarray(mis)[:, None], np.asarray(ks)[None, :], d),
        {
            "units": "nat^2",
            "long_name": "closed-form NWJ variance",
            "description": "d rho^2 / K + (e^{2I} + (1 - rho^4)^{-d} - 2) / (K (K - 1)) "
            "(vbmi.experiments.montecarlo.nwj_variance_closed_form).",
        },
    )
    data["replicates"] = (
        ("batch_size",),
        np.asarray([n_rep[k] for k in ks], dtype=np.int64),
        {"units": "1", "long_name": "replicates", "description": "Independent batches per (true_mi, batch_size) cell."},
    )
    return xr.Dataset(
        data,
        coords={
            "bound": np.asarray(names, dtype=str),
            "alpha": np.asarray(alist, dtype=np.float64),
            "true_mi": ("true_mi", np.asarray(mis, dtype=np.float64), {"units": "nat", "long_name": "true MI"}),
            "batch_size": np.asarray(ks, dtype=np.int64),
            "log_batch_size": (("batch_size",), np.log(np.asarray(ks, dtype=np.float64)), {"units": "nat"}),
        },
        attrs={"d": int(d), "seed": int(seed), "figure": "Fig. 3"},
    )
