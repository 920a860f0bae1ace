"""Fig. 3 Monte Carlo: the fused bounds equal vbmi.bounds, the driver equals a per-batch loop, and the
optimal-critic NWJ estimate matches its closed-form mean and variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vbmi import bounds as B
from vbmi.data import gaussian_log_p_y, gaussian_log_p_y_given_x, mi_to_rho, sample_gaussian
from vbmi.experiments import montecarlo as mc

ALPHAS = [0.0, 0.01, 0.2, 0.5, 0.99, 1.0]


def _batch(mi: float, k: int, r: int, seed: int = 0, d: int = 20):
    rho = mi_to_rho(mi, d).double()
    x, y = sample_gaussian(k, rho=rho.expand(r), d=d, generator=seed, dtype=torch.float64)
    return gaussian_log_p_y_given_x(x, y, rho.expand(r)), gaussian_log_p_y(y)


@pytest.mark.parametrize(("mi", "k"), [(0.0, 4), (2.0, 16), (10.0, 64), (25.0, 32), (6.0, 96)])
def test_fused_equals_reference_bounds(mi: float, k: int) -> None:
    log_p, log_p_y = _batch(mi, k, 5)
    fused = mc.optimal_critic_bounds(log_p, log_p_y, ALPHAS)
    ref = mc.reference_bounds(log_p, log_p_y, ALPHAS)
    with torch.no_grad():  # the in-place path the Monte Carlo driver takes
        fused_no_grad = mc.optimal_critic_bounds(log_p, log_p_y, ALPHAS)
    assert set(fused) == set(ref) == {*mc.FIG3_BOUNDS, "interpolated"}
    for name in ref:
        torch.testing.assert_close(fused[name], ref[name], rtol=0, atol=1e-11)
        torch.testing.assert_close(fused_no_grad[name], ref[name], rtol=0, atol=1e-11)


def test_fused_handles_dominant_off_diagonal_entries() -> None:
    """Columns where one off-diagonal row dominates by ~50 nats (the S - 1 cancellation case)."""
    g = torch.Generator().manual_seed(0)
    log_p = torch.randn(3, 12, 12, generator=g, dtype=torch.float64)
    log_p[:, 3, :] += 50.0  # row 3 dominates every column but its own
    fused = mc.optimal_critic_bounds(log_p, torch.zeros(3, 12, dtype=torch.float64), ALPHAS)
    ref = mc.reference_bounds(log_p, torch.zeros(3, 12, dtype=torch.float64), ALPHAS)
    for name in ref:
        torch.testing.assert_close(fused[name], ref[name], rtol=1e-12, atol=1e-10)
    log_p_y = torch.randn(3, 12, generator=g, dtype=torch.float64)
    ref = mc.reference_bounds(log_p, log_p_y, ALPHAS)
    log_p[:, 5, :] = log_p[:, 3, :]  # and an exact tie for the maximum in every column
    ref_tie = mc.reference_bounds(log_p, log_p_y, ALPHAS)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            fused = mc.optimal_critic_bounds(log_p, log_p_y, ALPHAS)
        for name in ref_tie:
            torch.testing.assert_close(fused[name], ref_tie[name], rtol=1e-12, atol=1e-10)
    assert not torch.allclose(ref["interpolated"], ref_tie["interpolated"])


def test_fused_chunking_and_leading_dims() -> None:
    log_p, log_p_y = _batch(4.0, 16, 12)
    whole = mc.optimal_critic_bounds(log_p.view(3, 4, 16, 16), log_p_y.view(3, 4, 16), ALPHAS, chunk_elements=16 * 16 * 5)
    flat = mc.optimal_critic_bounds(log_p, log_p_y, ALPHAS, chunk_elements=1 << 30)
    assert whole["nwj"].shape == (3, 4) and whole["interpolated"].shape == (3, 4, len(ALPHAS))
    for name in flat:
        torch.testing.assert_close(whole[name].reshape(flat[name].shape), flat[name], rtol=0, atol=1e-12)


def test_vectorised_equals_loop_over_single_batches() -> None:
    log_p, log_p_y = _batch(6.0, 32, 7)
    batched = mc.optimal_critic_bounds(log_p, log_p_y, ALPHAS)
    for r in range(7):
        lp, ly = log_p[r], log_p_y[r]
        ratio = lp - ly
        assert batched["nwj"][r].item() == pytest.approx(B.nwj(ratio + 1.0).item(), abs=1e-11)
        assert batched["nce"][r].item() == pytest.approx(B.nce(lp).item(), abs=1e-11)
        assert batched["loo_upper"][r].item() == pytest.approx(B.loo_upper(lp).item(), abs=1e-11)
        for a_idx, a in enumerate(ALPHAS):
            single = B.interpolated(lp, log_baseline=ly, alpha=a).item()
            assert batched["interpolated"][r, a_idx].item() == pytest.approx(single, abs=1e-11)


def test_fused_interpolated_gradient_matches_autograd_through_bounds() -> None:
    log_p, log_p_y = _batch(8.0, 24, 3)
    values, g_p, g_y = mc.interpolated_value_and_grad(log_p, log_p_y, ALPHAS)
    for a_idx, a in enumerate(ALPHAS):
        lp = log_p.clone().requires_grad_()
        ly = log_p_y.clone().requires_grad_()
        B.interpolated(lp, log_baseline=ly, alpha=a).sum().backward()
        torch.testing.assert_close(values[:, a_idx], B.interpolated(log_p, log_baseline=log_p_y, alpha=a), rtol=0, atol=1e-11)
        torch.testing.assert_close(g_p[a_idx], lp.grad, rtol=1e-9, atol=1e-13)
        torch.testing.assert_close(g_y[a_idx], ly.grad, rtol=1e-9, atol=1e-13)


def test_js_value_equals_nwj_and_nce_at_most_log_k() -> None:
    log_p, log_p_y = _batch(10.0, 16, 50)
    out = mc.optimal_critic_bounds(log_p, log_p_y, [0.0, 1.0])
    torch.testing.assert_close(out["js"], out["nwj"])
    torch.testing.assert_close(out["interpolated"][:, 0], out["nwj"])  # alpha = 0 is NWJ with q = p(y)
    assert bool((out["nce"] <= math.log(16) + 1e-12).all())
    assert bool((out["interpolated"][:, 1] <= 1 + math.log(15) + 1e-12).all())  # 1 + log((K-1)/alpha) LOO form
    # at 10 nats and K = 16 NCE saturates near log K
    assert out["nce"].mean().item() > math.log(16) - 0.5


def test_closed_form_variance_limits() -> None:
    # I = 0: r = 1 identically, the estimator is exact
    assert mc.nwj_variance_closed_form(0.0, 64) == pytest.approx(0.0, abs=1e-15)
    # small-MI expansion: d rho^2 / K dominates; e^{2I} - 1 ~ 2I, (1 - rho^4)^-d - 1 ~ d rho^4
    v = mc.nwj_variance_closed_form(1e-3, 10)
    rho2 = -math.expm1(-2e-3 / 20)
    assert v == pytest.approx(20 * rho2 / 10 + (math.expm1(2e-3) + 20 * rho2**2) / 90, rel=1e-6)
    assert mc.nwj_variance_fourth_moment_finite_below(20) == pytest.approx(1.178, abs=1e-3)


def test_monte_carlo_nwj_matches_closed_form_at_2_nats_k64() -> None:
    ds = mc.simulate([2.0], [64], [], replicates=4000, max_replicates=4000, seed=0)
    cell = ds.sel(bound="nwj", true_mi=2.0, batch_size=64)
    assert int(ds.replicates.sel(batch_size=64)) == 4000
    # unbiased: mean within 4 standard errors of the true MI
    assert abs(float(cell["mean"]) - 2.0) < 4 * float(cell.mean_se)
    # variance: within 4 of the sample variance's own standard errors of the closed form (0.0702)
    closed = float(ds.nwj_variance_closed_form.sel(true_mi=2.0, batch_size=64))
    assert closed == pytest.approx(0.07018, rel=1e-3)
    assert abs(float(cell.variance) - closed) < 4 * float(cell.variance_se)
    # NCE is biased low at 2 nats with K = 64 and has a smaller variance than NWJ
    nce = ds.sel(bound="nce", true_mi=2.0, batch_size=64)
    assert float(nce.bias) < 0 and float(nce.variance) < float(cell.variance)


def test_simulate_layout_and_statistics_are_consistent() -> None:
    ds = mc.simulate([0.5, 8.0], [8, 16], [0.0, 0.5, 1.0], replicates=16, max_replicates=64, seed=3, max_chunk_elements=8 * 8 * 5)
    assert set(ds.dims) == {"bound", "alpha", "true_mi", "batch_size"}
    assert list(ds.bound.values) == list(mc.FIG3_BOUNDS)
    assert list(ds.replicates.values) == [32, 16]
    np.testing.assert_allclose(ds.bias, ds["mean"] - ds.true_mi, atol=1e-12)
    # MSE = bias^2 + (R-1)/R variance
    r = ds.replicates
    np.testing.assert_allclose(ds.mse, ds.bias**2 + ds.variance * (r - 1) / r, rtol=1e-9)
    np.testing.assert_allclose(ds.interpolated_mean.sel(alpha=0.0), ds["mean"].sel(bound="nwj"), atol=1e-12)
    # NCE never exceeds log K; the LOO upper bound is above the truth on average at small MI
    assert bool((ds["mean"].sel(bound="nce") <= ds.log_batch_size + 1e-12).all())
    for name, var in ds.data_vars.items():
        assert var.attrs["units"] and var.attrs["long_name"] and var.attrs["description"], name
    # deterministic given the seed (and chunking)
    again = mc.simulate([0.5, 8.0], [8, 16], [0.0, 0.5, 1.0], replicates=16, max_replicates=64, seed=3, max_chunk_elements=8 * 8 * 5)
    np.testing.assert_array_equal(again.mse.values, ds.mse.values)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        mc.optimal_critic_bounds(*_batch(1.0, 8, 2), [1.5])
    with pytest.raises(ValueError, match="batch sizes"):
        mc.simulate([1.0], [2], [], replicates=8, max_replicates=8)
    with pytest.raises(ValueError, match="K, K"):
        mc.optimal_critic_bounds(torch.zeros(3, 4), torch.zeros(4))


@pytest.mark.parametrize("mi", [0.0, 3.0, 10.0])
def test_gaussian_scores_equal_the_library(mi: float) -> None:
    rho = mi_to_rho(torch.tensor([mi, mi / 2, 1.0]), 20).double()
    x, y = sample_gaussian(24, rho=rho, generator=4, dtype=torch.float64)
    torch.testing.assert_close(mc.gaussian_scores(x, y, rho), gaussian_log_p_y_given_x(x, y, rho), rtol=1e-12, atol=1e-10)
