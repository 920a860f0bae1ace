"""Fig. 4 gradients: the analytic MI gradient, per-replicate gradients against torch.func.vmap(grad),
the closed-form score-map vjp against autograd, and unbiasedness of the NWJ gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vbmi.data import encoder_mi, encoder_mi_grad, sample_encoder
from vbmi.experiments import gradients as gr
from vbmi.experiments.gradients import _draw

ALPHAS = [0.0, 0.1, 0.5, 1.0]


@pytest.mark.parametrize("profile", gr.PROFILES)
def test_encoder_rho_has_the_requested_mi(profile: str) -> None:
    for mi in (0.5, 4.0, 10.0):
        rho = gr.encoder_rho(mi, 20, profile=profile, seed=1)
        assert float(encoder_mi(rho)) == pytest.approx(mi, rel=1e-12)
    if profile == "dirichlet":
        assert float(gr.encoder_rho(4.0, 20, profile=profile, seed=1).std()) > 0.01


def test_analytic_gradient_matches_finite_differences() -> None:
    rho = gr.encoder_rho(6.0, 20, profile="dirichlet", seed=2)
    h = 1e-6
    fd = torch.stack([(encoder_mi(rho + h * e) - encoder_mi(rho - h * e)) / (2 * h) for e in torch.eye(20, dtype=rho.dtype)])
    torch.testing.assert_close(encoder_mi_grad(rho), fd, rtol=1e-7, atol=1e-8)


def test_draw_matches_sample_encoder() -> None:
    rho = gr.encoder_rho(3.0, 20)
    x, eps = _draw(4, 8, 20, torch.Generator().manual_seed(5), torch.float64, "cpu")
    x2, y2 = sample_encoder(8, rho.expand(4, 20), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(x, x2)
    torch.testing.assert_close(rho * x + torch.sqrt(1 - rho**2) * eps, y2)


def test_score_vjp_matches_autograd() -> None:
    rho = gr.encoder_rho(5.0, 20, profile="dirichlet", seed=0)
    x, eps = _draw(3, 10, 20, torch.Generator().manual_seed(1), torch.float64, "cpu")
    g = torch.Generator().manual_seed(2)
    cot_p = torch.randn(2, 3, 10, 10, generator=g, dtype=torch.float64)
    cot_y = torch.randn(2, 3, 10, generator=g, dtype=torch.float64)
    mine = gr.encoder_scores_vjp(rho, x, eps, cot_p, cot_y)
    for b in range(2):
        rho_rep = rho.expand(3, 20).clone().requires_grad_()
        lp, ly = gr.encoder_scores(rho_rep, x, eps)
        ((lp * cot_p[b]).sum() + (ly * cot_y[b]).sum()).backward()
        torch.testing.assert_close(mine[b], rho_rep.grad, rtol=1e-10, atol=1e-10)


def test_per_replicate_gradients_equal_vmap_grad_of_single_batches() -> None:
    rho = gr.encoder_rho(4.0, 20, profile="dirichlet", seed=3)
    x, eps = _draw(3, 12, 20, torch.Generator().manual_seed(0), torch.float64, "cpu")
    values, grads = gr.per_replicate_gradients(rho, x, eps, ALPHAS)
    objectives = list(gr.bound_objectives(ALPHAS).values())
    assert values.shape == (3, len(objectives)) and grads.shape == (3, len(objectives), 20)

    def single(r, xx, ee, objective):
        lp, ly = gr.encoder_scores(r.unsqueeze(0), xx.unsqueeze(0), ee.unsqueeze(0))
        return objective(lp, ly)[0]

    for b, objective in enumerate(objectives):
        ref = torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0, None))(rho, x, eps, objective)
        torch.testing.assert_close(grads[:, b], ref, rtol=1e-9, atol=1e-10)
        for r in range(3):  # and a plain loop over single batches for the values
            assert values[r, b].item() == pytest.approx(single(rho, x[r], eps[r], objective).item(), abs=1e-11)


def test_nwj_gradient_is_unbiased_and_nce_is_not() -> None:
    """NWJ with the optimal critic is unbiased at every rho, so its gradient's mean is dI/drho."""
    ds = gr.simulate_gradients([2.0], [16], [0.0, 1.0], replicates=3000, max_replicates=3000, seed=0)
    nwj = ds.sel(bound="nwj", true_mi=2.0, batch_size=16)
    # every coordinate of the mean gradient within 4.5 standard errors (20 coordinates, max of |z|)
    assert float(nwj.max_abs_bias_z) < 4.5
    assert float(ds.interpolated_max_abs_bias_z.sel(alpha=0.0, true_mi=2.0, batch_size=16)) < 4.5
    # InfoNCE at 2 nats, K = 16 is biased (it is <= log 16 = 2.77 and loose): its gradient is too
    assert float(ds.max_abs_bias_z.sel(bound="nce", true_mi=2.0, batch_size=16)) > 6
    # JS trains the f-GAN objective, not I: biased for dI/drho as well
    assert float(ds.max_abs_bias_z.sel(bound="js", true_mi=2.0, batch_size=16)) > 6


def test_simulate_gradients_layout_and_best_alpha() -> None:
    ds = gr.simulate_gradients([1.0, 6.0], [8, 16], ALPHAS, replicates=8, max_replicates=16, seed=1, profile="dirichlet")
    assert set(ds.dims) == {"bound", "alpha", "true_mi", "batch_size"}
    assert list(ds.replicates.values) == [16, 8]
    np.testing.assert_allclose(ds.interpolated_mse.sel(alpha=0.0), ds.mse.sel(bound="nwj"), rtol=1e-9)
    r = ds.replicates
    np.testing.assert_allclose(ds.mse, ds.bias_squared + ds.variance * (r - 1) / r, rtol=1e-8)
    best = gr.best_alpha(ds)
    assert best.dims == ("true_mi", "batch_size")
    assert set(np.unique(best.values)) <= set(ALPHAS)
    i = ds.interpolated_mse.argmin("alpha")
    np.testing.assert_array_equal(best.values, ds.alpha.values[i.values])
    assert ds.true_gradient_sq.dims == ("true_mi",)
