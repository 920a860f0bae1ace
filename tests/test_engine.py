"""vbmi.train.Engine: stacked members == lone runs, freezing, hooks, resume == uninterrupted."""

from __future__ import annotations

import math

import pytest
import torch

from vbmi.train import Checkpointing, Engine, checkpoint

TARGETS = torch.tensor([1.0, -2.0, 3.0])


def _quadratic_task(e: int, seed: int = 0):
    """E independent members maximising -(w - target)^2 + noise; data from one generator."""
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(e, 4, requires_grad=True)
    gen = torch.Generator().manual_seed(seed + 1)

    def step_fn(step: int) -> torch.Tensor:
        noise = torch.randn(e, 4, generator=gen) * 0.1
        return -((w - TARGETS[:e, None] + noise) ** 2).sum(-1).double()

    return w, gen, g, step_fn


@pytest.mark.parametrize("lrs", [[5e-2] * 3, [1e-2, 5e-2, 1e-1]])
def test_stacked_members_equal_lone_torch_adam_runs(lrs):
    """Equal to lone runs of torch's fused Adam up to the last bit: the fused kernel's vectorised body and
    its scalar tail round differently, so an element's path depends on where it sits in the tensor."""
    tol = 1e-6
    w, _, _, step_fn = _quadratic_task(3)
    eng = Engine([w], members=3, lr=lrs, record_steps=20)
    eng.run(step_fn, stop=20)
    for m, lr in enumerate(lrs):
        wl = torch.zeros(4, requires_grad=True)
        opt = torch.optim.Adam([wl], lr=lr, fused=True)
        lone = Engine([], members=1, optimizer=opt, record_steps=20)
        gen = torch.Generator().manual_seed(1)

        def lone_fn(step, m=m, wl=wl, gen=gen):
            noise = torch.randn(3, 4, generator=gen)[m] * 0.1  # the same draws as the stacked run
            return -((wl - TARGETS[m] + noise) ** 2).sum().double()

        lone.run(lone_fn, stop=20)
        torch.testing.assert_close(w[m].detach(), wl.detach(), rtol=tol, atol=tol)
        torch.testing.assert_close(eng.history[m], lone.history[0], rtol=tol, atol=tol)
    assert eng.history[:, -1].gt(eng.history[:, 0]).all()  # training improved every member


def test_non_finite_and_out_of_range_members_are_frozen():
    w = torch.zeros(3, 2, requires_grad=True)

    def step_fn(step):
        v = -(w - 1.0).pow(2).sum(-1).double()
        if step == 3:
            v = v + torch.tensor([0.0, math.nan, 0.0], dtype=torch.float64)
        return v - torch.tensor([0.0, 0.0, 100.0 * step], dtype=torch.float64)  # member 2 drifts away

    eng = Engine([w], members=3, lr=0.1, value_range=([-50.0] * 3, [10.0] * 3), record_steps=10)
    out = eng.run(step_fn, stop=10)
    assert eng.diverged_step.tolist() == [-1, 3, 1]
    assert torch.isnan(eng.history[1, 3:]).all() and torch.isfinite(eng.history[1, :3]).all()
    assert torch.isnan(eng.history[2, 1:]).all()
    frozen_w1 = w[1].detach().clone()
    eng.run(step_fn, start=10, stop=12)
    assert torch.equal(w[1].detach(), frozen_w1)  # no update after freezing
    assert out.reason == "done"


def test_reported_bad_gradient_freezes_before_the_update():
    w = torch.zeros(2, 2, requires_grad=True)

    def step_fn(step):
        v = -(w - 1.0).pow(2).sum(-1).double()
        if step == 2:  # as a backward hook that found a non-finite gradient of member 1 would
            v.register_hook(lambda g: eng.report_bad_gradient(torch.tensor([True, False])))
        return v

    eng = Engine([w], members=2, lr=0.1, record_steps=5)
    eng.run(step_fn, stop=2)
    before = w[1].detach().clone()
    eng.run(step_fn, stop=5)
    assert eng.diverged_step.tolist() == [-1, 2] and torch.equal(w[1].detach(), before)


def test_hook_stops_training_and_all_frozen_stops():
    w = torch.zeros(1, 2, requires_grad=True)
    seen = []

    def hook(engine, step, value):
        seen.append(step)
        return step == 4

    eng = Engine([w], members=1, lr=0.1, hooks=[hook])
    out = eng.run(lambda s: -(w - 1).pow(2).sum(-1).double(), stop=100)
    assert out.reason == "hook" and out.stop == 5 and seen == [0, 1, 2, 3, 4]
    eng2 = Engine([torch.zeros(1, 2, requires_grad=True)], members=1, lr=0.1)
    out2 = eng2.run(lambda s: torch.full((1,), math.nan, dtype=torch.float64, requires_grad=True), stop=100)
    assert out2.reason == "all_frozen" and out2.stop == 1


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    def build():
        w, gen, _, step_fn = _quadratic_task(3, seed=5)
        eng = Engine([w], members=3, lr=[1e-2, 5e-2, 1e-1], record_steps=12)
        ckpt = Checkpointing(tmp_path / "c.pt", checkpoint.fingerprint(task="quadratic", include_code=False),
                             every_s=0.0, boundary=lambda s: s % 4 == 0,
                             extra_state=lambda: {"w": w.detach().clone(), "gen": gen.get_state()})
        return w, gen, eng, ckpt, step_fn

    w, _, eng, _, step_fn = build()
    eng.run(step_fn, stop=12)
    full = eng.history.clone()
    w2, gen2, eng2, ck2, fn2 = build()
    out = eng2.run(fn2, stop=12, checkpointing=ck2, stop_at=6)
    assert out.interrupted and out.stop == 8
    w3, gen3, eng3, ck3, fn3 = build()
    extra = eng3.resume(ck3)
    with torch.no_grad():
        w3.copy_(extra["w"])
    gen3.set_state(extra["gen"])
    assert eng3.step_count == 8
    eng3.run(fn3, stop=12)
    torch.testing.assert_close(eng3.history, full, rtol=0, atol=0, equal_nan=True)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="one member"):
        Engine([], members=2, optimizer=torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
    with pytest.raises(ValueError, match="lr"):
        Engine([torch.zeros(2, 1)], members=2, lr=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="value_range"):
        Engine([torch.zeros(2, 1)], members=2, value_range=([0.0], [1.0]))


def test_plausible_range_caps_and_explosion_margin():
    from vbmi.bounds import plausible_range

    lo, hi = plausible_range("nce", batch_size=64, true_mi_max=10.0)
    assert lo == -200.0 and hi == pytest.approx(math.log(64), rel=1e-5) and hi >= math.log(64)
    assert plausible_range("interpolated", batch_size=64, alpha=0.01)[1] == pytest.approx(1 + math.log(6400), rel=1e-5)
    assert plausible_range("nwj", batch_size=64) == (-math.inf, math.inf)
    assert plausible_range("js", batch_size=8, true_mi_max=30.0) == (-600.0, 630.0 + 630.0 * 1e-6)
    with pytest.raises(ValueError, match="valid"):
        plausible_range("nope", batch_size=8)
