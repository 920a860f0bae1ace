"""Fixture cube for reports/table3_sweep.py (see _training_cubes.py).

Every I_NWJ run on the cubic task is marked diverged at step 10 (NaN from there, ``level_diverged``
from the level that ends after it), so Table 3 must show those cells as diverged, not as numbers.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _training_cubes import CONFIG, SWEEP, sweep_cube  # noqa: E402

from vbmi.results import read_cube, write_cube  # noqa: E402

DIVERGED_STEP = 10
PROVENANCE = ("vbmi_cube_kind", "created_at", "vbmi_version", "torch_version", "git_commit", "config_json", "scale",
              "device")


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    path = sweep_cube(tmp_dir)
    ds = read_cube(path, kind="sweep").load()
    hit = ((ds.bound == "nwj") & (ds.dataset == "cubic")).values
    assert hit.any(), "the sweep fixture has no cubic I_NWJ run"
    spl = SWEEP["steps_per_level"]
    ends = (np.arange(ds.sizes["level"]) + 1) * spl
    gone = ends > DIVERGED_STEP  # levels that end after the divergence
    est = ds.estimate.values.copy()
    est[hit, DIVERGED_STEP:] = np.nan
    div = ds.diverged_step.values.copy()
    div[hit] = DIVERGED_STEP
    lvl_div = ds.level_diverged.values.copy()  # (level, config)
    lvl_mean = ds.level_mean.values.copy()
    lvl_div[np.ix_(gone, hit)] = 1
    lvl_mean[np.ix_(gone, hit)] = np.nan
    ds = ds.assign(estimate=(ds.estimate.dims, est, ds.estimate.attrs),
                   diverged_step=(ds.diverged_step.dims, div, ds.diverged_step.attrs),
                   level_diverged=(ds.level_diverged.dims, lvl_div, ds.level_diverged.attrs),
                   level_mean=(ds.level_mean.dims, lvl_mean, ds.level_mean.attrs))
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in PROVENANCE}
    write_cube(ds, path, kind="sweep", config=CONFIG, scale="tiny", device="cpu")
    return {"sweep_cube": path}
