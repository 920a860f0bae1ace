"""vbmi.data: MI <-> rho, exact log-densities, samplers (seeded, correct correlation), cubic transform,
encoder family and its analytic MI gradient."""

from __future__ import annotations

import math

import pytest
import torch

from vbmi import data

F64 = torch.float64
PAPER_RHOS = (0.42576, 0.57418, 0.67171, 0.74207, 0.79506)  # 2, 4, 6, 8, 10 nats at d = 20


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# MI <-> rho
# --------------------------------------------------------------------------------------------------
def test_paper_rhos():
    rho = data.mi_to_rho(torch.tensor(data.MI_LEVELS, dtype=F64), d=20)
    assert data.MI_LEVELS == (2.0, 4.0, 6.0, 8.0, 10.0)
    for r, want in zip(rho.tolist(), PAPER_RHOS):
        assert abs(r - want) < 5e-6, (r, want)
    for mi, want in zip(data.MI_LEVELS, PAPER_RHOS):  # scalar form, from the formula in Appendix B
        assert abs(math.sqrt(1.0 - math.exp(-2.0 * mi / 20)) - want) < 5e-6
        assert abs(data.mi_to_rho(mi).item() - want) < 5e-6


@pytest.mark.parametrize("d", [1, 5, 20])
def test_mi_rho_round_trip(d):
    mi = d * torch.tensor([0.0, 1e-6, 0.1, 0.5, 1.0, 2.0], dtype=F64)  # up to the 40 nats of d = 20
    rho = data.mi_to_rho(mi, d=d)
    assert ((rho >= 0) & (rho < 1)).all()
    assert torch.allclose(data.rho_to_mi(rho, d=d), mi, rtol=1e-9, atol=1e-12)
    r = torch.tensor([0.0, 0.1, 0.5, 0.9, 0.999], dtype=F64)
    assert torch.allclose(data.mi_to_rho(data.rho_to_mi(r, d=d), d=d), r, rtol=1e-9, atol=1e-12)
    # the closed form of Appendix B, elementwise
    for ri in r.tolist():
        assert abs(data.rho_to_mi(ri, d=d).item() - (-d / 2 * math.log(1 - ri * ri))) < 1e-12


def test_mi_rho_errors():
    with pytest.raises(ValueError):
        data.mi_to_rho(-0.1)
    with pytest.raises(ValueError):
        data.rho_to_mi(1.0)
    with pytest.raises(ValueError):
        data.sample_gaussian(4, generator=0)  # neither rho nor mi
    with pytest.raises(ValueError):
        data.sample_gaussian(4, rho=0.5, mi=1.0, generator=0)
    with pytest.raises(ValueError):
        data.sample_gaussian(0, rho=0.5, generator=0)


def test_mi_schedule():
    s = data.mi_schedule(3)
    assert s.tolist() == [2.0] * 3 + [4.0] * 3 + [6.0] * 3 + [8.0] * 3 + [10.0] * 3
    assert data.mi_schedule(2, levels=(1.0, 5.0)).tolist() == [1.0, 1.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        data.mi_schedule(0)


# --------------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------------
def test_sample_gaussian_deterministic_and_no_global_rng():
    state = torch.get_rng_state()
    a = data.sample_gaussian(16, mi=2.0, generator=7)
    b = data.sample_gaussian(16, mi=2.0, generator=_gen(7))
    c = data.sample_gaussian(16, mi=2.0, generator=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(torch.get_rng_state(), state)
    assert a[0].shape == (16, 20) and a[0].dtype == torch.float32
    with pytest.raises(ValueError):
        data.sample_gaussian(4, rho=0.5, generator=None)


@pytest.mark.parametrize("mi", [2.0, 10.0])
def test_sample_gaussian_correlation(mi):
    n, d = 20000, 20
    rho = data.mi_to_rho(mi, d=d).item()
    x, y = data.sample_gaussian(n, mi=mi, d=d, generator=11, dtype=F64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    corr = (xc * yc).sum(0) / torch.sqrt((xc**2).sum(0) * (yc**2).sum(0))  # [d]
    # SE of one sample correlation ~ (1 - rho^2) / sqrt(n); the mean over d dims has SE / sqrt(d)
    se = (1 - rho**2) / math.sqrt(n)
    assert abs(corr.mean().item() - rho) < 4 * se / math.sqrt(d)
    assert ((corr - rho).abs() < 5 * se).all()
    # dims are independent, marginals standard normal
    cross = (xc[:, 0] * yc[:, 1]).mean().item()
    assert abs(cross) < 5 / math.sqrt(n)
    assert abs(y.var(0).mean().item() - 1.0) < 5 * math.sqrt(2 / (n * d))
    assert abs(x.var(0).mean().item() - 1.0) < 5 * math.sqrt(2 / (n * d))


def test_sample_gaussian_leading_dims():
    rho = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    x, y = data.sample_gaussian(5000, rho=rho, d=4, generator=12, dtype=F64)
    assert x.shape == y.shape == (3, 5000, 4)
    corr = (x * y).mean(-2).mean(-1)  # E[xy] = rho (zero means, unit variances)
    se = torch.sqrt((1 + rho**2) / (5000 * 4))
    assert ((corr - rho).abs() < 5 * se).all()


def test_sample_encoder_reparameterised_and_seeded():
    rho = torch.tensor([0.2, 0.7, 0.95], dtype=F64, requires_grad=True)
    x, y = data.sample_encoder(8, rho, generator=13)
    x2, y2 = data.sample_encoder(8, rho, generator=13)
    assert torch.equal(x, x2) and torch.equal(y, y2) and y.shape == (8, 3)
    (g,) = torch.autograd.grad(y.sum(), rho)
    # y = rho x + sqrt(1 - rho^2) eps  =>  dy/drho = x - rho / sqrt(1 - rho^2) eps, eps = (y - rho x)/sqrt(1-rho^2)
    r = rho.detach()
    eps = (y.detach() - r * x) / torch.sqrt(1 - r**2)
    want = (x - r / torch.sqrt(1 - r**2) * eps).sum(0)
    assert torch.allclose(g, want, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Exact log-densities
# --------------------------------------------------------------------------------------------------
def _normal_logpdf(v: float, mean: float, var: float) -> float:
    return -0.5 * math.log(2 * math.pi * var) - (v - mean) ** 2 / (2 * var)


@pytest.mark.parametrize("lead", [(), (2,)])
def test_log_p_y_given_x_matches_loop(lead):
    d, k = 3, 4
    g = _gen(14)
    x = torch.randn(lead + (k, d), generator=g, dtype=F64)
    y = torch.randn(lead + (k, d), generator=g, dtype=F64) + torch.arange(k, dtype=F64).view(k, 1)  # asymmetric
    rho = torch.tensor([0.3, 0.8], dtype=F64)[: (lead[0] if lead else 1)]
    rho_arg = rho if lead else rho[0]
    lp = data.gaussian_log_p_y_given_x(x, y, rho_arg)
    assert lp.shape == lead + (k, k)
    for b in range(lead[0] if lead else 1):
        xb, yb, r = (x[b], y[b], rho[b].item()) if lead else (x, y, rho[0].item())
        for i in range(k):
            for j in range(k):
                want = sum(_normal_logpdf(yb[j, t].item(), r * xb[i, t].item(), 1 - r * r) for t in range(d))
                got = lp[b, i, j] if lead else lp[i, j]
                assert abs(got.item() - want) < 1e-10, (i, j)


def test_log_p_y_given_x_per_dim_and_marginal():
    d, k = 4, 5
    g = _gen(15)
    x = torch.randn(k, d, generator=g, dtype=F64)
    y = torch.randn(k, d, generator=g, dtype=F64)
    rho = torch.tensor([0.0, 0.3, 0.6, 0.9], dtype=F64)
    lp = data.gaussian_log_p_y_given_x(x, y, rho, per_dim=True)
    for i in range(k):
        for j in range(k):
            want = sum(_normal_logpdf(y[j, t].item(), rho[t].item() * x[i, t].item(), 1 - rho[t].item() ** 2)
                       for t in range(d))
            assert abs(lp[i, j].item() - want) < 1e-10
    lpy = data.gaussian_log_p_y(y)
    for j in range(k):
        assert abs(lpy[j].item() - sum(_normal_logpdf(y[j, t].item(), 0.0, 1.0) for t in range(d))) < 1e-12
    with pytest.raises(ValueError):
        data.gaussian_log_p_y_given_x(x, y, rho[:3], per_dim=True)


def test_log_p_y_given_x_is_joint_minus_marginal():
    """Independent check through the joint Gaussian: log p(x, y) - log p(x) on the diagonal pairs."""
    d, k, rho = 3, 6, 0.7
    x, y = data.sample_gaussian(k, rho=rho, d=d, generator=16, dtype=F64)
    cov = torch.eye(2 * d, dtype=F64)
    cov[:d, d:] = cov[d:, :d] = rho * torch.eye(d, dtype=F64)
    joint = torch.distributions.MultivariateNormal(torch.zeros(2 * d, dtype=F64), cov)
    px = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=F64), torch.eye(d, dtype=F64))
    lp = data.gaussian_log_p_y_given_x(x, y, rho)
    xi = x.unsqueeze(1).expand(k, k, d)
    yj = y.unsqueeze(0).expand(k, k, d)
    want = joint.log_prob(torch.cat([xi, yj], -1)) - px.log_prob(xi)
    assert torch.allclose(lp, want, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# Cubic transform
# --------------------------------------------------------------------------------------------------
def test_cubic_transform_full_rank_seeded_and_exact():
    a, b, c = data.CubicTransform(d=20, seed=0), data.CubicTransform(d=20, seed=0), data.CubicTransform(d=20, seed=1)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert a.weight.shape == (20, 20)
    assert torch.linalg.matrix_rank(a.weight).item() == 20
    assert torch.linalg.cond(a.weight).item() < a.max_condition
    # entries look like N(0, 1)
    w = a.weight.flatten()
    assert abs(w.mean().item()) < 4 / 20 and abs(w.std().item() - 1.0) < 4 * math.sqrt(1 / (2 * 400))
    # (W y)^3 elementwise, row by row; the critic sees its asinh
    y = torch.randn(3, 20, generator=_gen(17), dtype=F64)
    cube, out = a.cube(y), a(y)
    for n in range(3):
        for r in range(20):
            want = sum(a.weight[r, t].item() * y[n, t].item() for t in range(20)) ** 3
            assert abs(cube[n, r].item() - want) < 1e-9 * max(1.0, abs(want))
            assert abs(out[n, r].item() - math.asinh(want)) < 1e-9
    assert torch.equal(data.CubicTransform(d=20, seed=0, squash="none")(y), cube)
    # invertible: y is recovered from the output (so I(X; asinh((WY)^3)) = I(X; Y)), with and without squash
    assert torch.allclose(a.invert(out), y, atol=1e-8)
    back = torch.linalg.solve(a.weight, (torch.sign(cube) * cube.abs() ** (1 / 3)).T).T
    assert torch.allclose(back, y, atol=1e-8)
    raw = data.CubicTransform(d=20, seed=0, squash="none")
    assert torch.allclose(raw.invert(raw(y)), y, atol=1e-8)
    # float32 input gives float32 output, leading dims kept
    assert a(torch.zeros(2, 5, 20)).shape == (2, 5, 20) and a(torch.zeros(2, 20)).dtype == torch.float32
    with pytest.raises(ValueError, match="asinh"):
        data.CubicTransform(d=3, squash="log")


def test_cubic_squash_tames_the_heavy_tails():
    """Why the critic sees asinh((W y)^3): the raw cube of a unit-variance (W y)_k has kurtosis 46
    (E z^12 / (E z^6)^2 = 10395 / 225), so rare entries sit ~9 sd out and dominate exp-based bounds; the
    asinh keeps every entry within a few units (the pipeline's W_ij ~ N(0, 1/d))."""
    c = data.CubicTransform(d=20, seed=0, weight_std=20**-0.5)
    y = torch.randn(200_000, 20, generator=_gen(5), dtype=F64)

    def kurtosis(v):
        v = v - v.mean(0)
        return ((v**4).mean(0) / (v**2).mean(0) ** 2).median().item()

    assert kurtosis(c.cube(y)) > 25  # heavy: 46 at exactly unit variance
    assert kurtosis(c(y)) < 6  # 4.7 at exactly unit variance
    assert c(y).abs().max().item() < 8 < c.cube(y).abs().max().item()
    assert torch.allclose(c.invert(c(y[:100])), y[:100], atol=1e-8)
    # the caption's W_ij ~ N(0, 1) (the pipeline's): the raw cube reaches thousands, its asinh stays small
    caption = data.CubicTransform(d=20, seed=0, weight_std=1.0)
    assert caption.cube(y).abs().max().item() > 1e3 and caption(y).abs().max().item() < 12


def test_cubic_transform_does_not_touch_global_rng():
    state = torch.get_rng_state()
    data.CubicTransform(d=5, seed=3)
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------------------------------
# Encoder family (Sec. 3)
# --------------------------------------------------------------------------------------------------
def test_encoder_mi_closed_form():
    rho = torch.tensor([[0.1, 0.5, 0.9], [0.0, 0.0, 0.0]], dtype=F64)
    want = [-0.5 * sum(math.log(1 - r * r) for r in row) for row in rho.tolist()]
    assert torch.allclose(data.encoder_mi(rho), torch.tensor(want, dtype=F64), rtol=0, atol=1e-14)
    # equal rho in every dim is the Appendix B Gaussian
    r = data.mi_to_rho(6.0, d=20)
    assert abs(data.encoder_mi(r.expand(20)).item() - 6.0) < 1e-12


def test_encoder_mi_grad_matches_finite_differences_and_autograd():
    rho = torch.tensor([-0.8, -0.3, 0.0, 0.2, 0.55, 0.9, 0.99], dtype=F64)
    grad = data.encoder_mi_grad(rho)
    h = 1e-6
    for t in range(rho.numel()):
        e = torch.zeros_like(rho)
        e[t] = h
        fd = (data.encoder_mi(rho + e) - data.encoder_mi(rho - e)).item() / (2 * h)
        assert abs(grad[t].item() - fd) < 1e-6 * max(1.0, abs(fd)), (t, grad[t].item(), fd)
    r = rho.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(data.encoder_mi(r), r)
    assert torch.allclose(grad, g, rtol=1e-12, atol=1e-12)


def test_optimal_critic_per_dim_sandwich_on_encoder_family():
    """The encoder family's own log p(y|x) gives TNCE <= I <= LOO upper on average (Sec. 2.5, Fig. 4)."""
    from vbmi import bounds

    rho = torch.linspace(0.1, 0.8, 10, dtype=F64)
    mi = data.encoder_mi(rho).item()
    x, y = data.sample_encoder(32, rho.expand(500, 10), generator=18)  # [500, 32, 10]
    lp = data.gaussian_log_p_y_given_x(x, y, rho.expand(500, 10), per_dim=True)
    lo, hi = bounds.tnce(lp), bounds.loo_upper(lp)
    se = lambda v: v.std().item() / math.sqrt(v.numel())  # noqa: E731
    assert lo.mean().item() + 4 * se(lo) < mi < hi.mean().item() - 4 * se(hi)
