"""vbmi.objectives.BoundObjective: the registry bound plus its learned baseline and MINE's EMA state."""

from __future__ import annotations

import math

import pytest
import torch

import _reference as ref
from vbmi import bounds as B
from vbmi.bounds import BOUNDS
from vbmi.critics import ConstantBaseline, GaussianBaseline, MLPBaseline, stack_modules, unstack_module
from vbmi.objectives import DEFAULT_BASELINE, BoundObjective

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(k=6, dy=3, lead=(), seed=0):
    g = _gen(seed)
    s = torch.randn(lead + (k, k), generator=g, dtype=F64) + 2 * torch.eye(k, dtype=F64)
    y = torch.randn(lead + (k, dy), generator=g, dtype=F64)
    return s, y


CASES = {
    # name: (constructor kwargs, expected baseline class or None)
    "dv": ({}, None),
    "nwj": ({}, None),
    "nce": ({}, None),
    "js": ({}, None),
    "smile": ({"tau": 1.5}, None),
    "tnce": ({}, None),
    "loo_upper": ({}, None),
    "interpolated_linear": ({"alpha": 0.3}, None),
    "tuba": ({"y_dim": 3}, MLPBaseline),
    "interpolated": ({"y_dim": 3, "alpha": 0.5}, MLPBaseline),
    "interpolated_product": ({"y_dim": 3, "alpha": 0.5}, MLPBaseline),
    "nwj_reparam": ({"y_dim": 3}, GaussianBaseline),
    "variational_upper": ({"y_dim": 3}, GaussianBaseline),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_objective_equals_registry_bound_with_its_baseline(name):
    kw, base_cls = CASES[name]
    obj = BoundObjective(name, generator=_gen(1), baseline_kwargs={"hidden": 8} if base_cls is MLPBaseline else None,
                         **kw).double()
    s, y = _batch(lead=(2,))
    if base_cls is None:
        assert obj.baseline is None
    else:
        assert type(obj.baseline) is base_cls
    call = {}
    if obj.baseline is not None:
        call["log_baseline"] = obj.baseline(y)
        assert call["log_baseline"].shape == (2, 6)
    if "alpha" in kw:
        call["alpha"] = kw["alpha"]
    if name == "smile":
        call["tau"] = 1.5
    got = obj(s, y)
    assert got.shape == (2,)
    assert torch.allclose(got, BOUNDS[name](s, **call), rtol=0, atol=1e-14)


def test_interpolated_objective_value_matches_loop_reference():
    obj = BoundObjective("interpolated", y_dim=3, alpha=0.25, baseline="gaussian").double()
    with torch.no_grad():
        obj.baseline.mean.fill_(0.2), obj.baseline.log_scale.fill_(-0.3)
    s, y = _batch(lead=(2,), seed=2)
    lq = torch.distributions.Normal(torch.tensor(0.2, dtype=F64), torch.tensor(-0.3, dtype=F64).exp()).log_prob(y).sum(-1)
    want = ref.batched(ref.interpolated, s, vectors={"log_q": lq}, scalars={"alpha": 0.25})
    assert (obj(s, y) - want).abs().max() < 1e-10


def test_interpolated_alpha1_needs_no_baseline():
    obj = BoundObjective("interpolated", alpha=1.0)
    assert obj.baseline is None
    s, _ = _batch()
    assert torch.allclose(obj(s), B.interpolated(s, alpha=1.0), rtol=0, atol=0)


def test_default_baselines():
    assert DEFAULT_BASELINE["variational_upper"] == "gaussian"  # Eq. 1 needs a normalised q
    assert DEFAULT_BASELINE["nwj_reparam"] == "gaussian"  # Eq. 14 learns only the marginal q(y)
    for name in ("tuba", "interpolated", "interpolated_product"):
        assert DEFAULT_BASELINE[name] == "mlp"
    assert type(BoundObjective("tuba", y_dim=3, baseline="constant").baseline) is ConstantBaseline


def test_baseline_receives_gradient():
    obj = BoundObjective("tuba", y_dim=3, baseline="mlp", baseline_kwargs={"hidden": 8}, generator=_gen(3)).double()
    s, y = _batch(seed=4)
    s.requires_grad_(True)
    obj(s, y).sum().backward()
    assert s.grad is not None and all(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.parameters())


# --------------------------------------------------------------------------------------------------
# MINE's EMA state
# --------------------------------------------------------------------------------------------------
def test_mine_ema_state_training_and_eval():
    decay = 0.9
    obj = BoundObjective("mine", mine_decay=decay).double()
    assert "mine_log_ema" in obj.state_dict() and torch.isnan(obj.mine_log_ema).all()
    ema = None
    for step in range(4):
        s, _ = _batch(seed=10 + step)
        z = sum(math.exp(s[i, j].item()) for i in range(6) for j in range(6) if i != j) / 30  # Z_batch
        ema = z if ema is None else decay * ema + (1 - decay) * z
        leaf = s.clone().requires_grad_(True)
        value = obj(leaf)
        # value = DV; state updated before evaluation; gradient = TUBA at a = (updated) EMA
        assert abs(value.item() - ref.dv(s.tolist())) < 1e-12
        assert abs(obj.mine_log_ema.item() - math.log(ema)) < 1e-12
        (g,) = torch.autograd.grad(value, leaf)
        gf, _ = ref.tuba_grad(s.tolist(), [math.log(ema)] * 6)
        assert torch.allclose(g, torch.tensor(gf, dtype=F64), rtol=0, atol=1e-12)
    # eval mode does not update the state
    obj.eval()
    before = obj.mine_log_ema.clone()
    s, _ = _batch(seed=99)
    obj(s)
    assert torch.equal(obj.mine_log_ema, before)
    # state survives a state_dict round trip
    obj2 = BoundObjective("mine", mine_decay=decay).double()
    obj2.load_state_dict(obj.state_dict())
    assert torch.equal(obj2.mine_log_ema, before)


def test_mine_eval_before_training_uses_batch():
    obj = BoundObjective("mine").double().eval()
    s, _ = _batch(seed=5)
    leaf = s.clone().requires_grad_(True)
    v = obj(leaf)
    assert abs(v.item() - ref.dv(s.tolist())) < 1e-12
    assert torch.isnan(obj.mine_log_ema).all()


def test_mine_ensemble_state_per_member():
    E = 3
    obj = BoundObjective("mine", ensemble=E, mine_decay=0.5).double()
    assert obj.mine_log_ema.shape == (E,)
    s1, _ = _batch(lead=(E,), seed=6)
    s2, _ = _batch(lead=(E,), seed=7)
    obj(s1)
    obj(s2)
    for e in range(E):
        single = BoundObjective("mine", mine_decay=0.5).double()
        single(s1[e])
        single(s2[e])
        assert abs(obj.mine_log_ema[e].item() - single.mine_log_ema.item()) < 1e-12


# --------------------------------------------------------------------------------------------------
# Ensembles of objectives
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "constant", "gaussian"])
def test_ensemble_objective_members_equal_single_objectives(kind):
    E = 3
    obj = BoundObjective("interpolated", y_dim=3, alpha=0.4, baseline=kind, ensemble=E, generator=_gen(8),
                         baseline_kwargs={"hidden": 8} if kind == "mlp" else None).double()
    with torch.no_grad():
        for p in obj.parameters():
            p.copy_(torch.randn(p.shape, generator=_gen(9), dtype=F64))
    s, y = _batch(lead=(E,), seed=10)
    out = obj(s, y)
    assert out.shape == (E,)
    for e in range(E):
        base = unstack_module(obj.baseline, e)
        want = B.interpolated(s[e], log_baseline=base(y[e]), alpha=0.4)
        assert abs(out[e].item() - want.item()) < 1e-12
    # and stacking the singles back gives the same ensemble outputs
    restacked = stack_modules([unstack_module(obj.baseline, e) for e in range(E)])
    assert torch.allclose(restacked(y), obj.baseline(y), rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
def test_objective_errors():
    with pytest.raises(ValueError, match="valid names"):
        BoundObjective("infonce")
    with pytest.raises(ValueError, match="alpha"):
        BoundObjective("interpolated", y_dim=3)  # alpha missing
    with pytest.raises(ValueError, match="alpha"):
        BoundObjective("interpolated", y_dim=3, alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        BoundObjective("interpolated_linear", alpha=-0.1)
    with pytest.raises(ValueError, match="alpha"):
        BoundObjective("nce", alpha=0.5)
    with pytest.raises(ValueError, match="y_dim"):
        BoundObjective("tuba")
    with pytest.raises(ValueError, match="baseline"):
        BoundObjective("nce", baseline="mlp")
    with pytest.raises(ValueError, match="valid"):
        BoundObjective("tuba", y_dim=3, baseline="flow")
    obj = BoundObjective("tuba", y_dim=3)
    with pytest.raises(ValueError, match="needs y"):
        obj(torch.zeros(4, 4))
