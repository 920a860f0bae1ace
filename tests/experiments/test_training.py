"""The ensemble trainer: stacked == lone runs, resume == uninterrupted, divergence isolated, records' shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vbmi.experiments.training import RunSpec, StackedAdam, result_to_dataset, train_ensemble, train_loop

SMALL = dict(hidden=16, layers=1, embed_dim=8)
SCHED = dict(steps_per_level=6, levels=(2.0, 10.0), data_block=4, progress=False, device="cpu")


def _mixed_specs() -> list[RunSpec]:
    """Several bounds, both datasets, two learning rates, a learned baseline, MINE's EMA, a known critic."""
    return [
        RunSpec(bound="nce", seed=1, lr=1e-3, **SMALL),
        RunSpec(bound="mine", seed=2, dataset="cubic", **SMALL),
        RunSpec(bound="interpolated", alpha=0.5, seed=3, lr=2e-3, **SMALL),
        RunSpec(bound="tuba", seed=4, **SMALL),
        RunSpec(bound="nwj", seed=5, batch_size=8, **SMALL),  # another batch size: another group
        RunSpec(bound="js", critic="joint", seed=6, **SMALL),
        RunSpec(bound="smile", critic="joint", seed=7, dataset="cubic", **SMALL),
        RunSpec(bound="nwj_reparam", critic="known", seed=8),
        RunSpec(bound="tnce", critic="known", seed=9),
    ]


def test_stacked_ensemble_equals_lone_runs():
    specs = _mixed_specs()
    stacked = train_ensemble(specs, stack=True, cubic_weight_std=20**-0.5, **SCHED)
    kw = {k: v for k, v in SCHED.items() if k != "progress"}
    loop = train_loop(specs, cubic_weight_std=20**-0.5, **kw)
    assert stacked.estimate.shape == loop.estimate.shape == (len(specs), 12)
    assert np.isfinite(stacked.estimate).all()
    np.testing.assert_allclose(stacked.estimate, loop.estimate, rtol=1e-4, atol=1e-4)
    # Training changed the estimates (a trivially constant record would also "match").
    assert np.abs(np.diff(stacked.estimate[:3], axis=1)).max() > 1e-3
    # Member 0 alone in its own ensemble gives the same numbers as inside the big one.
    alone = train_ensemble(specs[:1], cubic_weight_std=20**-0.5, **SCHED)
    np.testing.assert_allclose(alone.estimate[0], stacked.estimate[0], rtol=1e-5, atol=1e-5)


def test_seed_changes_the_run_and_same_seed_reproduces():
    a = train_ensemble([RunSpec(seed=0, **SMALL)], **SCHED)
    b = train_ensemble([RunSpec(seed=0, **SMALL)], **SCHED)
    c = train_ensemble([RunSpec(seed=1, **SMALL)], **SCHED)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    assert not np.allclose(a.estimate, c.estimate)


def test_resume_after_kill_gives_identical_records_and_cube(tmp_path):
    import xarray as xr

    from vbmi.results import as_cube

    specs = _mixed_specs()[:4] + _mixed_specs()[5:6]
    kw = dict(SCHED, cubic_weight_std=20**-0.5)
    full = train_ensemble(specs, **kw)
    ckpt = tmp_path / "ckpt" / "run.pt"
    killed = train_ensemble(specs, checkpoint_path=ckpt, stop_after=5, **kw)  # saves at step 8, "dies"
    assert killed is None and ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)  # loads under the safe unpickler
    assert state["step"] == 8
    resumed = train_ensemble(specs, checkpoint_path=ckpt, **kw)
    assert resumed.resumed_from == 8
    np.testing.assert_array_equal(resumed.estimate, full.estimate)
    np.testing.assert_array_equal(resumed.max_abs_score, full.max_abs_score)
    assert not ckpt.exists()  # removed after success
    cubes = []
    for res in (full, resumed):
        ds = result_to_dataset(res)
        ds.attrs = {}  # wall time and speed differ between runs by nature
        cubes.append(as_cube(ds, kind="training", created_at="t"))
    cube_a, cube_b = cubes
    xr.testing.assert_identical(cube_a, cube_b)


def test_checkpoint_of_other_runs_is_ignored(tmp_path):
    ckpt = tmp_path / "run.pt"
    assert train_ensemble([RunSpec(seed=0, **SMALL)], checkpoint_path=ckpt, stop_after=4, **SCHED) is None
    other = train_ensemble([RunSpec(seed=1, **SMALL)], checkpoint_path=ckpt, **SCHED)
    assert other.resumed_from == 0


def test_divergence_is_recorded_and_isolated():
    good = [RunSpec(bound="nwj", seed=s, **SMALL) for s in (0, 1)]
    bad = RunSpec(bound="nwj", seed=2, lr=1e30, **SMALL)  # weights explode to inf on the first update
    mixed = train_ensemble([good[0], bad, good[1]], stack=True, **SCHED)
    clean = train_ensemble(good, stack=True, **SCHED)
    step = mixed.diverged_step[1]
    assert 0 < step < 12
    assert np.isnan(mixed.estimate[1, step:]).all() and np.isfinite(mixed.estimate[1, :step]).all()
    assert list(mixed.diverged_step[[0, 2]]) == [-1, -1]
    np.testing.assert_allclose(mixed.estimate[[0, 2]], clean.estimate, rtol=1e-6, atol=1e-6)


def test_stacked_adam_matches_torch_adam_with_mixed_lr_and_frozen_member():
    torch.manual_seed(0)
    p = torch.randn(3, 4, 5, requires_grad=True)
    singles = [p[e].detach().clone().requires_grad_(True) for e in range(3)]
    lrs = [1e-3, 1e-2, 1e-1]
    opt = StackedAdam([p], torch.tensor(lrs, dtype=torch.float64))
    opts = [torch.optim.Adam([s], lr=lr, foreach=False) for s, lr in zip(singles, lrs)]
    alive = torch.tensor([True, True, True])
    for t in range(5):
        g = torch.randn(3, 4, 5)
        if t == 3:
            alive = torch.tensor([True, False, True])
            g[1] = float("nan")
        p.grad = g.clone()
        opt.step(alive)
        for e in range(3):
            if alive[e]:
                singles[e].grad = g[e].clone()
                opts[e].step()
    for e in range(3):
        torch.testing.assert_close(p[e].detach(), singles[e].detach(), rtol=1e-6, atol=1e-7)
    assert torch.isfinite(opt.exp_avg[0]).all()


def test_records_shapes_progress_and_dataset(capsys):
    specs = [RunSpec(bound="interpolated", alpha=0.01, **SMALL), RunSpec(bound="nce", critic="joint", **SMALL)]
    res = train_ensemble(specs, **dict(SCHED, progress=True))
    err = capsys.readouterr().err
    assert "step/s" in err or "s/step" in err
    assert res.estimate.shape == res.max_abs_score.shape == (2, 12)
    assert res.true_mi.tolist() == [2.0] * 6 + [10.0] * 6
    assert res.diverged_step.shape == res.overflow_steps.shape == (2,)
    ds = result_to_dataset(res)
    assert dict(ds.sizes) == {"config": 2, "step": 12}
    assert ds.bound_label.values.tolist() == ["interpolated_0.01", "nce"]
    assert ds.sel(step=7).true_mi.item() == 10.0


def test_invalid_specs_raise():
    with pytest.raises(ValueError, match="valid"):
        RunSpec(bound="nope")
    with pytest.raises(ValueError, match="alpha"):
        RunSpec(bound="interpolated")
    with pytest.raises(ValueError, match="known"):
        RunSpec(bound="tnce", critic="separable")
    with pytest.raises(ValueError, match="gaussian"):
        RunSpec(bound="tnce", critic="known", dataset="cubic")
