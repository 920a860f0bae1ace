"""Fixture cube for reports/dsprites.py: two seeds trained for a few steps on 300 rendered images."""

from __future__ import annotations

import pathlib

import numpy as np

from vbmi.dsprites import data as D
from vbmi.dsprites import train as T
from vbmi.dsprites.experiment import build_cube
from vbmi.dsprites.objective import ObjectiveConfig
from vbmi.results import write_cube

CONFIG = {"scale": "tiny", "device": "cpu", "dsprites": {"tc_delta": 0.5, "smooth_gamma": 1.0}}


def build(tmp_dir: pathlib.Path) -> dict[str, str]:
    ds = D.from_renderer(np.random.default_rng(0).choice(D.N_IMAGES, 300, replace=False))
    ckpts = {}
    for seed in (0, 1):
        cfg = T.TrainConfig(
            steps=4, batch_size=8, log_every=2, seed=seed, objective=ObjectiveConfig(tc_ramp_start=1, tc_ramp_steps=2)
        )
        ckpts[seed] = tmp_dir / f"seed{seed}.pt"
        T.train(ds, cfg, device="cpu", checkpoint=ckpts[seed], progress=False)
    cube = build_cube(ds, ckpts, n_eval=300, device="cpu")
    # a 4-step encoder has no active latent: mark two so the Fig. 5 panel code runs too
    cube["active"].loc[{"encoder": "trained", "latent": [0, 3]}] = 1
    path = write_cube(cube, tmp_dir / "dsprites.nc", kind="dsprites", config=CONFIG, scale="tiny", device="cpu")
    return {"dsprites_cube": str(path)}
