"""Fixture cube for reports/montecarlo.py: the real Fig. 3 driver on a tiny grid (about a second)."""

from __future__ import annotations

import pathlib

from vbmi.experiments.montecarlo import simulate
from vbmi.results import write_cube

CONFIG = {"scale": "tiny", "device": "cpu", "montecarlo": {"replicates": 8}}


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    # MI past log K + 1 at two levels for K = 8, so the NCE slope sentence has something to fit
    ds = simulate([0.0, 1.0, 4.0, 8.0], [8, 16], [0.0, 0.01, 0.5, 1.0], replicates=8, max_replicates=16, seed=0)
    path = write_cube(ds, tmp_dir / "montecarlo.nc", kind="montecarlo", config=CONFIG, scale="tiny", device="cpu")
    return {"mc_cube": str(path)}
