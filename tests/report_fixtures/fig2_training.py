"""Fixture cubes for reports/fig2_training.py (see _training_cubes.py).

Two runs are edited after training so that the page's two ways of showing a broken run are exercised:
one run's estimate explodes to -3.4e7 nats (leaves the plotted range: marked at the edge) and one run
diverged at step 7 (NaN from there on, ``diverged_step = 7``: tables say "diverged at step 7"). Both are
in the first part (separable critic, 4 steps per level); the joint parts train 3 steps per level, so the
page must read every part with its own schedule.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _training_cubes import CONFIG, fig2_cubes  # noqa: E402

from vbmi.results import read_cube, write_cube  # noqa: E402

DIVERGED_STEP = 7


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    paths = fig2_cubes(tmp_dir)
    ds = read_cube(paths[0], kind="training").load()
    assert ds.critic.values.tolist() == ["separable"] and ds.attrs["steps_per_level"] == 4
    where = dict(critic=ds.critic.values[0], dataset=ds.dataset.values[0], seed=ds.seed.values[0])
    est = ds.estimate.copy()
    est.loc[dict(bound="js", **where, step=ds.step.values[8:])] = -3.4e7  # exploded, never flagged
    est.loc[dict(bound="tuba", **where, step=ds.step.values[DIVERGED_STEP:])] = np.nan
    div = ds.diverged_step.copy()
    div.loc[dict(bound="tuba", **where)] = DIVERGED_STEP
    ds = ds.assign(estimate=est, diverged_step=div)
    attrs = {k: v for k, v in ds.attrs.items()
             if k not in ("vbmi_cube_kind", "created_at", "vbmi_version", "torch_version", "git_commit", "config_json",
                          "scale", "device")}
    ds.attrs = attrs
    write_cube(ds, paths[0], kind="training", config=CONFIG, scale="tiny", device="cpu")
    return {"fig2_cubes": paths}
