"""Fixture cube for reports/gradients.py: the real Fig. 4 driver on a tiny grid (about a second)."""

from __future__ import annotations

import pathlib

from vbmi.experiments.gradients import simulate_gradients
from vbmi.results import write_cube

CONFIG = {"scale": "tiny", "device": "cpu", "gradients": {"replicates": 8}}


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    ds = simulate_gradients([1.0, 8.0], [8, 16], [0.0, 0.5, 1.0], replicates=8, max_replicates=16, seed=0)
    path = write_cube(ds, tmp_dir / "gradients.nc", kind="gradients", config=CONFIG, scale="tiny", device="cpu")
    return {"grad_cube": str(path)}
