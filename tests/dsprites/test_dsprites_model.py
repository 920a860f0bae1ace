"""Encoder shapes, Gaussian densities and the TC bound / objective terms (vbmi.dsprites.model, .objective)."""

from __future__ import annotations

import math

import pytest
import torch

from vbmi import bounds
from vbmi.dsprites import model as M
from vbmi.dsprites import objective as O
from vbmi.utils import make_generator


def test_encoder_and_q_shapes():
    g = make_generator(0)
    enc = M.ConvEncoder().reset_parameters(g)
    x = torch.rand(5, 1, 64, 64, generator=g)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (5, 10)
    assert [m.out_channels for m in enc.features if isinstance(m, torch.nn.Conv2d)] == [32, 32, 64, 64]
    assert enc.features[-2].out_features == 256
    lq = M.LogQ(generator=g)
    assert lq(mu).shape == (5,)
    assert sum(isinstance(m, torch.nn.Linear) for m in lq.modules()) == 3  # two hidden layers + output
    # seeded init is reproducible
    enc2 = M.ConvEncoder().reset_parameters(make_generator(0))
    torch.testing.assert_close(enc2(x)[0], M.ConvEncoder().reset_parameters(make_generator(0))(x)[0])


def test_gaussian_log_prob_dims_and_kl_against_torch_distributions():
    g = make_generator(1)
    mu, logvar, y = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    lp = M.gaussian_log_prob_dims(y, mu, logvar)
    assert lp.shape == (3, 4, 4)
    for d in range(3):
        for i in range(4):
            for j in range(4):
                ref = torch.distributions.Normal(mu[i, d], torch.exp(0.5 * logvar[i, d])).log_prob(y[j, d])
                torch.testing.assert_close(lp[d, i, j], ref)  # rows x_i, columns y_j
    mu2, logvar2 = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(
        4, 3, generator=g, dtype=torch.float64
    )
    p = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    q = torch.distributions.Normal(mu2, torch.exp(0.5 * logvar2))
    torch.testing.assert_close(M.gaussian_kl(mu, logvar, mu2, logvar2), torch.distributions.kl_divergence(p, q).sum(-1))


def _tc_estimates(mix: int, n_batches: int = 200, k: int = 64, noise: float = 0.3, seed: int = 0) -> torch.Tensor:
    """TC bound of a 2-d linear Gaussian encoder y = A x + noise * n, x ~ N(0, I), with log q = log p(y) exact.

    ``mix = 0``: A = I, a factorised code, TC(Y) = 0. ``mix = 1``: both latents read x_1, TC(Y) > 0.
    (``mu = x @ a``: column d of ``a`` maps x to latent d.)
    """
    g = make_generator(seed)
    a = (
        torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        if mix == 0
        else torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    )
    cov_y = a.T @ a + noise**2 * torch.eye(2, dtype=torch.float64)
    marg = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov_y)
    out = []
    for _ in range(n_batches):
        x = torch.randn(k, 2, generator=g, dtype=torch.float64)
        mu = x @ a
        logvar = torch.full_like(mu, 2 * math.log(noise))
        y = mu + noise * torch.randn(k, 2, generator=g, dtype=torch.float64)
        out.append(O.structured_terms(mu, logvar, y, marg.log_prob(y))["tc"])
    return torch.stack(out)


def test_tc_bound_nonnegative_in_expectation_on_a_factorised_encoder():
    tc = _tc_estimates(mix=0)
    se = tc.std() / math.sqrt(len(tc))
    assert tc.mean() > -3 * se  # E[bound] >= TC = 0
    assert tc.mean() < 1.0  # and it is not vacuous


def test_tc_bound_positive_on_a_correlated_encoder():
    tc = _tc_estimates(mix=1)
    true_tc = 2 * 0.5 * math.log(1 + 1 / 0.09) - 0.5 * math.log(1 + 2 / 0.09)  # I(X;Y1)+I(X;Y2)-I(X;Y)
    se = tc.std() / math.sqrt(len(tc))
    assert tc.mean() - 3 * se > 0.5 * true_tc > 0


def test_terms_ramp_and_dual_ascent():
    g = make_generator(0)
    enc, lq = M.ConvEncoder().reset_parameters(g), M.LogQ(generator=g)
    x = (torch.rand(8, 1, 64, 64, generator=g) > 0.8).float()
    t = O.terms(enc, lq, x, g)
    assert set(t) == {"ijs", "loo_sum", "tc", "tnce", "smooth", "mu", "logvar"}
    assert all(torch.isfinite(v).all() for v in t.values()) and t["smooth"] >= 0
    assert t["mu"].shape == t["logvar"].shape == (8, 10) and not t["mu"].requires_grad
    assert t["tnce"] <= math.log(8) + 1e-5
    cfg = O.ObjectiveConfig(tc_ramp_start=10, tc_ramp_steps=4, dual_lr=0.5, lambda_max=3.0, dual="additive")
    assert [O.tc_weight(s, cfg) for s in (0, 9, 10, 11, 13, 100)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    lam = torch.tensor([1.0, 1.0], dtype=torch.float64)
    viol = {"tc": torch.tensor(cfg.tc_delta + 2.0), "smooth": torch.tensor(cfg.smooth_gamma - 4.0)}
    torch.testing.assert_close(O.dual_update(lam, viol, 0.0, cfg), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(O.dual_update(lam, viol, 0.5, cfg), torch.tensor([2.0, 0.0], dtype=torch.float64))
    big = {"tc": torch.tensor(100.0), "smooth": torch.tensor(100.0)}
    torch.testing.assert_close(O.dual_update(lam, big, 1.0, cfg), torch.tensor([3.0, 3.0], dtype=torch.float64))
    # multiplicative: one batch moves a multiplier by at most a factor e^dual_lr, however large the violation
    mcfg = O.ObjectiveConfig(tc_ramp_start=10, tc_ramp_steps=4, dual_lr=0.5, lambda_max=3.0, lambda_min=0.1)
    huge = {"tc": torch.tensor(3000.0), "smooth": torch.tensor(-3000.0)}
    e = math.exp(0.5)
    torch.testing.assert_close(O.dual_update(lam, huge, 0.0, mcfg), torch.tensor([1.0, 1 / e], dtype=torch.float64))
    torch.testing.assert_close(O.dual_update(lam, huge, 0.5, mcfg), torch.tensor([e, 1 / e], dtype=torch.float64))
    small = torch.tensor([0.1, 2.9], dtype=torch.float64)
    torch.testing.assert_close(
        O.dual_update(small, {"tc": torch.tensor(-9.0), "smooth": torch.tensor(9.0)}, 1.0, mcfg),
        torch.tensor([0.1, 3.0], dtype=torch.float64),
    )  # clipped to [lambda_min, lambda_max]
    fixed = O.ObjectiveConfig(tc_fixed=True, dual_lr=0.5)
    assert O.dual_update(lam, huge, 1.0, fixed)[0] == 1.0  # a fixed TC penalty never moves
    with pytest.raises(ValueError, match="unknown dual update 'nope'"):
        O.dual_update(lam, huge, 1.0, O.ObjectiveConfig(dual="nope"))
    loss = O.lagrangian(t, torch.tensor([2.0, 3.0]), 0.5, cfg)
    expect = -t["ijs"] + 1.0 * (t["tc"] - cfg.tc_delta) + 3.0 * (t["smooth"] - cfg.smooth_gamma)
    torch.testing.assert_close(loss, expect)
    with pytest.raises(ValueError, match="64, 64"):
        O.terms(enc, lq, x[:, 0], g)


def test_tc_lower_max_is_the_larger_lower_bound():
    g = make_generator(1)
    k, d = 16, 4
    mu, logvar = torch.randn(k, d, generator=g), torch.full((k, d), -2.0)
    y = mu + torch.exp(0.5 * logvar) * torch.randn(k, d, generator=g)
    log_q = torch.full((k,), -30.0)  # a q far too small: the I_JS value's E_q[e^V] term explodes
    a = O.structured_terms(mu, logvar, y, log_q, tc_lower="ijs")
    b = O.structured_terms(mu, logvar, y, log_q, tc_lower="max")
    assert a["ijs"] < -1e3 and a["tc"] > 1e3  # the paper's TC bound reads thousands of nats
    torch.testing.assert_close(b["tc"], b["loo_sum"] - torch.maximum(b["ijs"], b["tnce"]))
    assert b["tc"] <= a["tc"] and b["tc"] < 10
    with pytest.raises(ValueError, match="unknown tc_lower"):
        O.structured_terms(mu, logvar, y, log_q, tc_lower="min")


def _factorised_batch(g, k: int, d: int):
    """Independent latents: y_d = 2 z_d + noise, so TC(Y) = 0 and I(X;Y) = d/2 log(1 + 4 e) ~ 12.4 nats (d = 10)."""
    mu = 2 * torch.randn(k, d, generator=g, dtype=torch.float64)
    logvar = torch.full((k, d), -1.0, dtype=torch.float64)
    return mu, logvar, mu + torch.exp(0.5 * logvar) * torch.randn(k, d, generator=g, dtype=torch.float64)


def test_pooled_ijs_without_memory_is_the_batch_js_and_memory_adds_negatives():
    g = make_generator(2)
    scores = torch.randn(16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    a = bounds.js(scores)
    b = O.pooled_ijs(scores, torch.zeros(0, 16, dtype=torch.float64))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(torch.autograd.grad(a, scores)[0], torch.autograd.grad(b, scores)[0])
    # a remembered negative with a huge score: the value's E_q[e^V] term sees it (no overflow), the
    # gradient's softplus term too
    mem = torch.full((4, 16), -50.0, dtype=torch.float64)
    mem[0, 0] = 200.0
    c = O.pooled_ijs(scores, mem)
    assert torch.isfinite(c) and c < -1e30
    (gs,) = torch.autograd.grad(c, scores)
    assert torch.isfinite(gs).all()


def test_pooled_tc_terms_narrow_the_gap_on_a_factorised_encoder():
    g = make_generator(3)
    k, d, m = 64, 10, 1024
    mu, logvar, y = _factorised_batch(g, k, d)
    mem_mu, mem_logvar, _ = _factorised_batch(g, m, d)
    log_p_dims = M.gaussian_log_prob_dims(y, mu, logvar)
    # no memory: the batch's own bounds
    mem0 = M.gaussian_log_prob_dims(y, mem_mu[:0], mem_logvar[:0])
    loo0, tnce0 = O.pooled_tc_terms(log_p_dims, mem0)
    torch.testing.assert_close(loo0, bounds.loo_upper(log_p_dims).sum())
    torch.testing.assert_close(tnce0, bounds.tnce(log_p_dims.sum(0)))
    loo, tnce = O.pooled_tc_terms(log_p_dims, M.gaussian_log_prob_dims(y, mem_mu, mem_logvar))
    assert tnce <= math.log(k + m) + 1e-9 and tnce > math.log(k) + 1.0  # past log K, as the pool allows
    batch = O.structured_terms(mu, logvar, y, torch.zeros(k, dtype=torch.float64), tc_lower="max")
    pooled = O.structured_terms(mu, logvar, y, torch.zeros(k, dtype=torch.float64), tc_lower="max",
                                tc_memory=(mem_mu, mem_logvar))
    torch.testing.assert_close(pooled["tc"], loo - torch.maximum(pooled["ijs"], tnce))
    assert 0 < pooled["tc"] < batch["tc"] - 2.0  # the true TC is 0: the pooled bound is nats closer
    # two memories of different lengths (the shorter the newest rows of the longer) share one density pass
    tail = (mem_mu[-256:], mem_logvar[-256:])
    both = O.structured_terms(mu, logvar, y, torch.zeros(k, dtype=torch.float64), tc_lower="max",
                              ijs_memory=(mem_mu, mem_logvar), tc_memory=tail)
    loo_t, _ = O.pooled_tc_terms(log_p_dims, M.gaussian_log_prob_dims(y, *tail))
    torch.testing.assert_close(both["loo_sum"], loo_t)
    mem_scores = M.gaussian_log_prob_dims(y, mem_mu, mem_logvar).sum(0)
    torch.testing.assert_close(both["ijs"], O.pooled_ijs(log_p_dims.sum(0), mem_scores))


def test_memory_tc_delta_takes_over_once_the_memories_are_on():
    cfg = O.ObjectiveConfig(tc_delta=3.0, memory_tc_delta=1.5, tc_memory=16, memory_start=10)
    assert [O.tc_delta(s, cfg) for s in (0, 9, 10, 500)] == [3.0, 3.0, 1.5, 1.5]
    no_memory = O.ObjectiveConfig(tc_delta=3.0, memory_tc_delta=1.5, memory_start=10)  # no memory: never on
    assert O.tc_delta(500, no_memory) == 3.0 and not O.memory_on(500, no_memory)
    assert O.tc_delta(500, O.ObjectiveConfig(tc_delta=3.0, tc_memory=16)) == 3.0  # None keeps tc_delta
    t = {"ijs": torch.tensor(2.0), "tc": torch.tensor(2.0), "smooth": torch.tensor(0.0)}
    lam = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # TC 2.0 is within delta 3 (lambda_tc falls) and above delta 1.5 (it rises)
    assert O.dual_update(lam, t, 1.0, cfg, O.tc_delta(0, cfg))[0] < 1.0 < O.dual_update(lam, t, 1.0, cfg, 1.5)[0]
    loss = O.lagrangian(t, torch.tensor([2.0, 0.0]), 1.0, cfg, 1.5)
    torch.testing.assert_close(loss, torch.tensor(-2.0 + 2.0 * 0.5))
