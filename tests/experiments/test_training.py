"""The ensemble trainer: stacked == lone runs, resume == uninterrupted, divergence isolated, records' shapes."""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest
import torch

from vbmi.experiments.training import RunSpec, StackedAdam, result_to_dataset, train_ensemble
from vbmi.train import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the plain-loop reference lives in bench/ (a development tool, not the library)
from bench.training import train_loop  # noqa: E402

sys.path.remove(str(REPO))

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


def test_engine_gives_the_numbers_of_the_former_trainer():
    """training_golden.json: these runs through the trainer before it moved onto vbmi.train.Engine (commit
    d2c9c7e with today's vbmi.bounds; bit for bit equal when recorded). The engine must reproduce them:
    same seeds, same arithmetic up to rounding: the engine's Adam is torch's fused kernel, which rounds the
    last bit differently from the unfused update the golden file was recorded with. Gaussian-task runs only
    (the cubic task's data changed since), and not Eq. 14, whose q(y) is now a Gaussian, not an MLP."""
    golden = json.loads((pathlib.Path(__file__).with_name("training_golden.json")).read_text())
    specs = _mixed_specs()
    res = train_ensemble(specs, cubic_weight_std=20**-0.5, **SCHED)
    keep = [i for i, s in enumerate(specs) if s.dataset == "gaussian" and s.bound != "nwj_reparam"]
    assert len(keep) == 6
    np.testing.assert_allclose(res.estimate[keep], np.asarray(golden["estimate"], dtype=float)[keep],
                               rtol=1e-6, atol=1e-7)
    # max |f| is one entry of the score matrix, and Adam's first steps move a weight by lr g / (|g| + eps):
    # near-zero gradients turn last-bit differences into ~1e-4 relative changes of single scores, which
    # the bounds (averages over the batch) do not show.
    np.testing.assert_allclose(res.max_abs_score[keep], np.asarray(golden["max_abs_score"], dtype=float)[keep],
                               rtol=1e-2)
    assert res.diverged_step.tolist() == golden["diverged_step"]


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
    blob = torch.load(ckpt, weights_only=True)  # loads under the safe unpickler
    assert blob["state"]["engine"]["step"] == 8
    resumed = train_ensemble(specs, checkpoint_path=ckpt, **kw)
    assert resumed.resumed_from == 8
    np.testing.assert_array_equal(resumed.estimate, full.estimate)
    np.testing.assert_array_equal(resumed.max_abs_score, full.max_abs_score)
    assert ckpt.exists()  # kept: the caller removes it once the cube is written
    cubes = []
    for res in (full, resumed):
        ds = result_to_dataset(res)
        ds.attrs = {}  # wall time and speed differ between runs by nature
        cubes.append(as_cube(ds, kind="training", created_at="t"))
    cube_a, cube_b = cubes
    xr.testing.assert_identical(cube_a, cube_b)


def test_checkpoint_of_other_runs_is_ignored_with_a_warning_naming_it(tmp_path):
    ckpt = tmp_path / "run.pt"
    assert train_ensemble([RunSpec(seed=0, **SMALL)], checkpoint_path=ckpt, stop_after=4, **SCHED) is None
    with pytest.warns(checkpoint.CheckpointWarning, match=str(ckpt)):
        other = train_ensemble([RunSpec(seed=1, **SMALL)], checkpoint_path=ckpt, **SCHED)
    assert other.resumed_from == 0
    np.testing.assert_array_equal(other.estimate, train_ensemble([RunSpec(seed=1, **SMALL)], **SCHED).estimate)


def test_truncated_checkpoint_restarts_from_zero_with_a_warning(tmp_path):
    specs = [RunSpec(seed=0, **SMALL), RunSpec(bound="js", seed=1, **SMALL)]
    ckpt = tmp_path / "run.pt"
    assert train_ensemble(specs, checkpoint_path=ckpt, stop_after=4, **SCHED) is None
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # a kill during a non-atomic copy, a full disk, ...
    with pytest.warns(checkpoint.CheckpointWarning, match=f"{ckpt}.*unreadable"):
        res = train_ensemble(specs, checkpoint_path=ckpt, **SCHED)
    assert res.resumed_from == 0
    np.testing.assert_array_equal(res.estimate, train_ensemble(specs, **SCHED).estimate)


def test_explosion_is_frozen_as_divergence():
    """A run whose estimate leaves the bound's plausible range is diverged (not a number in the cube):
    NWJ at lr 0.3 has critic values ~100 after one step, so its estimate is about -e^100 nats: finite
    in float64, finite scores, but not an estimate."""
    specs = [RunSpec(bound="nwj", seed=0, lr=0.3, **SMALL), RunSpec(bound="nce", seed=0, **SMALL)]
    res = train_ensemble(specs, **SCHED)
    assert res.diverged_step.tolist() == [1, -1]
    assert 50 < res.max_abs_score[0, 1] < 1e4  # finite scores: frozen by the range, not by overflow
    assert np.isfinite(res.estimate[0, :1]).all() and np.isnan(res.estimate[0, 1:]).all()
    assert np.isfinite(res.estimate[1]).all()


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


# ---------------------------------------------------------------------------------------------------
# The pipeline's path: train_from_config -> cube, killed and resumed (Fig. 2 and sweep jobs)
# ---------------------------------------------------------------------------------------------------
def _pipeline_cfgs():
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from report_fixtures._training_cubes import SWEEP, TRAINING
    finally:
        sys.path.remove(str(REPO / "tests"))
    return TRAINING, SWEEP


def _cube(result, kind: str, labels=None, tail=None):
    from vbmi.experiments.sweep import fig2_dataset, level_summary
    from vbmi.results import as_cube

    ds = result_to_dataset(result, labels=labels)
    if kind == "training":
        ds = fig2_dataset(ds)
    else:
        summary = level_summary(ds, tail)
        ds = ds.merge(summary).drop_vars("max_abs_score").assign_attrs(summary.attrs)
    ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("timing_")}
    return as_cube(ds, kind=kind, created_at="t")


@pytest.mark.parametrize("stage", ["fig2", "sweep"])
def test_killed_pipeline_job_resumes_to_the_identical_cube(tmp_path, stage):
    import xarray as xr

    from vbmi.experiments.plan import fig2_parts, sweep_parts, sweep_specs
    from vbmi.experiments.training import train_from_config

    training, sweep = _pipeline_cfgs()
    if stage == "fig2":
        cfg, specs = training, fig2_parts(training, 0)["separable_cubic"]
        labels, kind = None, "training"
    else:
        cfg = sweep
        every = sweep_specs(sweep, 0)
        idx = sweep_parts(sweep, 0)[0]
        specs, labels, kind = [every[i] for i in idx], [f"c{i:05d}" for i in idx], "sweep_part"
    cfg = dict(cfg, checkpoint_every_s=0.0)
    ckpt = tmp_path / "ckpt.pt"
    full = train_from_config(specs, cfg, device="cpu", checkpoint_path=None)
    total = full.steps
    killed = train_ensemble(specs, steps_per_level=cfg["steps_per_level"], levels=cfg["levels"], device="cpu",
                            cubic_weight_std=cfg["cubic_weight_std"], cubic_seed=cfg["cubic_seed"],
                            data_block=cfg["data_block"], checkpoint_path=ckpt, stop_after=total // 2,
                            progress=False)
    assert killed is None and ckpt.is_file()
    resumed = train_from_config(specs, cfg, device="cpu", checkpoint_path=ckpt)
    assert 0 < resumed.resumed_from < total
    xr.testing.assert_identical(_cube(full, kind, labels, cfg.get("tail_steps")),
                                _cube(resumed, kind, labels, cfg.get("tail_steps")))


def test_a_finished_run_is_checkpointed_before_its_cube_is_written(tmp_path):
    """No timed save falls inside a short run; a kill between training and the cube must still not lose it."""
    specs = [RunSpec(seed=0, **SMALL)]
    ckpt = tmp_path / "ckpt.pt"
    first = train_ensemble(specs, checkpoint_path=ckpt, checkpoint_every_s=1e9, **SCHED)
    assert first.resumed_from == 0 and ckpt.is_file()  # the job would now die before writing its cube
    rerun = train_ensemble(specs, checkpoint_path=ckpt, checkpoint_every_s=1e9, **SCHED)
    assert rerun.resumed_from == first.steps  # nothing trained again
    np.testing.assert_array_equal(rerun.estimate, first.estimate)
    np.testing.assert_array_equal(rerun.max_abs_score, first.max_abs_score)
    np.testing.assert_array_equal(rerun.diverged_step, first.diverged_step)


def test_checkpoint_survives_until_its_cube_is_written(tmp_path):
    from vbmi.results import write_cube

    specs = [RunSpec(seed=0, **SMALL)]
    ckpt = tmp_path / "ckpt.pt"
    assert train_ensemble(specs, checkpoint_path=ckpt, stop_after=4, **SCHED) is None
    out = tmp_path / "cube.nc"

    def write_failing(ds, path, **kw):
        raise OSError(f"{path}: no space left on device")  # the job dies while writing its cube

    with pytest.raises(OSError):
        with checkpoint.removed_on_success(ckpt):
            res = train_ensemble(specs, checkpoint_path=ckpt, **SCHED)
            write_failing(result_to_dataset(res), out, kind="training")
    assert ckpt.is_file() and not out.exists()  # the rerun resumes from it instead of training again
    with checkpoint.removed_on_success(ckpt):
        res = train_ensemble(specs, checkpoint_path=ckpt, **SCHED)
        assert res.resumed_from == res.steps and ckpt.is_file()  # the failed job had finished training
        write_cube(result_to_dataset(res), out, kind="training")
    assert out.is_file() and not ckpt.exists()
