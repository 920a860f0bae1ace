"""From checkpoints to a result cube (vbmi.dsprites.experiment) and its round trip through vbmi.results."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from vbmi.dsprites import data as D
from vbmi.dsprites import experiment as E
from vbmi.dsprites import train as T
from vbmi.dsprites.objective import ObjectiveConfig
from vbmi.results import read_cube, write_cube

CFG = T.TrainConfig(steps=4, batch_size=8, log_every=2, objective=ObjectiveConfig(tc_ramp_start=1, tc_ramp_steps=2))


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dsprites")
    ds = D.from_cache(
        D.write_cache(
            D.from_renderer(np.random.default_rng(0).choice(D.N_IMAGES, 300, replace=False)), tmp / "data.npz"
        )
    )
    ckpts = {}
    for seed in (0, 1):
        ckpts[seed] = tmp / f"seed{seed}.pt"
        T.train(
            ds, T.TrainConfig(**{**CFG.__dict__, "seed": seed}), device="cpu", checkpoint=ckpts[seed], progress=False
        )
    return E.build_cube(ds, ckpts, n_eval=200, device="cpu")


def test_cube_layout(cube):
    assert dict(cube.sizes) == {
        "seed": 2,
        "step": 2,
        "encoder": 2,
        "latent": 10,
        "factor": 5,
        "pos_y": 32,
        "pos_x": 32,
        "shape": 3,
        "scale": 6,
        "orientation": 40,
    }
    assert list(cube.factor.values) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert cube.nmi.sel(encoder="random").notnull().all()
    assert ((cube.best_nmi >= 0) & (cube.best_nmi <= 1 + 1e-9)).all()
    np.testing.assert_allclose(cube.mig, cube.gap.mean("factor"))
    assert (cube.steps_per_s > 0).all() and cube.attrs["n_eval_images"] == 200
    # seed 0 and seed 1 start from different random encoders
    assert not np.allclose(cube.nmi.sel(seed=0, encoder="random"), cube.nmi.sel(seed=1, encoder="random"))


def test_cube_round_trip(cube, tmp_path):
    path = write_cube(
        cube, tmp_path / "dsprites.nc", kind="dsprites", config={"dsprites": {}}, scale="tiny", device="cpu"
    )
    back = read_cube(path, kind="dsprites")
    assert set(back.data_vars) == set(cube.data_vars)
    for k in cube.data_vars:  # floats come back as float32, integers exactly
        np.testing.assert_allclose(back[k].values, cube[k].values, rtol=1e-6, atol=1e-6, err_msg=k)
        assert back[k].dims == cube[k].dims
    np.testing.assert_array_equal(back.winner.values, cube.winner.values)


def test_killed_and_resumed_training_gives_the_identical_cube(tmp_path):
    """What the pipeline keeps: the evaluation cube of a run killed mid-way and resumed from its
    checkpoint equals that of the uninterrupted run (wall-clock timings aside)."""
    from vbmi.results import drop_timings

    ds = D.from_renderer(np.random.default_rng(1).choice(D.N_IMAGES, 120, replace=False))
    cfg = T.TrainConfig(**{**CFG.__dict__, "steps": 6, "checkpoint_every_s": 0.0})
    whole, killed = tmp_path / "whole.pt", tmp_path / "killed.pt"
    T.train(ds, cfg, device="cpu", checkpoint=whole, progress=False)
    assert T.train(ds, cfg, device="cpu", checkpoint=killed, stop_at=3, progress=False).step == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint not resumed (mismatch, damage) warns: fail on it
        T.train(ds, cfg, device="cpu", checkpoint=killed, progress=False)  # the rerun resumes at step 3
    a = drop_timings(E.build_cube(ds, {0: whole}, n_eval=100, device="cpu"))
    b = drop_timings(E.build_cube(ds, {0: killed}, n_eval=100, device="cpu"))
    assert float(a.nmi.sel(encoder="trained").std()) > 0  # scores of a trained encoder, not a constant
    xr.testing.assert_identical(a, b)
