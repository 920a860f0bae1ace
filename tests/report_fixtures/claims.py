"""Fixture for reports/claims.py: claims.json computed from small synthetic cubes (tests/test_claims.py
builds the same cubes) where some claims hold, one does not, and the dSprites stage was not run."""

from __future__ import annotations

import pathlib
import sys

from vbmi.claims import evaluate_claims
from vbmi.results import write_json

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import test_claims as synthetic  # noqa: E402


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    cubes = {"fig2": [synthetic.fig2_cube()], "sweep": synthetic.sweep_cube(), "montecarlo": synthetic.mc_cube(),
             "gradients": synthetic.grad_cube(trend="reversed")}
    path = write_json([r.to_dict() for r in evaluate_claims(cubes)], tmp_dir / "claims.json")
    # The cube parameters are only listed on the page; point them at the JSON (a file that exists).
    return {"claims_json": str(path), "fig2_cubes": [str(path)], "sweep_cubes": [str(path)],
            "montecarlo_cubes": [str(path)], "gradients_cubes": [str(path)], "dsprites_cubes": []}
