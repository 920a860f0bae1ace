"""Fixture cubes for reports/about.py: a run_info cube and one stage cube from the same 'run'."""

from __future__ import annotations

import pathlib

import numpy as np
import xarray as xr

from vbmi.results import run_info_dataset, write_cube

CONFIG = {"scale": "tiny", "device": "cpu", "activate": {"training": True, "dsprites": False}, "report": {}}


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    info = write_cube(
        run_info_dataset(CONFIG["activate"], threads_per_job=1, device="cpu"),
        tmp_dir / "run_info.nc",
        kind="run_info",
        config=CONFIG,
        scale="tiny",
        device="cpu",
    )
    stage = xr.Dataset(
        {"estimate": (("step",), np.linspace(0.0, 2.0, 5), {"units": "nat", "long_name": "estimate", "description": "fake"})},
        coords={"step": np.arange(5)},
    )
    other = write_cube(stage, tmp_dir / "training.nc", kind="training", config=CONFIG, scale="tiny", device="cpu")
    # a cube from another scale, to exercise the mismatch warning
    stale = write_cube(stage, tmp_dir / "stale.nc", kind="training", config=CONFIG, scale="paper", device="cuda")
    return {"run_info_cube": str(info), "cube_paths": [str(other), str(stale)]}
