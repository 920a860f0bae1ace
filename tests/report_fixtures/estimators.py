"""Fixture cube for reports/estimators.py: the real suite runner on two tasks, baselines only (a second)."""

from __future__ import annotations

import pathlib

from vbmi.results import write_cube
from vbmi.tasks import run_suite, suite_cube

CONFIG = {"scale": "tiny", "device": "cpu", "estimators": {"n_samples": 300}}


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    rows = run_suite(["cca", "ksg"], ["gauss-1x1", "student-2x2"], n=300, seeds=[0, 1])
    rows += run_suite(["neural"], ["gauss-1x1", "student-2x2"], n=300, seeds=[0, 1], max_steps=20)
    # A bias-corrected interval need not contain its estimate (CCA's basic bootstrap in high dimensions):
    # the page must draw it all the same.
    cca = next(r for r in rows if r["method"] == "cca")
    cca["lo"], cca["hi"] = cca["value"] - 0.2, cca["value"] - 0.1
    path = write_cube(suite_cube(rows), tmp_dir / "estimators.nc", kind="estimators", config=CONFIG, scale="tiny",
                      device="cpu")
    return {"est_cube": str(path)}
