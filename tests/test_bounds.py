"""vbmi.bounds: every vectorised bound against a plain-loop reference written from the paper's equations,
limits, closed-form checks with the optimal Gaussian critic, gradients, finiteness and errors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np

import _reference as ref
from vbmi import bounds as B
from vbmi import data
from vbmi.bounds import BOUNDS

F64 = torch.float64
TOL = 1e-10

PAPER_KEYS = {
    "ba", "dv", "nwj", "tuba", "mine", "nce", "js", "interpolated", "interpolated_linear",
    "interpolated_product", "smile", "tnce", "loo_upper", "variational_upper", "nwj_reparam", "tc_upper",
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_scores(shape=(3, 2, 5, 5), seed=0, scale=2.0, dtype=F64) -> torch.Tensor:
    return (scale * torch.randn(shape, generator=_gen(seed), dtype=F64)).to(dtype)


def asymmetric_scores(shape=(3, 2, 6, 6), seed=1) -> torch.Tensor:
    """Strong row and column structure (f = 2.5 a_i - 1.5 b_j + noise + diag boost): transposing changes it."""
    g = _gen(seed)
    k = shape[-1]
    a = torch.linspace(-1.0, 1.0, k, dtype=F64).view(-1, 1)  # row (x) effect
    b = torch.linspace(-1.0, 1.0, k, dtype=F64).view(1, -1) ** 2  # column (y) effect, not a transpose of a
    noise = 0.5 * torch.randn(shape, generator=g, dtype=F64)
    return 2.5 * a - 1.5 * b + noise + 2.0 * torch.eye(k, dtype=F64)


def random_baseline(shape, seed=2) -> torch.Tensor:
    return torch.randn(shape, generator=_gen(seed), dtype=F64)


SCORE_SETS = {
    "random": lambda: random_scores(),
    "asymmetric": lambda: asymmetric_scores(),
    "k2": lambda: random_scores((4, 2, 2), seed=3),
}


def _assert_close(got: torch.Tensor, want: torch.Tensor, tol: float = TOL) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == F64
    err = (got - want).abs().max().item()
    assert err <= tol, f"max abs error {err:.3e} > {tol:.0e}\ngot  {got}\nwant {want}"


# --------------------------------------------------------------------------------------------------
# Differential tests: vectorised == plain loop, every registry key
# --------------------------------------------------------------------------------------------------
def _cases(s: torch.Tensor):
    """(label, lib value, reference value) for every registry key on scores s: [..., K, K]."""
    lead, k = s.shape[:-2], s.shape[-1]
    lq = random_baseline(lead + (k,), seed=11)
    lq_flat = random_baseline((k,), seed=12)  # broadcast over leading dims
    out = [
        ("ba", BOUNDS["ba"](s, entropy_x=1.25), ref.batched(ref.ba, s, scalars={"entropy_x": 1.25})),
        ("dv", BOUNDS["dv"](s), ref.batched(ref.dv, s)),
        ("nwj", BOUNDS["nwj"](s), ref.batched(ref.nwj, s)),
        ("tuba", BOUNDS["tuba"](s, log_baseline=lq), ref.batched(ref.tuba, s, vectors={"log_a": lq})),
        ("tuba/flat-baseline", BOUNDS["tuba"](s, log_baseline=lq_flat),
         ref.batched(ref.tuba, s, vectors={"log_a": lq_flat})),
        ("mine", BOUNDS["mine"](s, log_baseline=lq[..., :1]), ref.batched(ref.dv, s)),
        ("nce", BOUNDS["nce"](s), ref.batched(ref.nce, s)),
        ("js", BOUNDS["js"](s), ref.batched(ref.js_value, s)),
        ("smile", BOUNDS["smile"](s), ref.batched(ref.smile, s, scalars={"tau": 5.0})),
        ("smile/tau=1", BOUNDS["smile"](s, tau=1.0), ref.batched(ref.smile, s, scalars={"tau": 1.0})),
        ("tnce", BOUNDS["tnce"](s), ref.batched(ref.tnce, s)),
        ("loo_upper", BOUNDS["loo_upper"](s), ref.batched(ref.loo_upper, s)),
        ("variational_upper", BOUNDS["variational_upper"](s, log_baseline=lq),
         ref.batched(ref.variational_upper, s, vectors={"log_q": lq})),
        ("nwj_reparam", BOUNDS["nwj_reparam"](s, log_baseline=lq),
         ref.batched(ref.nwj_reparam, s, vectors={"log_q": lq})),
    ]
    for alpha in (0.0, 0.3, 0.9933, 1.0):
        for name, fn in (("interpolated", ref.interpolated), ("interpolated_product", ref.interpolated_product)):
            out.append((f"{name}/alpha={alpha}", BOUNDS[name](s, log_baseline=lq, alpha=alpha),
                        ref.batched(fn, s, vectors={"log_q": lq}, scalars={"alpha": alpha})))
        out.append((f"interpolated_linear/alpha={alpha}", BOUNDS["interpolated_linear"](s, alpha=alpha),
                    ref.batched(ref.interpolated_linear, s, scalars={"alpha": alpha})))
    # alpha = 1 needs no baseline
    out.append(("interpolated/alpha=1/no-q", BOUNDS["interpolated"](s, alpha=1.0),
                ref.batched(ref.interpolated, s, scalars={"log_q": None, "alpha": 1.0})))
    return out


@pytest.mark.parametrize("which", sorted(SCORE_SETS))
def test_every_bound_matches_loop_reference(which):
    s = SCORE_SETS[which]()
    cases = _cases(s)
    covered = {label.split("/")[0] for label, _, _ in cases}
    assert covered | {"tc_upper"} == PAPER_KEYS
    for label, got, want in cases:
        try:
            _assert_close(got, want)
        except AssertionError as e:
            raise AssertionError(f"{label} on {which} scores: {e}") from None


@pytest.mark.parametrize("name", ["interpolated", "interpolated_product", "interpolated_linear"])
def test_alpha_tensor_broadcast_over_leading_dim(name):
    s = asymmetric_scores((3, 2, 5, 5), seed=4)
    alpha = torch.tensor([[0.0], [0.4], [1.0]], dtype=F64)  # [3, 1] broadcast over [3, 2]
    lq = random_baseline((3, 2, 5), seed=5)
    if name == "interpolated_linear":
        got = BOUNDS[name](s, alpha=alpha)
        want = ref.batched(ref.interpolated_linear, s, scalars={"alpha": alpha})
    else:
        got = BOUNDS[name](s, log_baseline=lq, alpha=alpha)
        fn = ref.interpolated if name == "interpolated" else ref.interpolated_product
        want = ref.batched(fn, s, vectors={"log_q": lq}, scalars={"alpha": alpha})
    _assert_close(got, want)
    # and equal to calling with each float alpha separately
    for r, a in enumerate((0.0, 0.4, 1.0)):
        kw = {} if name == "interpolated_linear" else {"log_baseline": lq[r]}
        _assert_close(got[r], BOUNDS[name](s[r], alpha=a, **kw), 1e-14)


@pytest.mark.parametrize("lower", [None, "tensor"])
def test_tc_upper_matches_loop_reference(lower):
    lp = asymmetric_scores((3, 4, 5, 5), seed=6) - 3.0  # [..., D, K, K]
    low = None if lower is None else torch.tensor([0.1, -0.2, 0.7], dtype=F64)
    got = BOUNDS["tc_upper"](lp, lower=low) if low is not None else BOUNDS["tc_upper"](lp)
    scal = {} if low is None else {"lower": low}
    want = ref.batched(ref.tc_upper, lp, scalars=scal, lead_ndim=3)
    _assert_close(got, want)


def test_asymmetric_fixture_is_orientation_sensitive():
    """The asymmetric scores would catch a transposed convention: the references differ on s and s^T."""
    s = asymmetric_scores()
    st_ = s.transpose(-1, -2)
    lq = random_baseline(s.shape[:-1], seed=11)
    for fn, kw in [(ref.nce, {}), (ref.loo_upper, {}), (ref.tuba, {"vectors": {"log_a": lq}}),
                   (ref.interpolated, {"vectors": {"log_q": lq}, "scalars": {"alpha": 0.5}}),
                   (ref.nwj_reparam, {"vectors": {"log_q": lq}})]:
        diff = (ref.batched(fn, s, **kw) - ref.batched(fn, st_, **kw)).abs().min().item()
        assert diff > 1e-2, fn.__name__
    # and the library sees the difference the same way
    assert (B.nce(s) - B.nce(st_)).abs().min() > 1e-2


def test_loo_logmeanexp_columns_matches_references_float64():
    s = asymmetric_scores((2, 6, 6), seed=7)
    for s in (s, _ties()):
        got = B.loo_logmeanexp_columns(s)
        _assert_close(got, ref.loo_logmeanexp_masked(s))
        for b in range(2):
            _assert_close(got[b], torch.tensor(ref.loo_logmeanexp_loop(s[b].tolist()), dtype=F64))


def _dominant_diagonal(k=64, lead=(4,), gap=16.0, seed=8) -> torch.Tensor:
    """Columns whose diagonal is at least ``gap`` nats above every other entry of the column (I = 10 nats regime)."""
    g = _gen(seed)
    s = torch.randn(lead + (k, k), generator=g, dtype=F64)
    diag_boost = gap + 8.0 + 4.0 * torch.rand(lead + (k,), generator=g, dtype=F64)  # 24..28 nats above noise
    s = s + torch.diag_embed(diag_boost)
    # ties and near-ties below the max: two rows equal in some columns
    s[..., 1, 3] = s[..., 2, 3]
    return s


def test_loo_logmeanexp_columns_float32_dominant_diagonal():
    s64 = _dominant_diagonal()
    k = s64.shape[-1]
    off = ~torch.eye(k, dtype=torch.bool)
    gaps = torch.diagonal(s64, dim1=-2, dim2=-1) - s64.masked_fill(~off, -math.inf).amax(-2)
    assert gaps.min() > 16.0  # the regime the issue describes
    s32 = s64.float()
    want = ref.loo_logmeanexp_masked(s32.double())
    got = B.loo_logmeanexp_columns(s32)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    err = (got.double() - want).abs().max().item()
    assert err < 2e-5, err
    # the row that holds out the diagonal must not collapse to the diagonal's value
    held = torch.diagonal(got, dim1=-2, dim2=-1).double()
    assert ((held - torch.diagonal(want, dim1=-2, dim2=-1)).abs() < 2e-5).all()


def _ties(k=6) -> torch.Tensor:
    s = random_scores((2, k, k), seed=30)
    s[..., 0, 2] = s[..., 3, 2] = 9.0  # two rows share a column's maximum
    s[..., :, 4] = 1.5  # a constant column
    return s


@pytest.mark.parametrize("maker", ["dominant", "asymmetric", "ties"])
def test_loo_logmeanexp_columns_gradient_matches_float64_masked(maker):
    s64 = {"dominant": lambda: _dominant_diagonal(k=16, lead=(2,)), "asymmetric": lambda: asymmetric_scores((2, 6, 6)),
           "ties": _ties}[maker]()
    w = torch.randn(s64.shape, generator=_gen(9), dtype=F64)  # random upstream gradient
    x64 = s64.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad((ref.loo_logmeanexp_masked(x64) * w).sum(), x64)
    x64b = s64.clone().requires_grad_(True)
    (g64,) = torch.autograd.grad((B.loo_logmeanexp_columns(x64b) * w).sum(), x64b)
    assert (g64 - g_ref).abs().max() < 1e-10
    x32 = s64.float().requires_grad_(True)
    (g32,) = torch.autograd.grad((B.loo_logmeanexp_columns(x32) * w.float()).sum(), x32)
    assert torch.isfinite(g32).all()
    assert (g32.double() - g_ref).abs().max() < 1e-5


def test_interpolated_float32_at_10_nats_matches_float64():
    """The regime that motivated the masked leave-one-out: I = 10 nats, optimal critic, K = 256, float32."""
    rho = data.mi_to_rho(10.0)
    x, y = data.sample_gaussian(256, rho=rho.expand(2), generator=31, dtype=F64)
    lp = data.gaussian_log_p_y_given_x(x, y, rho.expand(2))
    lq = data.gaussian_log_p_y(y)
    k = lp.shape[-1]
    gap = torch.diagonal(lp, dim1=-2, dim2=-1) - lp.masked_fill(torch.eye(k, dtype=torch.bool), -math.inf).amax(-2)
    assert (gap > 16).any()  # some columns have a diagonal more than 16 nats above the rest
    for a in (0.01, 0.5, 1.0):
        v64 = B.interpolated(lp, log_baseline=lq, alpha=a)
        leaf = lp.float().requires_grad_(True)
        v32 = B.interpolated(leaf, log_baseline=lq.float(), alpha=a)
        assert (v32.double() - v64).abs().max() < 1e-4, a
        (g,) = torch.autograd.grad(v32.sum(), leaf)
        assert torch.isfinite(g).all()


def test_logmeanexp_offdiag_matches_loop():
    s = asymmetric_scores()
    want = ref.batched(lambda m: ref.log_mean_exp([m[i][j] for i in range(6) for j in range(6) if i != j]), s)
    _assert_close(B.logmeanexp_offdiag(s), want)


# --------------------------------------------------------------------------------------------------
# Limits and invariances
# --------------------------------------------------------------------------------------------------
def _delete_row_col(s: torch.Tensor, k: int) -> torch.Tensor:
    keep = [i for i in range(s.shape[-1]) if i != k]
    return s[..., keep, :][..., :, keep]


@pytest.mark.parametrize("which", ["random", "asymmetric"])
def test_interpolated_alpha1_is_leave_one_out_infonce(which):
    s = SCORE_SETS[which]()
    k = s.shape[-1]
    lq = random_baseline(s.shape[:-1], seed=13)
    i1 = B.interpolated(s, log_baseline=lq, alpha=1.0)
    _assert_close(i1, ref.batched(ref.loo_nce, s))
    _assert_close(B.interpolated(s, alpha=1.0), i1, 1e-12)  # q is irrelevant at alpha = 1
    # same as averaging InfoNCE over the (K-1)-batches with one (x_k, y_k) pair removed
    _assert_close(i1, torch.stack([B.nce(_delete_row_col(s, kk)) for kk in range(k)]).mean(0))
    # the product interpolation has the same alpha = 1 limit
    _assert_close(B.interpolated_product(s, log_baseline=lq, alpha=1.0), i1)


@pytest.mark.parametrize("which", ["random", "asymmetric"])
def test_interpolated_alpha0_is_tuba_with_q(which):
    s = SCORE_SETS[which]()
    lq = random_baseline(s.shape[:-1], seed=14)
    want = B.tuba(s, log_baseline=lq)
    _assert_close(want, ref.batched(ref.tuba, s, vectors={"log_a": lq}))
    _assert_close(B.interpolated(s, log_baseline=lq, alpha=0.0), want)
    _assert_close(B.interpolated_product(s, log_baseline=lq, alpha=0.0), want)
    # and alpha -> 0 is continuous
    _assert_close(B.interpolated(s, log_baseline=lq, alpha=1e-12), want, 1e-8)


def test_interpolated_linear_limits():
    s = asymmetric_scores()
    _assert_close(B.interpolated_linear(s, alpha=1.0), B.nce(s))
    _assert_close(B.interpolated_linear(s, alpha=0.0), B.nwj(s))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_infonce_at_most_log_k(dtype):
    for k, scale in [(2, 1.0), (8, 5.0), (16, 50.0), (64, 300.0)]:
        s = random_scores((200, k, k), seed=k, scale=scale, dtype=dtype)
        s = s + torch.diag_embed(scale * torch.ones(200, k, dtype=dtype))  # push towards the ceiling
        slack = 1e-5 if dtype == torch.float32 else 1e-12
        assert (B.nce(s) <= math.log(k) + slack).all()
        assert (B.tnce(s) <= math.log(k) + slack).all()
    # the ceiling is reached by a critic that separates the diagonal perfectly
    k = 16
    s = torch.full((k, k), -1e3, dtype=F64) + torch.diag(torch.full((k,), 1e3, dtype=F64))
    assert abs(B.nce(s).item() - math.log(k)) < 1e-12


def test_interpolated_at_most_one_plus_log_k_over_alpha():
    k = 8
    s = random_scores((500, k, k), seed=15, scale=6.0)
    s = s + torch.diag_embed(8.0 * torch.rand(500, k, generator=_gen(16), dtype=F64))
    lq = 4.0 * random_baseline((500, k), seed=17) - 4.0
    alpha = torch.rand(500, generator=_gen(18), dtype=F64).clamp_min(1e-4)
    val = B.interpolated(s, log_baseline=lq, alpha=alpha)
    assert (val <= 1.0 + torch.log(k / alpha) + 1e-12).all()
    # with the leave-one-out mixture (K-1 x's), the tight ceiling is 1 + log((K-1)/alpha), and it is reached
    assert (val <= 1.0 + torch.log((k - 1) / alpha) + 1e-12).all()
    # a perfectly separating critic with q(y) = 1: joint term -> log((K-1)/alpha), marginal term -> 0
    s_sep = torch.full((k, k), -60.0, dtype=F64) + torch.diag(torch.full((k,), 120.0, dtype=F64))  # +-60
    for a in (0.01, 0.5, 0.99):
        v = B.interpolated(s_sep, log_baseline=torch.zeros(k, dtype=F64), alpha=a).item()
        assert abs(v - (1.0 + math.log((k - 1) / a))) < 1e-6, (a, v)
    assert abs(B.interpolated(s_sep, alpha=1.0).item() - math.log(k - 1)) < 1e-12  # marginal term is 1


def test_constant_shift_invariance():
    s = asymmetric_scores()
    c = 3.7
    lq = random_baseline(s.shape[:-1], seed=19)
    _assert_close(B.dv(s + c), B.dv(s), 1e-12)
    _assert_close(B.nce(s + c), B.nce(s), 1e-12)
    assert (B.nwj(s + c) - B.nwj(s)).abs().min() > 1e-2
    assert (B.tuba(s + c, log_baseline=lq) - B.tuba(s, log_baseline=lq)).abs().min() > 1e-2
    # NCE (and LOO-InfoNCE) are also invariant to c(y_j) added down each column; DV and NWJ are not
    cy = torch.randn(s.shape[:-2] + (1, s.shape[-1]), generator=_gen(20), dtype=F64) * 2.0
    _assert_close(B.nce(s + cy), B.nce(s), 1e-12)
    _assert_close(B.interpolated(s + cy, alpha=1.0), B.interpolated(s, alpha=1.0), 1e-12)
    assert (B.nwj(s + cy) - B.nwj(s)).abs().min() > 1e-3
    # adding c(x_i) along rows is NOT an NCE invariance (rows are x): pins the orientation
    cx = cy.transpose(-1, -2)
    assert (B.nce(s + cx) - B.nce(s)).abs().min() > 1e-3
    # TUBA: shifting f and log a(y) together leaves it unchanged (a absorbs the shift)
    _assert_close(B.tuba(s + c, log_baseline=lq + c), B.tuba(s, log_baseline=lq), 1e-12)


def test_inputs_not_modified_in_place():
    s = asymmetric_scores()
    lq = random_baseline(s.shape[:-1], seed=21)
    s0, lq0 = s.clone(), lq.clone()
    for name, bound in BOUNDS.items():
        if name == "tc_upper":
            bound(s)
        elif name == "ba":
            bound(s, entropy_x=0.0)
        elif bound.takes_alpha:
            bound(s, alpha=0.5, **({"log_baseline": lq} if bound.baseline != "none" else {}))
        elif bound.baseline != "none":
            bound(s, log_baseline=lq)
        else:
            bound(s)
    assert torch.equal(s, s0) and torch.equal(lq, lq0)


# --------------------------------------------------------------------------------------------------
# Optimal critic on the d = 20 Gaussian (I = 2 nats), 2000 batches of K = 32 as a leading dim
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optimal_gaussian():
    mi, k, n_batches = 2.0, 32, 2000
    rho = data.mi_to_rho(mi, d=20)
    x, y = data.sample_gaussian(k, rho=rho.expand(n_batches), generator=123, dtype=F64)  # [B, K, d]
    log_p = data.gaussian_log_p_y_given_x(x, y, rho.expand(n_batches))  # [B, K, K]
    log_py = data.gaussian_log_p_y(y)  # [B, K]
    return mi, k, log_p, log_py


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    return v.mean().item(), v.std().item() / math.sqrt(v.numel())


def test_optimal_nwj_is_unbiased(optimal_gaussian):
    mi, k, log_p, log_py = optimal_gaussian
    f = 1.0 + log_p - log_py.unsqueeze(-2)  # 1 + log p(y|x)/p(y)
    m, se = _mean_se(B.nwj(f))
    assert abs(m - mi) < 4 * se, (m, se)
    assert se < 0.05  # the test has power
    # I_JS with the exact log ratio V = log p(y|x)/p(y) is the same number (Eq. 18 is tight)
    _assert_close(B.js(log_p - log_py.unsqueeze(-2)), B.nwj(f), 1e-9)


def test_optimal_nce_below_mi_and_log_k(optimal_gaussian):
    mi, k, log_p, log_py = optimal_gaussian
    v = B.nce(log_p)
    m, se = _mean_se(v)
    assert m + 4 * se < mi, (m, se)
    assert m < math.log(k) and (v <= math.log(k)).all()
    # any c(y) leaves it unchanged: the ratio critic gives the same numbers
    _assert_close(B.nce(log_p - log_py.unsqueeze(-2)), v, 1e-9)


def test_optimal_sandwich_tnce_mi_loo_upper(optimal_gaussian):
    mi, k, log_p, _ = optimal_gaussian
    lo, se_lo = _mean_se(B.tnce(log_p))
    hi, se_hi = _mean_se(B.loo_upper(log_p))
    assert lo + 4 * se_lo < mi < hi - 4 * se_hi, (lo, se_lo, hi, se_hi)
    # per batch the only difference is whether p(y_j|x_j) is in the denominator: LOO >= TNCE always
    assert (B.loo_upper(log_p) >= B.tnce(log_p) - 1e-12).all()


def test_optimal_variational_upper_and_nwj_reparam_with_true_marginal(optimal_gaussian):
    mi, k, log_p, log_py = optimal_gaussian
    r, se_r = _mean_se(B.variational_upper(log_p, log_baseline=log_py))
    n, se_n = _mean_se(B.nwj_reparam(log_p, log_baseline=log_py))
    assert abs(r - mi) < 4 * se_r and abs(n - mi) < 4 * se_n
    # Eq. 14 with q = p is exactly NWJ with the optimal critic
    _assert_close(B.nwj_reparam(log_p, log_baseline=log_py), B.nwj(1.0 + log_p - log_py.unsqueeze(-2)), 1e-9)


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------
def _grad(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    return torch.autograd.grad(fn(*leaves).sum(), leaves)


def test_mine_ema_update_matches_loop():
    batches = [asymmetric_scores((3, 6, 6), seed=s) for s in range(4)]
    decay = 0.9
    state = None
    ema = [None] * 3
    for sc in batches:
        state = B.mine_ema_update(state, sc, decay=decay)
        for r in range(3):
            # Z_batch = mean_{i != j} e^{f_ij}
            z = sum(math.exp(sc[r, i, j].item()) for i in range(6) for j in range(6) if i != j) / 30
            ema[r] = z if ema[r] is None else decay * ema[r] + (1 - decay) * z
        _assert_close(state, torch.log(torch.tensor(ema, dtype=F64)))
        assert not state.requires_grad


def test_mine_value_is_dv_and_gradient_is_tuba_at_ema():
    batches = [asymmetric_scores((3, 6, 6), seed=s) for s in range(3)]
    state = None
    for sc in batches:
        state = B.mine_ema_update(state, sc, decay=0.99)
    s = batches[-1]
    la = state.unsqueeze(-1)  # [3, 1]
    _assert_close(B.mine(s, log_baseline=la), B.dv(s))
    (g_mine,) = _grad(lambda t: B.mine(t, log_baseline=la), s)
    (g_tuba,) = _grad(lambda t: B.tuba(t, log_baseline=la.expand(3, 6)), s)
    _assert_close(g_mine, g_tuba, 1e-14)
    for r in range(3):
        gf, _ = ref.tuba_grad(s[r].tolist(), [la[r, 0].item()] * 6)
        _assert_close(g_mine[r], torch.tensor(gf, dtype=F64))
    # and differs from the DV gradient (which is not what MINE uses)
    (g_dv,) = _grad(B.dv, s)
    assert (g_mine - g_dv).abs().max() > 1e-3
    # the baseline is a constant: no gradient flows into it
    la_leaf = la.clone().requires_grad_(True)
    out = B.mine(s, log_baseline=la_leaf).sum()
    assert not out.requires_grad or la_leaf.grad is None


def test_tuba_gradient_matches_analytic_loop():
    s = asymmetric_scores((2, 5, 5))
    lq = random_baseline((2, 5), seed=22)
    gs, gq = _grad(lambda t, q: B.tuba(t, log_baseline=q), s, lq)
    for r in range(2):
        gf, ga = ref.tuba_grad(s[r].tolist(), lq[r].tolist())
        _assert_close(gs[r], torch.tensor(gf, dtype=F64))
        _assert_close(gq[r], torch.tensor(ga, dtype=F64))


@pytest.mark.parametrize("name", ["js", "smile"])
def test_js_and_smile_gradient_is_fgan_js(name):
    s = asymmetric_scores((3, 6, 6), seed=23)
    (g,) = _grad(BOUNDS[name], s)
    (g_fgan,) = _grad(B.js_fgan, s)
    _assert_close(g, g_fgan, 1e-14)
    for r in range(3):
        _assert_close(g[r], torch.tensor(ref.js_fgan_grad(s[r].tolist()), dtype=F64))
    _assert_close(B.js_fgan(s), ref.batched(ref.js_fgan, s))
    # the value is not the f-GAN value
    assert (BOUNDS[name](s) - B.js_fgan(s)).abs().min() > 1e-3


def test_js_value_follows_paper_not_reference_notebook():
    """Eq. 18 (1 + E_p V - E_q e^V) is tight at the optimum; the notebook's nwj(V) is I - 1/e."""
    s = asymmetric_scores()
    notebook = B.nwj(s)  # E_p V - E_q e^{V - 1}
    paper = B.js(s)
    _assert_close(paper, ref.batched(ref.js_value, s))
    assert (paper - notebook).abs().min() > 1e-3


@pytest.mark.parametrize("name", ["dv", "nwj", "tuba", "nce", "interpolated", "interpolated_product",
                                  "interpolated_linear", "loo_upper", "nwj_reparam", "variational_upper"])
def test_gradcheck(name):
    """Autograd of the vectorised (and leave-one-out) code agrees with finite differences of its own value."""
    s = asymmetric_scores((2, 4, 4), seed=24).requires_grad_(True)
    lq = random_baseline((2, 4), seed=25).requires_grad_(True)
    bound = BOUNDS[name]
    if bound.takes_alpha:
        kw = {"alpha": 0.37}
        if bound.baseline != "none":
            assert torch.autograd.gradcheck(lambda t, q: bound(t, log_baseline=q, **kw), (s, lq))
        else:
            assert torch.autograd.gradcheck(lambda t: bound(t, **kw), (s,))
    elif bound.baseline != "none":
        assert torch.autograd.gradcheck(lambda t, q: bound(t, log_baseline=q), (s, lq))
    else:
        assert torch.autograd.gradcheck(bound, (s,))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_interpolated_gradients_finite_at_alpha_endpoints(alpha):
    s = _dominant_diagonal(k=8, lead=(2,)).float()
    lq = torch.zeros(2, 8)
    gs, gq = _grad(lambda t, q: B.interpolated(t, log_baseline=q, alpha=alpha), s, lq)
    assert torch.isfinite(gs).all() and torch.isfinite(gq).all()
    if alpha == 1.0:
        assert (gq == 0).all()


# --------------------------------------------------------------------------------------------------
# Finiteness on extreme scores (hypothesis)
# --------------------------------------------------------------------------------------------------
def _call_all(s: torch.Tensor, lq: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
    out = {}
    for name, bound in BOUNDS.items():
        if name == "tc_upper":
            out[name] = bound(s.unsqueeze(0))  # D = 1
        elif name == "ba":
            out[name] = bound(s, entropy_x=1.0)
        elif name == "mine":
            out[name] = bound(s, log_baseline=B.mine_ema_update(None, s).unsqueeze(-1))
        elif bound.takes_alpha:
            out[name] = bound(s, alpha=alpha, **({"log_baseline": lq} if bound.baseline != "none" else {}))
        elif bound.baseline != "none":
            out[name] = bound(s, log_baseline=lq)
        else:
            out[name] = bound(s)
    return out


@st.composite
def _extreme_inputs(draw, dtype):
    k = draw(st.integers(2, 6))
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    elems = st.floats(-1e4, 1e4, width=32 if dtype == torch.float32 else 64, allow_nan=False, allow_infinity=False)
    s = draw(hnp.arrays(np_dtype, (k, k), elements=elems))
    lq = draw(hnp.arrays(np_dtype, (k,), elements=elems))
    alpha = draw(st.one_of(st.sampled_from([0.0, 1.0, 1e-30]), st.floats(0.0, 1.0)))
    return torch.from_numpy(s), torch.from_numpy(lq), alpha


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_every_bound_finite_on_extreme_scores(dtype):
    @settings(max_examples=50, deadline=None, derandomize=True)
    @given(_extreme_inputs(dtype))
    def check(inputs):
        s, lq, alpha = inputs
        s = s.requires_grad_(True)
        lq = lq.requires_grad_(True)
        for name, v in _call_all(s, lq, alpha).items():
            assert v.dtype == dtype
            assert torch.isfinite(v).all(), f"{name}: {v} (alpha={alpha})"
            if v.requires_grad:
                grads = torch.autograd.grad(v.sum(), [s, lq], allow_unused=True)
                for g in grads:
                    assert g is None or torch.isfinite(g).all(), f"{name} gradient: {g}"

    check()


# --------------------------------------------------------------------------------------------------
# Registry and errors
# --------------------------------------------------------------------------------------------------
def test_registry_keys_and_metadata():
    assert set(BOUNDS) == PAPER_KEYS
    for name, b in BOUNDS.items():
        assert b.name == name and callable(b.fn) and b.equation
    lower = {"ba", "nwj", "tuba", "nce", "js", "interpolated", "interpolated_linear", "interpolated_product",
             "tnce", "nwj_reparam"}
    upper = {"loo_upper", "variational_upper", "tc_upper"}
    assert {n for n, b in BOUNDS.items() if b.kind == "lower"} == lower
    assert {n for n, b in BOUNDS.items() if b.kind == "upper"} == upper
    assert {n for n, b in BOUNDS.items() if b.kind == "estimate"} == {"dv", "mine", "smile"}
    assert {n for n, b in BOUNDS.items() if b.input == "log_p"} == {"tnce", "loo_upper", "variational_upper",
                                                                     "nwj_reparam"}
    assert {n for n, b in BOUNDS.items() if b.baseline == "required"} == {"tuba", "mine", "variational_upper",
                                                                          "nwj_reparam"}
    assert {n for n, b in BOUNDS.items() if b.takes_alpha} == {"interpolated", "interpolated_linear",
                                                               "interpolated_product"}
    assert not BOUNDS["smile"].from_paper


@pytest.mark.parametrize("name", sorted(PAPER_KEYS))
def test_registry_returns_leading_shape(name):
    s = random_scores((3, 2, 4, 4), seed=26)
    lq = random_baseline((3, 2, 4), seed=27)
    if name == "tc_upper":
        assert BOUNDS[name](s).shape == (3,)  # [..., D, K, K] -> [...]
        return
    assert _call_all_batched(s, lq)[name].shape == (3, 2)


def _call_all_batched(s, lq):
    out = {}
    for name, bound in BOUNDS.items():
        if name in ("tc_upper",):
            continue
        if name == "ba":
            out[name] = bound(s, entropy_x=1.0)
        elif bound.takes_alpha:
            out[name] = bound(s, alpha=0.5, **({"log_baseline": lq} if bound.baseline != "none" else {}))
        elif bound.baseline != "none":
            out[name] = bound(s, log_baseline=lq)
        else:
            out[name] = bound(s)
    return out


def test_unknown_bound_name():
    with pytest.raises(ValueError, match="valid names:.*nce"):
        B.get_bound("infonce")
    with pytest.raises(KeyError):
        BOUNDS["x"]
    try:
        BOUNDS["x"]
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, KeyError) and isinstance(e, ValueError)
        for key in PAPER_KEYS:
            assert key in str(e)
    assert "x" not in BOUNDS


@pytest.mark.parametrize("name", ["dv", "nwj", "nce", "js", "smile", "tnce", "loo_upper"])
@pytest.mark.parametrize("bad", ["nonsquare", "1d", "k1", "int", "list"])
def test_bad_scores(name, bad):
    s = {
        "nonsquare": torch.zeros(3, 4, dtype=F64),
        "1d": torch.zeros(4, dtype=F64),
        "k1": torch.zeros(2, 1, 1, dtype=F64),
        "int": torch.zeros(4, 4, dtype=torch.int64),
        "list": [[0.0, 1.0], [1.0, 0.0]],
    }[bad]
    err = TypeError if bad in ("int", "list") else ValueError
    with pytest.raises(err):
        BOUNDS[name](s)


@pytest.mark.parametrize("name", ["tuba", "interpolated", "interpolated_product", "variational_upper",
                                  "nwj_reparam", "mine"])
def test_missing_baseline(name):
    s = random_scores((4, 4))
    kw = {"alpha": 0.5} if BOUNDS[name].takes_alpha else {}
    with pytest.raises(ValueError, match="log_baseline"):
        BOUNDS[name](s, log_baseline=None, **kw)
    with pytest.raises((TypeError, ValueError), match="log_baseline"):
        BOUNDS[name](s, **kw)  # omitted entirely


def test_baseline_wrong_length():
    with pytest.raises(ValueError, match="log_baseline"):
        B.tuba(random_scores((4, 4)), log_baseline=torch.zeros(3, dtype=F64))


@pytest.mark.parametrize("name", ["interpolated", "interpolated_product", "interpolated_linear"])
@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), torch.tensor([0.5, 1.2]), torch.tensor(-1e-3), "0.5"])
def test_alpha_out_of_range(name, alpha):
    s = random_scores((2, 4, 4))
    kw = {} if name == "interpolated_linear" else {"log_baseline": torch.zeros(2, 4, dtype=F64)}
    with pytest.raises(ValueError, match="alpha"):
        BOUNDS[name](s, alpha=alpha, **kw)


def test_unknown_kwargs_rejected_by_registry():
    s = random_scores((4, 4))
    with pytest.raises(TypeError, match="unexpected keyword"):
        BOUNDS["nce"](s, alpha=0.5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        BOUNDS["nwj"](s, log_baseline=torch.zeros(4, dtype=F64))
    with pytest.raises(TypeError, match="unexpected keyword"):
        BOUNDS["interpolated"](s, alpha=0.5, log_baseline=torch.zeros(4, dtype=F64), tau=1.0)


def test_smile_bad_tau_and_mine_bad_decay():
    s = random_scores((4, 4))
    with pytest.raises(ValueError, match="tau"):
        B.smile(s, tau=0.0)
    with pytest.raises(ValueError, match="decay"):
        B.mine_ema_update(None, s, decay=1.0)


def test_tc_upper_needs_dims():
    with pytest.raises(ValueError):
        B.tc_upper(random_scores((4, 4)))


# --------------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------------
def test_bounds_do_not_change_thread_count():
    before = (torch.get_num_threads(), torch.get_num_interop_threads())
    s = asymmetric_scores()
    _call_all(s[0, 0], random_baseline((6,)), 0.5)
    assert (torch.get_num_threads(), torch.get_num_interop_threads()) == before


def test_import_and_use_in_fresh_process_keeps_thread_count():
    code = (
        "import torch; torch.set_num_threads(3); n = torch.get_num_threads()\n"
        "import vbmi, vbmi.bounds, vbmi.critics, vbmi.data, vbmi.objectives\n"
        "s = torch.randn(2, 8, 8)\n"
        "[vbmi.BOUNDS[k](s) for k in ('nce', 'nwj', 'dv', 'js', 'loo_upper')]\n"
        "c = vbmi.JointCritic(3, 3, hidden=8, max_chunk_elements=4); c(torch.randn(8, 3), torch.randn(8, 3)).sum().backward()\n"
        "vbmi.SeparableCritic(3, 3, hidden=8)(torch.randn(8, 3), torch.randn(8, 3))\n"
        "assert torch.get_num_threads() == n == 3, (torch.get_num_threads(), n)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
