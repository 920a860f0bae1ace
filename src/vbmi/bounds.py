"""Variational bounds on mutual information, as small pure functions of a score matrix.

Convention (used everywhere in vbmi)
------------------------------------
``scores[..., i, j] = f(x_i, y_j)``: rows index x, columns index y, the K positive pairs
``(x_i, y_i) ~ p(x, y)`` sit on the diagonal, and any leading dims ``...`` are independent problems
(seeds, Monte Carlo replicates, configurations) that every bound handles without Python loops.
Expectations under the product of marginals ``p(x)p(y)`` use the K(K-1) off-diagonal pairs.
A baseline ``log a(y)`` (or ``log q(y)``) has shape ``[..., K]`` and is indexed by the column.
Multi-sample normalisation is over x for a fixed y, i.e. *down each column* (dim -2), so the optimal
InfoNCE critic is ``log p(y|x) + c(y)`` as the paper states, and the batch mixture
``m(y_j; x_{1:K}) = 1/K sum_i exp f(x_i, y_j)`` averages down column j.

Structured bounds (known conditional) take ``log_p[..., i, j] = log p(y_j | x_i)`` in place of scores.

This is the paper's orientation. The public reference notebook (google-research ``vbmi_demo.ipynb``)
returns ``h(y) @ g(x).T`` (rows indexed by y) from its separable critic but ``f(x_i, y_j)`` (rows x)
from its concat critic, while its TUBA/interpolated code subtracts a per-row baseline meant for y;
vbmi fixes one orientation and tests every critic against an asymmetric toy function.

Every function returns the estimate averaged over the last two dims, shape ``scores.shape[:-2]``.
Bounds whose *value* and *gradient* come from different objectives (I_MINE, I_JS, SMILE) return a
tensor whose forward value is the reported estimate and whose gradient is that of the training
objective (``surrogate + (value - surrogate).detach()``); each docstring says which is which.

The single-sample bounds' marginal term ``E_q[exp f]`` is evaluated as ``exp(logmeanexp f)`` with the
exponent clamped at ``vbmi.utils.exp_clamp(dtype)`` (about 80.7 in float32), so they stay finite for
any finite scores; an estimate at the clamp (about -1e35 in float32) marks a diverged critic.

Input validation here is limited to shapes, dtypes and alpha (cheap, no device sync except alpha
tensors); NaN/inf checks on data live in the user-facing front door :func:`vbmi.estimate_mi`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import exp_clamp

__all__ = [
    "Bound",
    "BOUNDS",
    "UnknownBoundError",
    "get_bound",
    "ba",
    "dv",
    "nwj",
    "tuba",
    "mine",
    "mine_ema_update",
    "nce",
    "js",
    "js_fgan",
    "interpolated",
    "interpolated_linear",
    "interpolated_product",
    "smile",
    "tnce",
    "loo_upper",
    "variational_upper",
    "nwj_reparam",
    "tc_upper",
    "logmeanexp_offdiag",
    "loo_logmeanexp_columns",
]


# --------------------------------------------------------------------------------------------------
# Validation and log-space helpers
# --------------------------------------------------------------------------------------------------
def _check_scores(scores: Tensor, what: str = "scores") -> int:
    """Check ``[..., K, K]`` floating scores with K >= 2 and return K."""
    if not isinstance(scores, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(scores).__name__}")
    if not scores.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {scores.dtype}")
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(
            f"{what} must have shape [..., K, K] ({what}[..., i, j] = f(x_i, y_j)), got {tuple(scores.shape)}"
        )
    k = scores.shape[-1]
    if k < 2:
        raise ValueError(f"multi-sample bounds need a batch of at least 2 samples, got K = {k}")
    return k


def _check_baseline(log_baseline: Tensor | None, scores: Tensor, name: str) -> Tensor:
    if log_baseline is None:
        raise ValueError(f"bound '{name}' needs log_baseline (log a(y) or log q(y), shape [..., K])")
    if not isinstance(log_baseline, Tensor):
        log_baseline = torch.as_tensor(log_baseline, dtype=scores.dtype, device=scores.device)
    k = scores.shape[-1]
    if log_baseline.ndim > 0 and log_baseline.shape[-1] not in (1, k):
        raise ValueError(
            f"log_baseline must broadcast to [..., K] with K = {k} (indexed by the column y_j), "
            f"got shape {tuple(log_baseline.shape)}"
        )
    return log_baseline


def _check_alpha(alpha: float | Tensor, like: Tensor) -> Tensor:
    """Alpha as a tensor broadcastable against ``like.shape[:-2]``, checked to lie in [0, 1]."""
    if isinstance(alpha, Tensor):
        a = alpha.to(dtype=like.dtype, device=like.device)
        if bool(torch.any((a < 0) | (a > 1) | torch.isnan(a))):
            raise ValueError(f"alpha must lie in [0, 1], got values in [{a.min().item()}, {a.max().item()}]")
        return a
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not (0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return torch.tensor(float(alpha), dtype=like.dtype, device=like.device)


def _diag(x: Tensor) -> Tensor:
    return torch.diagonal(x, dim1=-2, dim2=-1)  # [..., K]


def _eye(k: int, device: torch.device) -> Tensor:
    return torch.eye(k, dtype=torch.bool, device=device)


def _safe_exp(x: Tensor) -> Tensor:
    """``exp`` with the argument clamped so it stays finite (see module docstring)."""
    return torch.exp(torch.clamp(x, max=exp_clamp(x.dtype)))


def _value_with_grad(value: Tensor, surrogate: Tensor) -> Tensor:
    """Forward value of ``value``, gradient of ``surrogate``.

    # ``surrogate + (value - surrogate).detach()`` rounds away ``value`` in
    # float32 when ``surrogate`` is large (MINE returned 0.0 where I_DV was 1.54). ``s - s.detach()`` is
    # exactly 0 in the forward pass, so the value below is bit-for-bit ``value``.
    """
    return value.detach() + (surrogate - surrogate.detach())


def logmeanexp_offdiag(scores: Tensor) -> Tensor:
    """``log( 1/(K(K-1)) sum_{i != j} exp scores[..., i, j] )``, shape ``[...]``."""
    k = scores.shape[-1]
    masked = scores.masked_fill(_eye(k, scores.device), float("-inf"))
    return torch.logsumexp(masked.flatten(-2), dim=-1) - math.log(k * (k - 1))


def loo_logmeanexp_columns(scores: Tensor) -> Tensor:
    """Leave-one-out log-mean-exp down each column: ``L[..., k, j] = log 1/(K-1) sum_{i != k} exp s_ij``.

    ``L[k, j]`` is ``log m(y_j; x_{-k})``, the batch mixture for ``y_j`` with ``x_k`` held out.
    Computed stably in O(K^2): for the row holding the column's maximum, the held-out entry is masked to
    ``-inf`` before ``logsumexp``; for every other row the held-out term is subtracted from a sum shifted
    by the column maximum, which the maximum itself keeps >= 1, so the subtraction loses at most
    ``K * eps`` relative precision. (Subtracting the held-out entry from the full sum fails in float32
    when the diagonal dominates its column, common at I = 10 nats, K = 512.)
    """
    k = scores.shape[-1]
    col_max, argmax = scores.detach().max(dim=-2, keepdim=True)  # [..., 1, K]
    lse_all = torch.logsumexp(scores, dim=-2, keepdim=True)  # [..., 1, K]
    is_max = torch.arange(k, device=scores.device).view(-1, 1) == argmax  # [..., K, K] one-hot rows
    lse_wo_max = torch.logsumexp(scores.masked_fill(is_max, float("-inf")), dim=-2, keepdim=True)
    shifted_sum = torch.exp(lse_all - col_max)  # [..., 1, K], in [1, K]
    rest = shifted_sum - torch.exp(scores - col_max)  # [..., K, K], >= 1 off the max row
    rest = torch.where(is_max, torch.ones_like(rest), rest)  # keep log() finite where unused
    lse_loo = torch.where(is_max, lse_wo_max, col_max + torch.log(rest))
    return lse_loo - math.log(k - 1)


# --------------------------------------------------------------------------------------------------
# Normalised bounds
# --------------------------------------------------------------------------------------------------
def ba(log_q: Tensor, *, entropy_x: float | Tensor) -> Tensor:
    """I_BA (Eq. 2): ``E_p(x,y)[log q(x|y)] + h(X)``.

    ``log_q[..., i, j] = log q(x_i | y_j)``; only the diagonal (positive pairs) is read, so a decoder
    that scores only positives can pass ``torch.diag_embed(v)``. ``entropy_x`` is the known h(X) in nats.
    """
    _check_scores(log_q, "log_q")
    return _diag(log_q).mean(-1) + entropy_x


# --------------------------------------------------------------------------------------------------
# Unnormalised single-sample bounds (Sec. 2.2)
# --------------------------------------------------------------------------------------------------
def tuba(scores: Tensor, *, log_baseline: Tensor | None = None) -> Tensor:
    """I_TUBA (Eq. 6): ``E_p[f] - E_p(y)[E_p(x)[e^f] / a(y) + log a(y) - 1]``.

    Evaluated as ``1 + mean_i (f_ii - log a(y_i)) - mean_{i != j} exp(f_ij - log a(y_j))``, using
    ``E_p(x,y)[log a(y)] = E_p(y)[log a(y)]`` for the baseline term. ``log_baseline``: ``[..., K]``.
    """
    _check_scores(scores)
    log_baseline = _check_baseline(log_baseline, scores, "tuba")
    shifted = scores - log_baseline.unsqueeze(-2)  # [..., K, K]: f(x_i, y_j) - log a(y_j)
    joint = _diag(shifted).mean(-1)
    marginal = _safe_exp(logmeanexp_offdiag(shifted))
    return 1.0 + joint - marginal


def nwj(scores: Tensor) -> Tensor:
    """I_NWJ (Eq. 7), TUBA with ``a(y) = e``: ``E_p[f] - e^{-1} E_q[e^f]``. Optimal f = 1 + log p(y|x)/p(y)."""
    _check_scores(scores)
    return _diag(scores).mean(-1) - _safe_exp(logmeanexp_offdiag(scores) - 1.0)


def dv(scores: Tensor) -> Tensor:
    """I_DV (Eq. 5): ``E_p[f] - log E_q[e^f]`` with Monte Carlo expectations.

    The nested log makes the minibatch estimate neither a lower nor an upper bound (Sec. 2.2).
    Invariant to adding a constant to f.
    """
    _check_scores(scores)
    return _diag(scores).mean(-1) - logmeanexp_offdiag(scores)


def mine_ema_update(log_ema: Tensor | None, scores: Tensor, *, decay: float = 0.99) -> Tensor:
    """Update MINE's moving average of the partition function, in log space.

    State: ``log_ema`` = log of the EMA of ``Z_batch = mean_{i != j} exp f(x_i, y_j)`` across
    minibatches (shape ``scores.shape[:-2]``), ``None`` before the first batch; NaN entries mark
    ensemble members that have seen no batch yet and start from this batch's value (so one member's
    state never resets another's). Returns the new state, detached:
    ``log(decay * exp(log_ema) + (1 - decay) * Z_batch)``. Use it as
    ``mine(scores, log_baseline=new_state.unsqueeze(-1))``.
    """
    _check_scores(scores)
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must lie in [0, 1), got {decay}")
    log_z = logmeanexp_offdiag(scores.detach())
    if log_ema is None or decay == 0.0:
        return log_z
    log_ema = log_ema.detach().to(log_z.dtype)
    updated = torch.logaddexp(log_ema + math.log(decay), log_z + math.log1p(-decay))
    return torch.where(torch.isnan(log_ema), log_z, updated)


def mine(scores: Tensor, *, log_baseline: Tensor | None = None) -> Tensor:
    """I_MINE (Sec. 2.2; Belghazi et al. 2018): value I_DV, gradient that of I_TUBA with a = EMA.

    ``log_baseline`` is the log of the exponential moving average of the partition estimate
    (:func:`mine_ema_update`), broadcastable to ``[..., K]`` (e.g. ``state.unsqueeze(-1)``); it is
    treated as a constant. The TUBA gradient at that ``a`` is exactly MINE's bias-corrected gradient.
    """
    _check_scores(scores)
    log_baseline = _check_baseline(log_baseline, scores, "mine").detach()
    return _value_with_grad(dv(scores), tuba(scores, log_baseline=log_baseline))


def js_fgan(scores: Tensor) -> Tensor:
    """f-GAN lower bound on the Jensen-Shannon divergence (Nowozin et al. 2016), logits V = scores.

    ``E_p[-softplus(-V)] - E_q[softplus(V)]`` (= 2 JS - log 4 at the optimum); the critic objective of I_JS.
    """
    k = _check_scores(scores)
    joint = -F.softplus(-_diag(scores)).mean(-1)
    off = ~_eye(k, scores.device)
    marginal = (F.softplus(scores) * off).sum((-2, -1)) / (k * (k - 1))
    return joint - marginal


def js(scores: Tensor) -> Tensor:
    """I_JS (Sec. 2.6, Appendix D, Eq. 18): value ``1 + E_p[V] - E_q[exp V]``, gradient of the f-GAN JS bound.

    The critic V is trained as a JS discriminator (:func:`js_fgan`); its logits estimate
    ``log p(x,y)/(p(x)p(y))``, and the NWJ bound with critic ``1 + V`` gives the reported lower bound,
    tight when V is exact. The reference notebook and the smile-mi-estimator port report
    ``E_p[V] - E_q[exp(V - 1)]`` instead (NWJ applied to V without the ``+1``), which is ``I - 1/e`` at the
    optimum; vbmi follows the paper.
    """
    _check_scores(scores)
    return _value_with_grad(nwj(scores + 1.0), js_fgan(scores))


# --------------------------------------------------------------------------------------------------
# Multi-sample bounds (Sec. 2.3, 2.4) and the interpolations of Appendix C.2
# --------------------------------------------------------------------------------------------------
def nce(scores: Tensor) -> Tensor:
    """I_NCE / InfoNCE (Eq. 10): ``mean_j [ f(x_j, y_j) - log 1/K sum_i exp f(x_i, y_j) ]``.

    Normalised over x for each y (down each column). At most ``log K``; invariant to adding c(y).
    """
    k = _check_scores(scores)
    return (_diag(scores) - torch.logsumexp(scores, dim=-2)).mean(-1) + math.log(k)


def _interp_log_denominator(log_m: Tensor, log_q: Tensor | None, alpha: Tensor, mode: str) -> Tensor:
    """``log(alpha m + (1 - alpha) q)`` (mode 'mixture') or ``alpha log m + (1 - alpha) log q`` ('product')."""
    a = alpha.view(alpha.shape + (1, 1)) if alpha.ndim else alpha  # broadcast over [..., K, K]
    if log_q is None:
        return log_m
    if mode == "mixture":
        return torch.logaddexp(torch.log(a) + log_m, torch.log1p(-a) + log_q)
    # Product: a log m + (1 - a) log q, written so a = 0 or 1 never multiplies an infinite.
    return log_m * a + log_q * (1.0 - a)


def _interpolated_impl(scores: Tensor, log_baseline: Tensor | None, alpha: float | Tensor, mode: str) -> Tensor:
    k = _check_scores(scores)
    a = _check_alpha(alpha, scores)
    if log_baseline is None:
        if bool(torch.any(a < 1)):
            raise ValueError(f"bound 'interpolated{'' if mode == 'mixture' else '_product'}' needs "
                             "log_baseline (log q(y), shape [..., K]) unless alpha == 1")
        log_q = None
    else:
        log_q = _check_baseline(log_baseline, scores, "interpolated").unsqueeze(-2)  # [..., 1, K]
    # log_den[..., k, j] = log(alpha m(y_j; x_{-k}) + (1 - alpha) q(y_j)): x_k held out.
    log_den = _interp_log_denominator(loo_logmeanexp_columns(scores), log_q, a, mode)  # [..., K, K]
    off = ~_eye(k, scores.device)
    # Joint term: pair (x_j, y_j), mixture over the K-1 x's other than a held-out x_k, k != j.
    joint = _diag(scores).mean(-1) - (log_den * off).sum((-2, -1)) / (k * (k - 1))
    # Marginal term: y_j is independent of x_{-j}; x_i (i != j) is drawn from that set.
    marginal = _safe_exp(logmeanexp_offdiag(scores - _diag(log_den).unsqueeze(-2)))
    return 1.0 + joint - marginal


def interpolated(scores: Tensor, *, log_baseline: Tensor | None = None, alpha: float | Tensor) -> Tensor:
    """I_alpha (Eq. 11), critic ``1 + log e^{f(x_1,y)} / (alpha m(y; x_{1:K}) + (1 - alpha) q(y))``.

    ``m`` is the batch mixture down column y with one x held out (leave-one-out, Sec. 2.4): the joint
    term averages over the K(K-1) choices of held-out x_k != x_j for each positive pair; the marginal
    term scores y_j against the other x's with x_j held out, so y_j is independent of the mixture.
    ``alpha = 1`` gives the leave-one-out InfoNCE form (marginal term exactly 1); ``alpha = 0`` is I_TUBA
    with ``a = q``. Bounded above by ``1 + log(K / alpha)``. ``alpha`` is a float or a tensor
    broadcastable to ``scores.shape[:-2]`` (values in [0, 1]). With ``log_p = log p(y|x)`` as scores and
    a learned ``q(y)`` this is the structured I_alpha of Sec. 2.5.
    """
    return _interpolated_impl(scores, log_baseline, alpha, "mixture")


def interpolated_product(scores: Tensor, *, log_baseline: Tensor | None = None, alpha: float | Tensor) -> Tensor:
    """Product interpolation (Appendix C.2, item 3): I_alpha with denominator ``m^alpha q^(1 - alpha)``."""
    return _interpolated_impl(scores, log_baseline, alpha, "product")


def interpolated_linear(scores: Tensor, *, alpha: float | Tensor) -> Tensor:
    """Linear interpolation (Appendix C.2, item 2): ``alpha I_NCE + (1 - alpha) I_NWJ`` on the same critic."""
    _check_scores(scores)
    a = _check_alpha(alpha, scores)
    return a * nce(scores) + (1.0 - a) * nwj(scores)


def smile(scores: Tensor, *, tau: float = 5.0) -> Tensor:
    """SMILE (Song & Ermon, ICLR 2020; *not from this paper*): clipped DV, gradient of the f-GAN JS bound.

    Value ``E_p[f] - log E_q[exp clip(f, -tau, tau)]``; like I_DV it is an estimate, not a bound. The
    critic is trained with :func:`js_fgan`, as in the authors' code.
    """
    _check_scores(scores)
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    value = _diag(scores).mean(-1) - logmeanexp_offdiag(torch.clamp(scores, -tau, tau))
    return _value_with_grad(value, js_fgan(scores))


# --------------------------------------------------------------------------------------------------
# Structured bounds with a known conditional (Sec. 2.5): log_p[..., i, j] = log p(y_j | x_i)
# --------------------------------------------------------------------------------------------------
def tnce(log_p: Tensor) -> Tensor:
    """I_TNCE (Eq. 12): InfoNCE with the critic ``log p(y|x)``; lower bound, at most log K."""
    _check_scores(log_p, "log_p")
    return nce(log_p)


def loo_upper(log_p: Tensor) -> Tensor:
    """Leave-one-out upper bound (Eq. 13): ``mean_j [log p(y_j|x_j) - log 1/(K-1) sum_{i != j} p(y_j|x_i)]``."""
    k = _check_scores(log_p, "log_p")
    others = log_p.masked_fill(_eye(k, log_p.device), float("-inf"))
    return (_diag(log_p) - torch.logsumexp(others, dim=-2)).mean(-1) + math.log(k - 1)


def variational_upper(log_p: Tensor, *, log_baseline: Tensor | None = None) -> Tensor:
    """Variational upper bound / rate (Eq. 1): ``E_p(x) KL(p(y|x) || q(y))``, one sample y_i ~ p(y|x_i) each.

    ``log_baseline`` = normalised ``log q(y)``, shape ``[..., K]``. Only the diagonal of log_p is read.
    """
    _check_scores(log_p, "log_p")
    log_q = _check_baseline(log_baseline, log_p, "variational_upper")
    return (_diag(log_p) - log_q).mean(-1)


def nwj_reparam(log_p: Tensor, *, log_baseline: Tensor | None = None) -> Tensor:
    """Reparameterised I_NWJ (Eq. 14): critic ``1 + log p(y|x)/q(y)``: ``R + 1 - E_p(y)[E_p(x) p(y|x) / q(y)]``.

    Valid for any q, including unnormalised; equals I_TUBA on ``log_p`` with ``a = q``.
    """
    _check_scores(log_p, "log_p")
    return tuba(log_p, log_baseline=log_baseline)


def tc_upper(log_p_dims: Tensor, *, lower: Tensor | None = None) -> Tensor:
    """Upper bound on total correlation for a mean-field encoder (Sec. 2.5).

    ``TC(Y) = sum_d I(X; Y_d) - I(X; Y) <= sum_d LOO-upper(X; Y_d) - lower``.
    ``log_p_dims[..., d, i, j] = log p(y_{j,d} | x_i)`` (``[..., D, K, K]``); ``lower`` is a lower bound on
    I(X;Y) (e.g. an I_JS estimate, shape ``[...]``); by default I_TNCE (Eq. 12) on the joint
    ``log p(y|x) = sum_d log p(y_d|x)``, as the paper suggests when I(X;Y) is small.
    """
    if not isinstance(log_p_dims, Tensor) or log_p_dims.ndim < 3:
        raise ValueError("log_p_dims must have shape [..., D, K, K] (one log p(y_d|x) matrix per latent dim)")
    _check_scores(log_p_dims, "log_p_dims")
    upper = loo_upper(log_p_dims).sum(-1)  # sum over d
    if lower is None:
        lower = tnce(log_p_dims.sum(-3))
    return upper - lower


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table1:
    """Table 1 of the paper: tractable objective / gradient, batch-size independent, low variance,
    works with an unnormalised critic."""

    objective: bool
    gradient: bool
    batch_size_independent: bool | None
    low_variance: bool | None
    unnormalized_critic: bool | None


@dataclass(frozen=True)
class Bound:
    """A registered bound. ``kind``: 'lower', 'upper', or 'estimate' (Monte Carlo DV/MINE/SMILE are neither).

    ``input``: 'scores' (critic f(x_i, y_j)), 'log_p' (known log p(y_j|x_i)), 'log_p_dims' (per latent
    dim) or 'log_q' (decoder log q(x_i|y_j)). ``baseline``: 'none', 'required', or 'optional'
    (I_alpha needs one unless alpha = 1).
    """

    name: str
    fn: Callable[..., Tensor]
    kind: Literal["lower", "upper", "estimate"]
    equation: str
    input: Literal["scores", "log_p", "log_p_dims", "log_q"] = "scores"
    baseline: Literal["none", "required", "optional"] = "none"
    takes_alpha: bool = False
    from_paper: bool = True
    table1: Table1 | None = None
    description: str = ""
    extra_kwargs: tuple[str, ...] = field(default=())

    def __call__(self, scores: Tensor, **kwargs) -> Tensor:
        allowed = set(self.extra_kwargs)
        if self.baseline != "none":
            allowed.add("log_baseline")
        if self.takes_alpha:
            allowed.add("alpha")
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(
                f"bound '{self.name}' got unexpected keyword(s) {sorted(unknown)}; it accepts {sorted(allowed) or 'none'}"
            )
        return self.fn(scores, **kwargs)


class UnknownBoundError(KeyError, ValueError):
    """Raised for an unknown bound name (a ``ValueError`` and, as a dict lookup, a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _Registry(dict):
    def __missing__(self, name):
        raise UnknownBoundError(f"unknown bound {name!r}; valid names: {', '.join(sorted(self))}")


BOUNDS: dict[str, Bound] = _Registry()


def _register(bound: Bound) -> None:
    BOUNDS[bound.name] = bound


def get_bound(name: str) -> Bound:
    """Look up a bound by name; unknown names raise ``ValueError`` listing the valid ones."""
    return BOUNDS[name]


_register(Bound("ba", ba, "lower", "Eq. 2", input="log_q", table1=Table1(False, True, True, True, False),
                description="Barber & Agakov with a tractable decoder and known h(X)", extra_kwargs=("entropy_x",)))
_register(Bound("dv", dv, "estimate", "Eq. 5", table1=Table1(False, False, None, None, None),
                description="Donsker-Varadhan; minibatch estimate is not a bound"))
_register(Bound("nwj", nwj, "lower", "Eq. 7", table1=Table1(True, True, True, False, True),
                description="Nguyen-Wainwright-Jordan / f-GAN KL / MINE-f"))
_register(Bound("tuba", tuba, "lower", "Eq. 6", baseline="required", table1=Table1(True, True, True, False, True),
                description="Tractable unnormalised Barber-Agakov with learned log a(y)"))
_register(Bound("mine", mine, "estimate", "Sec. 2.2", baseline="required",
                table1=Table1(False, True, True, False, True),
                description="value I_DV, gradient I_TUBA with a = EMA of the partition estimate"))
_register(Bound("nce", nce, "lower", "Eq. 10", table1=Table1(True, True, False, True, True),
                description="InfoNCE; at most log K"))
_register(Bound("js", js, "lower", "Eq. 18 (App. D)", table1=Table1(True, True, True, False, True),
                description="I_JS: value 1 + E_p[V] - E_q[e^V], gradient of the f-GAN JS bound"))
_register(Bound("interpolated", interpolated, "lower", "Eq. 11", baseline="optional", takes_alpha=True,
                table1=Table1(True, True, False, True, True),
                description="I_alpha: leave-one-out mixture of the batch and a learned q(y)"))
_register(Bound("interpolated_linear", interpolated_linear, "lower", "App. C.2 (linear)", takes_alpha=True,
                description="alpha I_NCE + (1 - alpha) I_NWJ"))
_register(Bound("interpolated_product", interpolated_product, "lower", "App. C.2 (product)", baseline="optional",
                takes_alpha=True, description="I_alpha with denominator m^alpha q^(1-alpha)"))
_register(Bound("smile", smile, "estimate", "Song & Ermon 2020", from_paper=False, extra_kwargs=("tau",),
                description="clipped DV (tau), JS-trained critic; beyond the paper"))
_register(Bound("tnce", tnce, "lower", "Eq. 12", input="log_p", description="InfoNCE with known p(y|x)"))
_register(Bound("loo_upper", loo_upper, "upper", "Eq. 13", input="log_p",
                description="leave-one-out upper bound with known p(y|x)"))
_register(Bound("variational_upper", variational_upper, "upper", "Eq. 1", input="log_p", baseline="required",
                description="rate E KL(p(y|x) || q(y)) with normalised q"))
_register(Bound("nwj_reparam", nwj_reparam, "lower", "Eq. 14", input="log_p", baseline="required",
                description="NWJ with critic 1 + log p(y|x)/q(y); learns only q"))
_register(Bound("tc_upper", tc_upper, "upper", "Sec. 2.5", input="log_p_dims", extra_kwargs=("lower",),
                description="total-correlation upper bound for a mean-field encoder"))


# --------------------------------------------------------------------------------------------------
# Plausible range of a bound's value (training engine: divergence)
# --------------------------------------------------------------------------------------------------
PLAUSIBLE_MARGIN_FACTOR = 10.0
"""An estimate more than ``10 * max(10, 2 * true_mi_max)`` nats from the truth's range is an explosion."""


def plausible_range(name: str, *, batch_size: int, alpha: float | None = None,
                    true_mi_max: float | None = None, tol: float = 1e-6) -> tuple[float, float]:
    """``(lo, hi)``: the values a minibatch estimate of bound ``name`` can take on a task, in nats.

    A trainer counts a member as diverged (and freezes it) at the first value outside this range; a
    value inside it is an estimate, however poor. The one place the ranges are written down:

    * caps that hold for *any* critic on a batch of ``K = batch_size``: ``nce``/``tnce`` (Eq. 10, 12)
      ``<= log K``; ``interpolated`` (Eq. 11, leave-one-out mixture) ``<= 1 + log(K / alpha)``
      (``alpha > 0``); ``interpolated_linear`` ``<= alpha log K + (1 - alpha) hi_NWJ``. ``tol`` absorbs
      rounding.
    * with ``true_mi_max`` (the largest true MI of the task): every bound's value must lie within
      ``m = 10 * max(10, 2 * true_mi_max)`` nats of ``[0, true_mi_max]``: ``lo = -m``,
      ``hi = true_mi_max + m`` (where no cap above is tighter). An I_JS value of -3.4e7 nats, or an
      NWJ value of +1e5, is not an estimate; a noisy NWJ batch at -30 nats (variance grows as e^I)
      still is. Without ``true_mi_max`` only the caps apply.

    Unknown names raise ``ValueError`` listing the valid ones.
    """
    BOUNDS[name]  # unknown names raise, listing the valid ones
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    if true_mi_max is None:
        lo, hi = -math.inf, math.inf
    else:
        margin = PLAUSIBLE_MARGIN_FACTOR * max(10.0, 2.0 * float(true_mi_max))
        lo, hi = -margin, float(true_mi_max) + margin
    log_k = math.log(batch_size)
    if name in ("nce", "tnce"):
        hi = min(hi, log_k)
    elif name == "interpolated" and alpha is not None and alpha > 0:
        hi = min(hi, 1.0 + math.log(batch_size / alpha))
    elif name == "interpolated_linear" and alpha is not None and alpha >= 1:
        hi = min(hi, log_k)
    return lo, hi + tol * max(1.0, abs(hi)) if math.isfinite(hi) else hi
