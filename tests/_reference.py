"""Plain-loop reference implementations of the paper's bounds, written from the equations.

Written independently of ``vbmi.bounds``: every function takes one K x K problem as nested Python
lists of floats (``s[i][j] = f(x_i, y_j)``, or ``log p(y_j | x_i)`` for structured bounds) and computes
the estimate with scalar loops over i, j, k in Python float64 (``math``), no tensors. :func:`batched`
maps a reference over the leading dims of a tensor so it can be compared with the vectorised bound.

Conventions (from the issue and the paper, not from the library): expectations under ``p(x, y)`` are
averages over the K diagonal pairs; expectations under ``p(x)p(y)`` are averages over the K(K-1)
off-diagonal pairs; multi-sample normalisation is over x for a fixed y (over i, down column j).

Also holds the analytic gradients (loops) used to pin the gradient of I_MINE (= I_TUBA at a = EMA)
and I_JS / SMILE (= f-GAN JS), and a masked K^3 leave-one-out log-mean-exp in torch (for autograd).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

import torch

Matrix = Sequence[Sequence[float]]


# --------------------------------------------------------------------------------------------------
# scalar helpers
# --------------------------------------------------------------------------------------------------
def log_sum_exp(values: Sequence[float]) -> float:
    m = max(values)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(v - m) for v in values))


def log_mean_exp(values: Sequence[float]) -> float:
    return log_sum_exp(values) - math.log(len(values))


def softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _k(s: Matrix) -> int:
    return len(s)


def _joint_mean(s: Matrix) -> float:
    """E_p(x,y)[f]: mean of the diagonal."""
    k = _k(s)
    return sum(s[i][i] for i in range(k)) / k


def _marginal_mean_exp(s: Matrix, shift: Callable[[int, int], float] = lambda i, j: 0.0) -> float:
    """E_p(x)p(y)[exp(f - shift)]: mean over the K(K-1) off-diagonal pairs."""
    k = _k(s)
    tot = 0.0
    for i in range(k):
        for j in range(k):
            if i != j:
                tot += math.exp(s[i][j] - shift(i, j))
    return tot / (k * (k - 1))


def _marginal_log_mean_exp(s: Matrix) -> float:
    k = _k(s)
    return log_mean_exp([s[i][j] for i in range(k) for j in range(k) if i != j])


# --------------------------------------------------------------------------------------------------
# bounds, one K x K problem each
# --------------------------------------------------------------------------------------------------
def ba(log_q: Matrix, entropy_x: float) -> float:
    """Eq. 2: E_p[log q(x|y)] + h(X)."""
    return _joint_mean(log_q) + entropy_x


def dv(s: Matrix) -> float:
    """Eq. 5: E_p[f] - log E_q[e^f]."""
    return _joint_mean(s) - _marginal_log_mean_exp(s)


def nwj(s: Matrix) -> float:
    """Eq. 7: E_p[f] - e^-1 E_q[e^f]."""
    return _joint_mean(s) - math.exp(-1.0) * _marginal_mean_exp(s)


def tuba(s: Matrix, log_a: Sequence[float]) -> float:
    """Eq. 6: E_p[f] - E_p(y)[ E_p(x)[e^f] / a(y) + log a(y) - 1 ].

    E_p(y)[log a(y)] over the K observed y_j; E_p(y)E_p(x)[e^f / a(y)] over off-diagonal pairs (x_i, y_j).
    """
    k = _k(s)
    mean_log_a = sum(log_a[j] for j in range(k)) / k
    ratio = _marginal_mean_exp(s, shift=lambda i, j: log_a[j])
    return _joint_mean(s) - (ratio + mean_log_a - 1.0)


def nce(s: Matrix) -> float:
    """Eq. 10 / Eq. 12 orientation: 1/K sum_j log( e^{f(x_j, y_j)} / (1/K sum_i e^{f(x_i, y_j)}) )."""
    k = _k(s)
    tot = 0.0
    for j in range(k):
        tot += s[j][j] - log_mean_exp([s[i][j] for i in range(k)])
    return tot / k


def js_value(v: Matrix) -> float:
    """Eq. 18: 1 + E_p[V] - E_q[e^V]."""
    return 1.0 + _joint_mean(v) - _marginal_mean_exp(v)


def js_fgan(v: Matrix) -> float:
    """f-GAN JS lower bound: E_p[-softplus(-V)] - E_q[softplus(V)]."""
    k = _k(v)
    joint = sum(-softplus(-v[i][i]) for i in range(k)) / k
    marg = sum(softplus(v[i][j]) for i in range(k) for j in range(k) if i != j) / (k * (k - 1))
    return joint - marg


def smile(s: Matrix, tau: float) -> float:
    """Clipped DV: E_p[f] - log E_q[exp clip(f, -tau, tau)]."""
    k = _k(s)
    clipped = [min(max(s[i][j], -tau), tau) for i in range(k) for j in range(k) if i != j]
    return _joint_mean(s) - log_mean_exp(clipped)


def loo_mixture_log(s: Matrix, held_out: int, j: int) -> float:
    """log m(y_j; x_{-held_out}) = log 1/(K-1) sum_{i != held_out} e^{f(x_i, y_j)}."""
    k = _k(s)
    return log_mean_exp([s[i][j] for i in range(k) if i != held_out])


def _interp(s: Matrix, log_q: Sequence[float] | None, alpha: float, log_den: Callable[[float, float], float]) -> float:
    """Eq. 11 with the leave-one-out construction:

    joint term  1/K sum_j [ f_jj - 1/(K-1) sum_{k != j} log den(m(y_j; x_{-k}), q(y_j)) ]
    marginal    1/(K(K-1)) sum_j sum_{i != j} e^{f_ij} / den(m(y_j; x_{-j}), q(y_j))
    value       1 + joint - marginal
    """
    k = _k(s)
    joint = 0.0
    for j in range(k):
        acc = 0.0
        for kk in range(k):
            if kk == j:
                continue
            lm = loo_mixture_log(s, kk, j)
            acc += log_den(lm, None if log_q is None else log_q[j])
        joint += s[j][j] - acc / (k - 1)
    joint /= k
    marg = 0.0
    for j in range(k):
        lden = log_den(loo_mixture_log(s, j, j), None if log_q is None else log_q[j])
        for i in range(k):
            if i != j:
                marg += math.exp(s[i][j] - lden)
    marg /= k * (k - 1)
    return 1.0 + joint - marg


def interpolated(s: Matrix, log_q: Sequence[float] | None, alpha: float) -> float:
    """I_alpha (Eq. 11): denominator alpha m + (1 - alpha) q."""

    def log_den(lm: float, lq: float | None) -> float:
        if lq is None or alpha == 1.0:
            return lm
        if alpha == 0.0:
            return lq
        return math.log(alpha * math.exp(lm) + (1.0 - alpha) * math.exp(lq))

    return _interp(s, log_q, alpha, log_den)


def interpolated_product(s: Matrix, log_q: Sequence[float] | None, alpha: float) -> float:
    """App. C.2 item 3: denominator m^alpha q^(1 - alpha)."""

    def log_den(lm: float, lq: float | None) -> float:
        if lq is None:
            return lm
        return alpha * lm + (1.0 - alpha) * lq

    return _interp(s, log_q, alpha, log_den)


def interpolated_linear(s: Matrix, alpha: float) -> float:
    """App. C.2 item 2: alpha I_NCE + (1 - alpha) I_NWJ."""
    return alpha * nce(s) + (1.0 - alpha) * nwj(s)


def loo_nce(s: Matrix) -> float:
    """The leave-one-out InfoNCE form (alpha = 1 limit of Eq. 11): InfoNCE with the K-1 x's other than a
    held-out x_k (k != j) in the mixture for y_j, averaged over the K(K-1) (j, k) choices."""
    k = _k(s)
    tot = 0.0
    for j in range(k):
        for kk in range(k):
            if kk != j:
                tot += s[j][j] - loo_mixture_log(s, kk, j)
    return tot / (k * (k - 1))


def tnce(lp: Matrix) -> float:
    """Eq. 12: 1/K sum_i log p(y_i|x_i) / (1/K sum_j p(y_i|x_j))."""
    k = _k(lp)
    tot = 0.0
    for i in range(k):
        tot += lp[i][i] - log_mean_exp([lp[j][i] for j in range(k)])
    return tot / k


def loo_upper(lp: Matrix) -> float:
    """Eq. 13: 1/K sum_i log p(y_i|x_i) / (1/(K-1) sum_{j != i} p(y_i|x_j))."""
    k = _k(lp)
    tot = 0.0
    for i in range(k):
        tot += lp[i][i] - log_mean_exp([lp[j][i] for j in range(k) if j != i])
    return tot / k


def variational_upper(lp: Matrix, log_q: Sequence[float]) -> float:
    """Eq. 1 (one y_i ~ p(y|x_i) each): 1/K sum_i [log p(y_i|x_i) - log q(y_i)]."""
    k = _k(lp)
    return sum(lp[i][i] - log_q[i] for i in range(k)) / k


def nwj_reparam(lp: Matrix, log_q: Sequence[float]) -> float:
    """Eq. 14: E_p[log p(y|x)/q(y)] + 1 - E_p(y)[E_p(x) p(y|x) / q(y)]."""
    return variational_upper(lp, log_q) + 1.0 - _marginal_mean_exp(lp, shift=lambda i, j: log_q[j])


def tc_upper(lp_dims: Sequence[Matrix], lower: float | None = None) -> float:
    """Sec. 2.5: sum_d LOO-upper(X; Y_d) - lower, lower defaulting to Eq. 12 on sum_d log p(y_d|x)."""
    d = len(lp_dims)
    k = len(lp_dims[0])
    upper = sum(loo_upper(lp_dims[dd]) for dd in range(d))
    if lower is None:
        joint = [[sum(lp_dims[dd][i][j] for dd in range(d)) for j in range(k)] for i in range(k)]
        lower = tnce(joint)
    return upper - lower


# --------------------------------------------------------------------------------------------------
# analytic gradients (loops)
# --------------------------------------------------------------------------------------------------
def tuba_grad(s: Matrix, log_a: Sequence[float]) -> tuple[list[list[float]], list[float]]:
    """d I_TUBA / d f_ij and d I_TUBA / d log a_j."""
    k = _k(s)
    n_off = k * (k - 1)
    gf = [[0.0] * k for _ in range(k)]
    ga = [-1.0 / k] * k
    for i in range(k):
        for j in range(k):
            if i == j:
                gf[i][j] = 1.0 / k
            else:
                e = math.exp(s[i][j] - log_a[j]) / n_off
                gf[i][j] = -e
                ga[j] += e
    return gf, ga


def js_fgan_grad(v: Matrix) -> list[list[float]]:
    """d f-GAN-JS / d V_ij: sigmoid(-V_ii)/K on the diagonal, -sigmoid(V_ij)/(K(K-1)) off it."""
    k = _k(v)
    return [[sigmoid(-v[i][j]) / k if i == j else -sigmoid(v[i][j]) / (k * (k - 1)) for j in range(k)]
            for i in range(k)]


# --------------------------------------------------------------------------------------------------
# batching over leading dims
# --------------------------------------------------------------------------------------------------
def _lead_index(shape: Sequence[int]):
    return itertools.product(*[range(n) for n in shape])


def batched(fn: Callable[..., float], scores: torch.Tensor, *, vectors: dict[str, torch.Tensor] | None = None,
            scalars: dict[str, float | torch.Tensor] | None = None, lead_ndim: int = 2) -> torch.Tensor:
    """Apply a one-problem reference over the leading dims of ``scores`` (``[..., K, K]``).

    ``vectors`` (e.g. log q, ``[..., K]``) and tensor ``scalars`` (e.g. alpha) are broadcast to the leading
    shape and indexed per problem. ``lead_ndim`` = number of trailing dims that form one problem (2 for a
    K x K matrix, 3 for tc_upper's [D, K, K]). Returns float64 of shape ``scores.shape[:-lead_ndim]``.
    """
    lead = tuple(scores.shape[:-lead_ndim])
    vectors = vectors or {}
    scalars = scalars or {}
    vec = {n: torch.broadcast_to(v, lead + (v.shape[-1],)).to(torch.float64) for n, v in vectors.items()}
    sca = {n: (torch.broadcast_to(torch.as_tensor(v, dtype=torch.float64), lead) if isinstance(v, torch.Tensor) else v)
           for n, v in scalars.items()}
    s64 = scores.detach().to(torch.float64)
    out = torch.empty(lead, dtype=torch.float64)
    for idx in _lead_index(lead):
        kw = {n: v[idx].tolist() for n, v in vec.items()}
        kw.update({n: (float(v[idx]) if isinstance(v, torch.Tensor) else v) for n, v in sca.items()})
        out[idx] = fn(s64[idx].tolist(), **kw)
    return out


# --------------------------------------------------------------------------------------------------
# masked K^3 leave-one-out log-mean-exp (torch, differentiable)
# --------------------------------------------------------------------------------------------------
def loo_logmeanexp_masked(scores: torch.Tensor) -> torch.Tensor:
    """``L[..., k, j] = log 1/(K-1) sum_{i != k} exp s_ij`` by masking row k to -inf: K^3 memory."""
    k = scores.shape[-1]
    eye = torch.eye(k, dtype=torch.bool, device=scores.device)  # [k(held out), i]
    expanded = scores.unsqueeze(-3).expand(scores.shape[:-2] + (k, k, k))  # [..., held, i, j]
    masked = expanded.masked_fill(eye.unsqueeze(-1), float("-inf"))
    return torch.logsumexp(masked, dim=-2) - math.log(k - 1)  # [..., held, j]


def loo_logmeanexp_loop(s: Matrix) -> list[list[float]]:
    k = _k(s)
    return [[loo_mixture_log(s, kk, j) for j in range(k)] for kk in range(k)]
