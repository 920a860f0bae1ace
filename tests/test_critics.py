"""vbmi.critics: every critic against direct pairwise evaluation (pins scores[i, j] = f(x_i, y_j)),
chunked == unchunked (values and gradients), ensembles == individual modules, baselines' shapes, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from vbmi import critics as C
from vbmi.critics import (
    JointCritic,
    ConstantBaseline,
    GaussianBaseline,
    MLPBaseline,
    SeparableCritic,
    make_baseline,
    make_critic,
    stack_modules,
    unstack_module,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _xy(k=5, dx=3, dy=2, lead=(), seed=0):
    g = _gen(seed)
    return torch.randn(lead + (k, dx), generator=g, dtype=F64), torch.randn(lead + (k, dy), generator=g, dtype=F64)


# --------------------------------------------------------------------------------------------------
# Asymmetric toy functions: pin the orientation with hand-set weights
# --------------------------------------------------------------------------------------------------
def test_separable_orientation_with_toy_function():
    """g(x) = x, h(y) = 1: scores[i, j] = x_i, constant along each row (rows index x)."""
    c = SeparableCritic(1, 1, layers=0, embed_dim=1).double()
    with torch.no_grad():
        c.g[0].weight.fill_(1.0), c.g[0].bias.fill_(0.0)
        c.h[0].weight.fill_(0.0), c.h[0].bias.fill_(1.0)
    x = torch.arange(4, dtype=F64).view(4, 1)  # 0, 1, 2, 3
    y = 10.0 * torch.arange(4, dtype=F64).view(4, 1)
    s = c(x, y)
    assert torch.equal(s, x.expand(4, 4))  # s[i, j] = x_i
    # and the other way round: g(x) = 1, h(y) = y -> s[i, j] = y_j
    with torch.no_grad():
        c.g[0].weight.fill_(0.0), c.g[0].bias.fill_(1.0)
        c.h[0].weight.fill_(1.0), c.h[0].bias.fill_(0.0)
    assert torch.equal(c(x, y), y.view(1, 4).expand(4, 4))


@pytest.mark.parametrize("max_chunk", [None, 1])
def test_concat_orientation_with_toy_function(max_chunk):
    """One ReLU unit on x - 0.01 y + 100 (always positive), output weight 1: f(x, y) = x - 0.01 y + 100."""
    c = JointCritic(1, 1, hidden=1, layers=1, max_chunk_elements=max_chunk).double()
    with torch.no_grad():
        c.first.weight.copy_(torch.tensor([[1.0, -0.01]], dtype=F64))
        c.first.bias.fill_(100.0)
        c.rest[0].weight.fill_(1.0), c.rest[0].bias.fill_(0.0)
    x = torch.arange(4, dtype=F64).view(4, 1)
    y = 10.0 * torch.arange(4, dtype=F64).view(4, 1) + 7.0
    want = torch.tensor([[x[i, 0] - 0.01 * y[j, 0] + 100.0 for j in range(4)] for i in range(4)], dtype=F64)
    assert torch.allclose(c(x, y), want, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# Random weights: vectorised == direct pairwise
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (2,), (2, 3)])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_separable_matches_pairwise(lead, activation):
    c = SeparableCritic(3, 2, hidden=7, layers=2, embed_dim=4, activation=activation, generator=_gen(1)).double()
    x, y = _xy(lead=lead)
    s = c(x, y)
    assert s.shape == lead + (5, 5)
    for idx in torch.cartesian_prod(*[torch.arange(n) for n in lead]).view(-1, len(lead)).tolist() if lead else [[]]:
        idx = tuple(idx)
        for i in range(5):
            for j in range(5):
                direct = (c.g(x[idx + (i,)].view(1, 3)) * c.h(y[idx + (j,)].view(1, 2))).sum()
                assert torch.allclose(s[idx + (i, j)], direct, rtol=0, atol=1e-12)


def _concat_direct(c: JointCritic, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Reference: an independent nn.Sequential on the literal concatenation of every pair (x_i, y_j)."""
    k = x.shape[-2]
    xi = x.unsqueeze(-2).expand(x.shape[:-2] + (k, k, x.shape[-1]))  # [..., i, j, dx]
    yj = y.unsqueeze(-3).expand(y.shape[:-2] + (k, k, y.shape[-1]))  # [..., i, j, dy]
    return c.pairs(xi.reshape(-1, x.shape[-1]), yj.reshape(-1, y.shape[-1])).view(x.shape[:-2] + (k, k))


def _plain_mlp_from_concat(c: JointCritic) -> nn.Sequential:
    """The same function rebuilt as a plain nn.Sequential (Linear, act, ..., Linear) from c's weights."""
    mods = [nn.Linear(c.first.in_features, c.first.out_features), type(c.act)()]
    mods += [type(m)() if not isinstance(m, nn.Linear) else nn.Linear(m.in_features, m.out_features) for m in c.rest]
    seq = nn.Sequential(*mods).double()
    with torch.no_grad():
        seq[0].weight.copy_(c.first.weight), seq[0].bias.copy_(c.first.bias)
        for m_new, m_old in zip(seq[2:], c.rest):
            if isinstance(m_old, nn.Linear):
                m_new.weight.copy_(m_old.weight), m_new.bias.copy_(m_old.bias)
    return seq


@pytest.mark.parametrize("lead", [(), (2,)])
@pytest.mark.parametrize("max_chunk", [None, 1, 20, 2**24])
def test_concat_matches_pairwise(lead, max_chunk):
    c = JointCritic(3, 2, hidden=6, layers=2, generator=_gen(2), max_chunk_elements=max_chunk).double()
    x, y = _xy(lead=lead, seed=3)
    s = c(x, y)
    assert s.shape == lead + (5, 5)
    assert torch.allclose(s, _concat_direct(c, x, y), rtol=0, atol=1e-12)
    seq = _plain_mlp_from_concat(c)
    for i in range(5):
        for j in range(5):
            idx = (0,) * len(lead)
            pair = torch.cat([x[idx + (i,)], y[idx + (j,)]]).view(1, 5)
            assert torch.allclose(s[idx + (i, j)], seq(pair).squeeze(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ensemble", [None, 3])
def test_concat_chunked_gradients_equal_unchunked(ensemble):
    kw = dict(hidden=6, layers=2, ensemble=ensemble, generator=_gen(4))
    full = JointCritic(3, 2, max_chunk_elements=None, **kw).double()
    chunked = JointCritic(3, 2, max_chunk_elements=7, **kw).double()  # 1 row per chunk
    chunked.load_state_dict(full.state_dict())
    lead = () if ensemble is None else (3,)
    x, y = _xy(k=6, lead=lead, seed=5)
    w = torch.randn(lead + (6, 6), generator=_gen(6), dtype=F64)
    outs = []
    for c in (full, chunked):
        xi, yi = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        s = c(xi, yi)
        grads = torch.autograd.grad((s * w).sum(), [xi, yi] + list(c.parameters()))
        outs.append((s.detach(), grads))
    assert torch.allclose(outs[0][0], outs[1][0], rtol=0, atol=1e-12)
    for g0, g1 in zip(outs[0][1], outs[1][1]):
        assert torch.allclose(g0, g1, rtol=0, atol=1e-12)


def test_concat_chunking_is_used_and_checkpointed():
    """With a tiny max_chunk_elements the forward splits rows and (with grad) checkpoints each chunk."""
    c = JointCritic(3, 2, hidden=6, layers=2, generator=_gen(7), max_chunk_elements=1).double()
    calls = []
    orig = c._rows
    c._rows = lambda hx, hy: (calls.append(hx.shape[-2]), orig(hx, hy))[1]
    x, y = _xy(k=5, seed=8)
    out = c(x, y)
    assert calls == [1] * 5
    out.sum().backward()
    assert calls == [1] * 10  # each chunk recomputed once in backward: checkpointed
    calls.clear()
    with torch.no_grad():
        c(x, y)
    assert calls == [1] * 5


# --------------------------------------------------------------------------------------------------
# Ensembles
# --------------------------------------------------------------------------------------------------
def _singles(cls, n, **kw):
    return [cls(generator=_gen(100 + e), **kw).double() for e in range(n)]


ENSEMBLE_CASES = {
    "separable": (SeparableCritic, dict(x_dim=3, y_dim=2, hidden=5, layers=2, embed_dim=4), True),
    "concat": (JointCritic, dict(x_dim=3, y_dim=2, hidden=5, layers=2), True),
    "concat_tanh_1layer": (JointCritic, dict(x_dim=3, y_dim=2, hidden=5, layers=1, activation="tanh"), True),
    "mlp_baseline": (MLPBaseline, dict(y_dim=2, hidden=5, layers=2), False),
    "gaussian_baseline": (GaussianBaseline, dict(y_dim=2), False),
    "constant_baseline": (ConstantBaseline, dict(), False),
}


def _randomise(mods):
    """Give parameters that are initialised to constants (baselines) distinct random values."""
    with torch.no_grad():
        for e, m in enumerate(mods):
            g = _gen(200 + e)
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


def _apply(m, is_critic, x, y):
    return m(x, y) if is_critic else m(y)


@pytest.mark.parametrize("case", sorted(ENSEMBLE_CASES))
def test_stack_modules_member_equals_single(case):
    cls, kw, is_critic = ENSEMBLE_CASES[case]
    E = 3
    singles = _singles(cls, E, **kw) if cls is not ConstantBaseline else [cls().double() for _ in range(E)]
    _randomise(singles)
    ens = stack_modules(singles).double()
    assert ens.ensemble == E
    x, y = _xy(k=5, lead=(E,), seed=9)
    w = torch.randn((E, 5, 5) if is_critic else (E, 5), generator=_gen(10), dtype=F64)
    out = _apply(ens, is_critic, x, y)
    assert out.shape == w.shape
    ens_grads = dict(zip([n for n, _ in ens.named_parameters()],
                         torch.autograd.grad((out * w).sum(), list(ens.parameters()))))
    for e, m in enumerate(singles):
        single_out = _apply(m, is_critic, x[e], y[e])
        assert (out[e] - single_out).abs().max() < 1e-12, (f"member {e}", (out[e] - single_out).abs().max())
        names = [n for n, _ in m.named_parameters()]
        grads = dict(zip(names, torch.autograd.grad((single_out * w[e]).sum(), list(m.parameters()))))
        for n, g in grads.items():
            ge = ens_grads[n][e]
            ge = ge.T if g.ndim == 2 else ge.reshape(g.shape)  # Linear weight [out, in] vs batched [in, out]
            assert torch.allclose(ge, g, rtol=0, atol=1e-12), f"grad {n} member {e}"


@pytest.mark.parametrize("case", sorted(ENSEMBLE_CASES))
def test_unstack_inverts_stack(case):
    cls, kw, is_critic = ENSEMBLE_CASES[case]
    singles = _singles(cls, 3, **kw) if cls is not ConstantBaseline else [cls().double() for _ in range(3)]
    _randomise(singles)
    ens = stack_modules(singles)
    x, y = _xy(k=4, seed=11)
    for e, m in enumerate(singles):
        back = unstack_module(ens, e).double()
        assert type(back) is cls and back.config == m.config and getattr(back, "ensemble", None) is None
        for (n0, p0), (n1, p1) in zip(m.named_parameters(), back.named_parameters()):
            assert n0 == n1 and torch.equal(p0, p1), n0
        assert torch.equal(_apply(back, is_critic, x, y), _apply(m, is_critic, x, y))


@pytest.mark.parametrize("case", [
    "separable",
    "concat",
    "mlp_baseline", "gaussian_baseline", "constant_baseline"])
def test_ensemble_with_extra_leading_dims(case):
    """Inputs [E, B, K, d]: member e applied to every one of its B batches (B != E and B == E)."""
    cls, kw, is_critic = ENSEMBLE_CASES[case]
    E = 3
    singles = _singles(cls, E, **kw) if cls is not ConstantBaseline else [cls().double() for _ in range(E)]
    _randomise(singles)
    ens = stack_modules(singles).double()
    for nb in (2, E):
        x, y = _xy(k=4, lead=(E, nb), seed=12)
        out = _apply(ens, is_critic, x, y)
        assert out.shape == ((E, nb, 4, 4) if is_critic else (E, nb, 4))
        for e in range(E):
            for b in range(nb):
                want = _apply(singles[e], is_critic, x[e, b], y[e, b])
                assert torch.allclose(out[e, b], want, rtol=0, atol=1e-12), f"{case} E={E} B={nb} e={e} b={b}"


def test_stack_modules_rejects_mixed():
    a = SeparableCritic(3, 2, hidden=4)
    b = SeparableCritic(3, 2, hidden=5)
    with pytest.raises(ValueError):
        stack_modules([a, b])
    with pytest.raises(ValueError):
        stack_modules([a, JointCritic(3, 2, hidden=4)])
    with pytest.raises(ValueError):
        stack_modules([])


def test_generator_seeds_weights():
    a = SeparableCritic(3, 2, hidden=4, generator=_gen(5))
    b = SeparableCritic(3, 2, hidden=4, generator=_gen(5))
    c = SeparableCritic(3, 2, hidden=4, generator=_gen(6))
    for (_, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r)
    e1 = JointCritic(3, 2, hidden=4, ensemble=2, generator=_gen(5))
    e2 = JointCritic(3, 2, hidden=4, ensemble=2, generator=_gen(5))
    assert all(torch.equal(p, q) for p, q in zip(e1.parameters(), e2.parameters()))


def test_generator_initialisation_leaves_global_rng_alone():
    state = torch.get_rng_state()
    JointCritic(3, 2, hidden=4, generator=_gen(5))
    SeparableCritic(3, 2, hidden=4, generator=_gen(5))
    MLPBaseline(2, hidden=4, generator=_gen(5))
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------------------------------
# Baselines, builders, errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["constant", "mlp", "gaussian"])
@pytest.mark.parametrize("lead", [(), (2,), (2, 3)])
def test_baselines_return_one_value_per_column(name, lead):
    b = make_baseline(name, 2, generator=_gen(3), **({"hidden": 16} if name == "mlp" else {})).double()
    _, y = _xy(k=5, lead=lead, seed=13)
    out = b(y)
    assert out.shape == lead + (5,)
    # each entry depends only on its own y_j
    y2 = y.clone()
    y2[..., 0, :] += 1.0
    diff = (b(y2) - out).abs()
    assert (diff[..., 1:] == 0).all()
    if name != "constant":
        assert (diff[..., 0] > 0).any()  # (a ReLU MLP may be locally flat for some y)


def test_gaussian_baseline_is_normalised_log_density():
    b = GaussianBaseline(2).double()
    with torch.no_grad():
        b.mean.copy_(torch.tensor([0.3, -1.0])), b.log_scale.copy_(torch.tensor([0.2, -0.5]))
    _, y = _xy(k=6, seed=14)
    want = torch.distributions.Normal(b.mean, b.log_scale.exp()).log_prob(y).sum(-1)
    assert torch.allclose(b(y), want, rtol=0, atol=1e-12)


def test_gaussian_conditional_critic_orientation():
    from vbmi import data

    x, y = _xy(k=5, dx=3, dy=3, seed=15)
    c = C.GaussianConditionalCritic(0.6)
    s = c(x, y)
    for i in range(5):
        for j in range(5):
            want = torch.distributions.Normal(0.6 * x[i], (1 - 0.36) ** 0.5).log_prob(y[j]).sum()
            assert torch.allclose(s[i, j], want, rtol=0, atol=1e-9)
    assert torch.equal(s, data.gaussian_log_p_y_given_x(x, y, 0.6))


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_mlp_layer_count(layers):
    m = C.mlp(4, 8, layers, 2)
    assert sum(isinstance(l, nn.Linear) for l in m) == layers + 1
    assert sum(isinstance(l, nn.ReLU) for l in m) == layers


def test_unknown_names_raise_value_error_listing_valid():
    with pytest.raises(ValueError, match="separable, joint"):
        make_critic("bilinear", 3, 2)
    with pytest.raises(ValueError, match="constant.*mlp.*gaussian"):
        make_baseline("flow", 2)
    with pytest.raises(ValueError, match="relu.*tanh"):
        SeparableCritic(3, 2, activation="gelu")
    with pytest.raises(ValueError, match="relu.*tanh"):
        JointCritic(3, 2, activation="elu")
    with pytest.raises(ValueError, match="relu.*tanh"):
        C.mlp(3, 4, 1, 1, activation=None)


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        C.mlp(0, 4, 1, 1)
    with pytest.raises(ValueError):
        C.mlp(3, 4, -1, 1)
    with pytest.raises(ValueError):
        JointCritic(3, 2, layers=0)


def test_make_critic_builds_the_right_class():
    assert isinstance(make_critic("separable", 3, 2, hidden=4, embed_dim=3), SeparableCritic)
    c = make_critic("joint", 3, 2, hidden=4, embed_dim=3)  # embed_dim ignored for joint critics
    assert isinstance(c, C.JointCritic) and C.JointCritic is JointCritic
    assert not hasattr(C, "ConcatCritic")  # one name per critic
    with pytest.raises(ValueError, match=r"'concat' is now called 'joint'\)"):
        make_critic("concat", 3, 2, hidden=4)


def test_critics_do_not_change_thread_count():
    before = torch.get_num_threads()
    c = JointCritic(3, 2, hidden=4, max_chunk_elements=4)
    x, y = _xy(k=6, seed=16)
    c(x.float(), y.float()).sum().backward()
    SeparableCritic(3, 2, hidden=4)(x.float(), y.float())
    assert torch.get_num_threads() == before
