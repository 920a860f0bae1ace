"""The regularised InfoMax objective of Sec. 3.1 (Eq. 15) and its Lagrangian.

maximise I(X;Y)  subject to  TC(Y) = sum_d I(X;Y_d) - I(X;Y) <= delta,  E KL(p(y|x) || p(y|x+eps)) <= gamma.

Terms on a minibatch x_1..x_K with one reparameterised sample y_i ~ p(y|x_i) each:

- ``ijs``: the structured I_JS lower bound (Appendix D, Eq. 18) with critic ``V[i, j] = log p(y_j|x_i) -
  log q(y_j)``, the known encoder density and a learned unnormalised q (Sec. 2.5, 3.1). Its value is
  ``1 + E_p[V] - E_q[exp V]``, its gradient that of the f-GAN JS bound (:func:`vbmi.bounds.js`).
- ``loo_sum``: ``sum_d`` of the leave-one-out upper bound (Eq. 13) on I(X;Y_d), each from the
  one-dimensional densities ``log p(y_{j,d}|x_i)`` of the mean-field encoder.
- ``tc``: ``loo_sum - ijs``, an upper bound on TC(Y) up to the slack of I_JS (Sec. 2.5; what the paper
  uses). It is a minibatch estimate and can be negative on a single batch.
- ``tnce``: I_TNCE (Eq. 12) on the same log p, logged only, as a critic-free check on ``ijs`` (<= log K).
- ``smooth``: ``KL(p(y|x) || p(y|x+eps))`` in closed form between the two diagonal Gaussians, with
  ``eps ~ N(0, noise_var I)`` on the pixels. The paper writes ``N(0, 0.5)``; we read the second argument as
  the variance (the usual ``N(mu, sigma^2)`` notation; std ``sqrt(0.5) = 0.71`` on {0, 1} pixels), and
  ``noise_var`` is a config key so the other reading (std 0.5 = variance 0.25) is one edit away.

Constrained optimisation (the paper names no method): a Lagrangian
``L = -ijs + w(t) lambda_tc (tc - delta) + lambda_s (smooth - gamma)``, minimised by Adam over the encoder
and q, with the multipliers updated after every step on the batch's value of the constraint, either
additively, ``lambda <- clip(lambda + eta (C - b), 0, lambda_max)``, or multiplicatively (the default),
``log lambda <- clip(log lambda + eta tanh(C - b), log lambda_min, log lambda_max)``.
``w(t)`` ramps the TC term in linearly from 0 at ``tc_ramp_start`` to 1 at ``tc_ramp_start + tc_ramp_steps``
(lambda_tc is not updated before the ramp starts): a TC weight from step 0 collapsed the encoder
because TC is trivially small for an encoder that carries no information.

Why not the additive update and the paper's I_JS in the TC bound (ablation record
``ablations.csv``): the I_JS *value* ``1 + E_p[V] - E_q[e^V]`` reads -3,400 nats on early batches (the
posteriors sharpen faster than the learned q follows, so e^V explodes on near-duplicate images), the TC
bound then reads +3,400, and an additive step throws lambda_tc to its cap; a smoothness spike (4,000 nats
when the posterior variances shrink) does the same to lambda_s, which then needs thousands of steps to
come back down while the encoder sits collapsed. ``tc_lower="max"`` uses ``max(I_JS, I_TNCE)``, still a
lower bound on I(X;Y), and the multiplicative step moves a multiplier by at most ``e^eta`` per step.
Remembered negatives (``ijs_memory``, ``tc_memory``; off by default, as Sec. 3.1): the posteriors of the
last M images, detached, join the minibatch as extra negative pairs of I_JS and as extra "other images" of
the TC bound's terms. At K = 64 the batch-only InfoMax learns what tells 64 images apart (position) and
not scale; with M = 2,048 scale is learned (ablation rows M-P).
And delta: at batch 64 the TC bound has a gap of several nats once I(X;Y) > log 64 (the LOO upper
bounds are summed, I_TNCE <= log 64), so delta = 0.5 is met only by an encoder with ~2 nats in one latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import bounds
from .model import ConvEncoder, LogQ, gaussian_kl, gaussian_log_prob_dims

__all__ = [
    "ObjectiveConfig", "terms", "structured_terms", "pooled_tc_terms", "pooled_ijs", "memory_on", "tc_weight",
    "tc_delta", "lagrangian", "dual_update",
]


@dataclass(frozen=True)
class ObjectiveConfig:
    tc_delta: float = 3.0  # delta (nats): allowed value of the TC bound (config.yaml says why 3, not 0.5)
    smooth_gamma: float = 1.0  # gamma (nats): allowed KL between codes of an image and of its noisy copy
    noise_var: float = 0.5  # variance of the pixel noise eps (paper: N(0, 0.5))
    dual_lr: float = 0.02  # eta: additive step per nat of violation, or largest log step (multiplicative)
    lambda_tc_init: float = 0.01  # > 0, or a multiplicative update never leaves it
    lambda_smooth_init: float = 0.1
    lambda_max: float = 100.0
    tc_ramp_start: int = 500  # steps of pure InfoMax (+ smoothness) before the TC term enters
    tc_ramp_steps: int = 1000  # linear ramp length
    # "additive": lambda += eta (C - b) (projected); "multiplicative": log lambda += eta tanh(C - b), which moves
    # a multiplier by at most a factor e^eta per step in either direction (additive steps on one
    # bad batch's I_JS value sent lambda_tc to its cap, and lambda_smooth overshot and took thousands of
    # steps to come back down, collapsing the encoder).
    dual: str = "multiplicative"
    lambda_min: float = 1e-3  # floor of a multiplicative multiplier (it can never reach 0 and come back)
    # Lower bound on I(X;Y) in the TC bound: "ijs" (Sec. 3.1) or "max": max(I_JS, I_TNCE), also a lower bound,
    # which cannot be dragged to -300 nats by one batch whose E_q[e^V] term blows up.
    tc_lower: str = "max"
    # True: lambda_tc stays at lambda_tc_init (a fixed TC penalty, beta-TCVAE style) instead of a multiplier.
    tc_fixed: bool = False
    # Posteriors (mu, logvar) of this many past images, detached, join the minibatch as the "other" x_j of the
    # TC bound's LOO upper bounds and of its I_TNCE lower bound (0: the minibatch alone, as Sec. 3.1).
    tc_memory: int = 0
    # Posteriors of this many past images as extra negative pairs of the InfoMax I_JS (0: the minibatch's own).
    ijs_memory: int = 0
    memory_start: int = 0  # first step at which the memories are used (before it: the minibatch alone)
    # delta from memory_start on, when a memory is set (None: tc_delta throughout). With the pooled terms the
    # TC bound's estimator gap is smaller than at batch 64, so a tighter delta can bind on real dependence.
    memory_tc_delta: float | None = None


def terms(
    encoder: ConvEncoder,
    log_q: LogQ,
    x: Tensor,
    generator: torch.Generator,
    *,
    noise_var: float = 0.5,
    tc_lower: str = "ijs",
    ijs_memory: tuple[Tensor, Tensor] | None = None,
    tc_memory: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Every term of the objective on a batch ``x: [K, 1, 64, 64]`` (scalars, with gradients; ``tnce`` without),
    and the batch's posteriors ``mu``, ``logvar`` (detached) for a memory of past images.

    ``generator`` (on x's device) draws the reparameterisation noise and the pixel noise. ``ijs_memory``,
    ``tc_memory``: past posteriors ``(mu, logvar)``, ``[M, D]`` each (see :func:`structured_terms`).
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x must be [K, 1, 64, 64], got {tuple(x.shape)}")
    mu, logvar = encoder(x)  # [K, D] each
    y = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    out = structured_terms(mu, logvar, y, log_q(y), tc_lower=tc_lower, ijs_memory=ijs_memory,
                           tc_memory=tc_memory)
    out["mu"], out["logvar"] = mu.detach(), logvar.detach()
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * noise_var**0.5
    mu_n, logvar_n = encoder(x + eps)  # [K, D]
    out["smooth"] = gaussian_kl(mu, logvar, mu_n, logvar_n).mean()
    return out


def structured_terms(
    mu: Tensor, logvar: Tensor, y: Tensor, log_q_y: Tensor, *, tc_lower: str = "ijs",
    ijs_memory: tuple[Tensor, Tensor] | None = None, tc_memory: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Tensor]:
    """``ijs``, ``loo_sum``, ``tc`` and ``tnce`` for a mean-field Gaussian encoder.

    ``mu, logvar: [K, D]`` of p(y|x_i), ``y: [K, D]`` with y_i ~ p(y|x_i), ``log_q_y: [K]`` = log q(y_j).
    ``ijs_memory``, ``tc_memory``: posteriors ``(mu, logvar)`` ``[M, D]`` of earlier images (no gradient), the
    newest rows of one store (the shorter is the tail of the longer, as the trainer keeps them):
    extra negative pairs of I_JS (:func:`pooled_ijs`), and extra "other images" of the TC bound's two
    terms (:func:`pooled_tc_terms`). ``tnce`` is always the batch's own (a check: at most log K).
    """
    if tc_lower not in ("ijs", "max"):
        raise ValueError(f"unknown tc_lower {tc_lower!r}; valid: 'ijs', 'max'")
    log_p_dims = gaussian_log_prob_dims(y, mu, logvar)  # [D, K, K]: log p(y_{j,d} | x_i)
    log_p = log_p_dims.sum(0)  # [K, K]: log p(y_j | x_i)
    scores = log_p - log_q_y[None, :]  # [K, K]: V(x_i, y_j) = log p(y_j|x_i) - log q(y_j)
    tnce = bounds.tnce(log_p)

    # Both memories are the newest rows of one store: the densities of the longer one serve both.
    sizes = [0 if m is None else m[0].shape[0] for m in (ijs_memory, tc_memory)]
    longer = ijs_memory if sizes[0] >= sizes[1] else tc_memory
    mem = None if max(sizes) == 0 else gaussian_log_prob_dims(y, longer[0].to(y), longer[1].to(y))  # [D, M, K]
    ijs = bounds.js(scores)
    if sizes[0]:
        ijs = pooled_ijs(scores, mem[:, mem.shape[1] - sizes[0]:].sum(0) - log_q_y[None, :])
    if sizes[1]:
        loo_sum, tnce_tc = pooled_tc_terms(log_p_dims, mem[:, mem.shape[1] - sizes[1]:])
    else:
        loo_sum, tnce_tc = bounds.loo_upper(log_p_dims).sum(), tnce
    lower = ijs if tc_lower == "ijs" else torch.maximum(ijs, tnce_tc)
    return {"ijs": ijs, "loo_sum": loo_sum, "tc": loo_sum - lower, "tnce": tnce.detach()}


def pooled_tc_terms(log_p_dims: Tensor, mem: Tensor) -> tuple[Tensor, Tensor]:
    """The TC bound's terms with M remembered posteriors beside the K - 1 other images of the batch.

    ``sum_d`` of the leave-one-out bound (Eq. 13) on I(X;Y_d) with the mixture of K - 1 + M posteriors as
    q(y_d), and I_TNCE (Eq. 12) with K + M candidates, so the lower bound can reach log(K + M) instead of
    log K. Why: the summed upper bounds grow with the information carried while I_TNCE stops at log K, so
    at K = 64 the bound read several nats for an encoder with independent latents; a larger pool narrows
    that gap. The remembered posteriors are those of earlier minibatches (a few steps stale, no gradient),
    so the pooled terms estimate the bounds for the current encoder rather than bound it exactly.
    ``log_p_dims: [D, K, K]`` (rows x_i, columns y_j), ``mem: [D, M, K]`` = log p(y_{j,d} | memory_m).
    """
    k, m = log_p_dims.shape[-1], mem.shape[-2]
    diag = torch.diagonal(log_p_dims, dim1=-2, dim2=-1)  # [D, K]
    eye = torch.eye(k, dtype=torch.bool, device=mem.device)
    others = torch.cat([log_p_dims.masked_fill(eye, float("-inf")), mem], dim=-2)  # [D, K + M, K]
    loo_sum = (diag - torch.logsumexp(others, dim=-2)).mean(-1).sum() + diag.shape[0] * math.log(k - 1 + m)
    pool = torch.cat([log_p_dims.sum(0), mem.sum(0)], dim=0)  # [K + M, K]: log p(y_j | x_i or memory_m)
    tnce = (diag.sum(0) - torch.logsumexp(pool, dim=0)).mean() + math.log(k + m)
    return loo_sum, tnce


def pooled_ijs(scores: Tensor, mem_scores: Tensor) -> Tensor:
    """I_JS (Eq. 18) whose negative pairs are the K (K - 1) off-diagonal pairs of the batch and the M K pairs
    (memory_m, y_j): value ``1 + E_p[V] - E_q[e^V]``, gradient of the f-GAN JS bound, as :func:`vbmi.bounds.js`.

    Why: with K = 64, an encoder that separates the batch's images by position alone already maximises
    the batch-only bound; pairs of images that share a position, and so push the code to carry scale or
    shape, are rare among 63 others. ``scores: [K, K]``, ``mem_scores: [M, K]`` = V(memory_m, y_j).
    """
    k = scores.shape[-1]
    off = ~torch.eye(k, dtype=torch.bool, device=scores.device)
    n_neg = k * (k - 1) + mem_scores.numel()
    diag = torch.diagonal(scores)
    log_neg = torch.logsumexp(torch.cat([scores[off], mem_scores.flatten()]), dim=0) - math.log(n_neg)
    value = 1.0 + diag.mean() - bounds._safe_exp(log_neg)  # log E_q[e^V] first: no overflow in the sum
    neg_sp = (torch.nn.functional.softplus(scores) * off).sum() + torch.nn.functional.softplus(mem_scores).sum()
    surrogate = -torch.nn.functional.softplus(-diag).mean() - neg_sp / n_neg
    return bounds._value_with_grad(value, surrogate)


def tc_weight(step: int, cfg: ObjectiveConfig) -> float:
    """The ramp w(t) in [0, 1] on the TC term."""
    if step < cfg.tc_ramp_start:
        return 0.0
    if cfg.tc_ramp_steps <= 0:
        return 1.0
    return min(1.0, (step - cfg.tc_ramp_start + 1) / cfg.tc_ramp_steps)


def memory_on(step: int, cfg: ObjectiveConfig) -> bool:
    """Whether step ``step`` uses remembered posteriors (a memory is set and ``memory_start`` is reached)."""
    return step >= cfg.memory_start and bool(cfg.ijs_memory or cfg.tc_memory)


def tc_delta(step: int, cfg: ObjectiveConfig) -> float:
    """delta at step ``step``: ``memory_tc_delta`` once the memories are on (when set), else ``tc_delta``."""
    if cfg.memory_tc_delta is not None and memory_on(step, cfg):
        return cfg.memory_tc_delta
    return cfg.tc_delta


def lagrangian(t: dict[str, Tensor], lam: Tensor, w: float, cfg: ObjectiveConfig, delta: float | None = None) -> Tensor:
    """``-ijs + w lambda_tc (tc - delta) + lambda_s (smooth - gamma)``; ``lam = [lambda_tc, lambda_s]`` (no grad);
    ``delta`` defaults to ``cfg.tc_delta`` (:func:`tc_delta` gives the step's)."""
    delta = cfg.tc_delta if delta is None else delta
    return -t["ijs"] + w * lam[0] * (t["tc"] - delta) + lam[1] * (t["smooth"] - cfg.smooth_gamma)


@torch.no_grad()
def dual_update(
    lam: Tensor, t: dict[str, Tensor], w: float, cfg: ObjectiveConfig, delta: float | None = None
) -> Tensor:
    """Projected dual ascent on ``lam = [lambda_tc, lambda_s]``; lambda_tc is frozen until the ramp starts;
    ``delta`` as in :func:`lagrangian`."""
    delta = cfg.tc_delta if delta is None else delta
    viol = torch.stack([t["tc"].detach() - delta, t["smooth"].detach() - cfg.smooth_gamma]).to(lam)
    gate = torch.tensor([1.0 if w > 0 and not cfg.tc_fixed else 0.0, 1.0], dtype=lam.dtype, device=lam.device)
    if cfg.dual == "additive":
        return (lam + cfg.dual_lr * gate * viol).clamp(0.0, cfg.lambda_max)
    if cfg.dual == "multiplicative":
        viol = torch.nan_to_num(viol, nan=0.0)
        return (lam * torch.exp(cfg.dual_lr * gate * torch.tanh(viol))).clamp(cfg.lambda_min, cfg.lambda_max)
    raise ValueError(f"unknown dual update {cfg.dual!r}; valid: 'additive', 'multiplicative'")
