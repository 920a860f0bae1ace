"""Faster exact formulations measured by the bench, proposed for the library (not used by it).

:func:`fused_bounds_inplace` evaluates what :func:`vbmi.experiments.montecarlo.optimal_critic_bounds`
evaluates (NWJ, JS, NCE, LOO upper, I_alpha per alpha) with the same math, for the no-gradient Monte
Carlo, in fewer and cheaper passes. The profile (``python -m bench --only mc_roofline``) shows where the
time of the current version goes on a CPU: boolean-mask ops (``masked_fill``, ``torch.where``, ``==``
against an index grid) and ``max`` *with indices* down dim -2 cost 5-15x a plain elementwise pass, and
every out-of-place [R, K, K] temporary is a fresh allocation that page-faults. This version

* masks the diagonal by writing -inf into a clone's diagonal view (K writes, no [K, K] mask);
* takes the off-diagonal column max with ``amax`` (no indices) and exponentiates in place;
* finds the max row without its index: ``e = exp(x - c)`` is exactly 1 there, so ``frac(e)`` drops it
  and ``S_lt = sum frac(e)`` is the column sum without the max (ties and entries that round to 1 are
  counted by ``n1 = round(S - S_lt)``), exact with no ``S - 1`` cancellation;
* writes I_alpha's held-out term as ``inner[k, j] = B_j + (1 - e_kj) s_j``: ``1 - e`` is exactly 0 on
  the max row, where ``inner = B_j`` (the exact held-out sum plus the diagonal and q terms), and the sum
  of two non-negative terms elsewhere, so every entry has relative error ~eps; then one in-place ``log``.

It modifies only its own buffers (the caller's tensor is untouched) and is not differentiable (in-place
ops on buffers); gradients keep using the functional version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_EXP_CLAMP = {torch.float32: math.log(torch.finfo(torch.float32).max) - 8.0,
              torch.float64: math.log(torch.finfo(torch.float64).max) - 8.0}


def _safe_exp(x: Tensor) -> Tensor:
    return torch.exp(torch.clamp(x, max=_EXP_CLAMP.get(x.dtype, 80.0)))


@torch.no_grad()
def _chunk(log_p: Tensor, log_q: Tensor, alphas: Sequence[float], e: Tensor, buf: Tensor) -> dict[str, Tensor]:
    """One chunk; ``e`` and ``buf`` are scratch buffers shaped like ``log_p`` (reused across chunks:
    a fresh [r, K, K] allocation page-faults, which costs as much as a pass)."""
    k = log_p.shape[-1]
    diag = torch.diagonal(log_p, dim1=-2, dim2=-1)  # [r, K] (a view of the caller's tensor, read only)
    e.copy_(log_p)
    torch.diagonal(e, dim1=-2, dim2=-1).fill_(float("-inf"))
    cmax = e.amax(dim=-2)  # [r, K] off-diagonal column max
    e.sub_(cmax.unsqueeze(-2)).exp_()  # in [0, 1]; 0 on the diagonal; exactly 1 on each column's max row
    s = e.sum(-2)  # [r, K] >= 1: sum over i != j, in units of e^{c_j}
    torch.frac(e, out=buf)  # [r, K, K]: e without the entries equal to 1
    s_lt = buf.sum(-2)
    n_one = torch.round(s - s_lt)  # entries equal to 1 (>= 1)
    s_wo_max = s_lt + (n_one - 1.0)  # sum over i != j, i != max row
    log_off = cmax + torch.log(s)  # [r, K]: O_j = log sum_{i != j} exp log_p[i, j]
    # NWJ (f = 1 + log p/p(y)); its value is also I_JS's with the exact logits.
    joint = (diag - log_q).mean(-1)
    log_marg = torch.logsumexp(log_off - log_q, dim=-1) - math.log(k * (k - 1))
    nwj = 1.0 + joint - _safe_exp(log_marg)
    out = {"nwj": nwj, "js": nwj,
           "nce": (diag - torch.logaddexp(log_off, diag)).mean(-1) + math.log(k),
           "loo_upper": (diag - log_off).mean(-1) + math.log(k - 1)}
    interp = []
    for alpha in alphas:
        if alpha == 0.0:
            interp.append(nwj)
            continue
        log_a = math.log(alpha / (k - 1))
        log_t = diag - cmax  # diagonal term, units e^{c_j}
        if alpha < 1.0:
            log_t = torch.logaddexp(log_t, math.log((1.0 - alpha) * (k - 1) / alpha) + log_q - cmax)
        shift = log_t.clamp_min(0.0)
        scale = torch.exp(-shift)  # [r, K]
        base = s_wo_max * scale + torch.exp(log_t - shift)  # [r, K]: inner on the max row
        torch.sub(1.0, e, out=buf)  # 1 - e: exactly 0 on the max row, 1 on the diagonal
        buf.mul_(scale.unsqueeze(-2)).add_(base.unsqueeze(-2))  # inner[k, j] = B_j + (1 - e_kj) s_j
        torch.diagonal(buf, dim1=-2, dim2=-1).fill_(1.0)  # k = j is not a held-out row: log 1 = 0
        sum_log_inner = buf.log_().sum(-2)  # [r, K]
        sum_log_den = (k - 1) * (cmax + log_a + shift) + sum_log_inner
        joint_a = diag.mean(-1) - sum_log_den.sum(-1) / (k * (k - 1))
        if alpha < 1.0:
            log_den_diag = torch.logaddexp(log_a + log_off, math.log1p(-alpha) + log_q)
        else:
            log_den_diag = log_a + log_off
        log_marg_a = torch.logsumexp(log_off - log_den_diag, dim=-1) - math.log(k * (k - 1))
        interp.append(1.0 + joint_a - _safe_exp(log_marg_a))
    out["interpolated"] = torch.stack(interp, dim=-1) if interp else log_p.new_zeros(log_p.shape[:-2] + (0,))
    return out


def fused_bounds_inplace(log_p: Tensor, log_p_y: Tensor, alphas: Sequence[float] = (),
                         chunk_elements: int = 1 << 20) -> dict[str, Tensor]:
    """Same outputs as ``optimal_critic_bounds(log_p, log_p_y, alphas)`` for ``log_p: [R, K, K]``, in
    chunks of ``chunk_elements`` score entries (cache-sized: ~4 MiB of float32 at the default)."""
    r, k = log_p.shape[0], log_p.shape[-1]
    step = max(1, chunk_elements // (k * k))
    scratch = torch.empty((2, min(step, r)) + tuple(log_p.shape[1:]), dtype=log_p.dtype, device=log_p.device)
    parts = []
    for a in range(0, r, step):
        n = min(step, r - a)
        parts.append(_chunk(log_p[a:a + n], log_p_y[a:a + n], [float(x) for x in alphas], scratch[0, :n], scratch[1, :n]))
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def gaussian_log_p_fused(x: Tensor, y: Tensor, rho: Tensor) -> Tensor:
    """``vbmi.data.gaussian_log_p_y_given_x(x, y, rho)`` (one rho per problem) with one allocation.

    The library forms ``|xs|^2 + |ys|^2 - 2 xs ys^T``, clamps, scales and shifts with six out-of-place
    [..., K, K] temporaries; here ``-1/2 |xs - ys|^2 - log_norm`` is one ``baddbmm`` (the row term and
    the constant ride in its ``input``), one broadcast ``add_`` (the column term) and one ``clamp_max_``
    (the library's ``clamp_min(0)`` of the squared distance). Same math; rounding differs at ~eps.
    """
    d = x.shape[-1]
    lead = x.shape[:-2]
    rho = rho.to(dtype=x.dtype, device=x.device).reshape(lead + (1, 1))  # [..., 1, 1]
    var = 1.0 - rho**2
    inv_sd = torch.rsqrt(var)
    xs = x * (rho * inv_sd)  # [..., K, d]
    ys = y * inv_sd  # [..., K, d]
    log_norm = 0.5 * d * torch.log(2 * math.pi * var)  # [..., 1, 1]
    row = -0.5 * (xs * xs).sum(-1, keepdim=True) - log_norm  # [..., K, 1]
    col = -0.5 * (ys * ys).sum(-1).unsqueeze(-2)  # [..., 1, K]
    k = x.shape[-2]
    out = torch.baddbmm(row.reshape(-1, k, 1), xs.reshape(-1, k, d), ys.reshape(-1, k, d).transpose(-1, -2))
    out = out.reshape(lead + (k, k))
    out.add_(col)
    return torch.minimum(out, -log_norm, out=out)  # [..., K, K]: row i = x_i, column j = y_j


def evaluate_proposal(x: Tensor, y: Tensor, rho: Tensor, alpha: float, chunk_elements: int = 1 << 20) -> Tensor:
    """``bench.montecarlo.evaluate`` with both proposals (fused score matrix, in-place bounds); ``[4, R]``."""
    from vbmi.data import gaussian_log_p_y

    r, k = x.shape[0], x.shape[-2]
    step = max(1, chunk_elements // (k * k))
    outs = []
    for a in range(0, r, step):
        xs, ys = x[a:a + step], y[a:a + step]
        b = fused_bounds_inplace(gaussian_log_p_fused(xs, ys, rho[a:a + step]), gaussian_log_p_y(ys), [alpha],
                                 chunk_elements=chunk_elements)
        outs.append(torch.stack([b["nwj"], b["nce"], b["interpolated"][..., 0], b["js"]]))
    return torch.cat(outs, dim=-1)
