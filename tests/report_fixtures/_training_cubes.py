"""Small but real training/sweep cubes for the report notebooks (fig2_training, table3_sweep,
fig6_fig7): the same code path as the workflow scripts (train_ensemble -> result_to_dataset -> write_cube),
with tiny critics and a few steps per level, so every bound, critic, dataset and report cell is exercised.
Joint critics train on their own, shorter schedule (``joint_steps_per_level``, as the workflow's Fig. 2
jobs do), so the Fig. 2 parts have different step axes."""

from __future__ import annotations

import pathlib

import xarray as xr

from vbmi.experiments.plan import fig2_part_config
from vbmi.experiments.sweep import fig2_dataset, fig2_parts, level_summary, sweep_parts, sweep_specs
from vbmi.experiments.training import result_to_dataset, train_ensemble
from vbmi.results import write_cube

BOUNDS = [{"bound": b} for b in ("nwj", "tuba", "dv", "mine", "js", "nce", "smile")] + [
    {"bound": "interpolated", "alpha": a} for a in (0.01, 0.5, 0.99)
]
TRAINING = dict(steps_per_level=4, joint_steps_per_level=3, levels=[2.0, 4.0, 6.0, 8.0, 10.0], bounds=BOUNDS, critics=["separable", "joint"],
                datasets=["gaussian", "cubic"], seeds=1, batch_size=8, hidden=8, layers=1, embed_dim=4,
                activation="relu", lr=1e-3, smile_tau=5.0, cubic_weight_std=20**-0.5, cubic_seed=0, data_block=4,
                checkpoint_every_s=120, ema_span=3)
SWEEP = dict(steps_per_level=4, levels=[2.0, 4.0, 6.0, 8.0, 10.0], tail_steps=2, figure_levels=[2.0, 6.0, 10.0],
             bounds=[{"bound": "interpolated", "alpha": 0.01}, {"bound": "interpolated", "alpha": 0.5},
                     {"bound": "nce"}, {"bound": "js"}, {"bound": "nwj"}],
             interpolation_bounds=[{"bound": "interpolated_linear", "alpha": 0.5},
                                   {"bound": "interpolated_product", "alpha": 0.5}],
             known_bounds=["tnce", "nwj_reparam"], datasets=["gaussian", "cubic"],
             grid=dict(lr=[1e-3], critic=["separable", "joint"], layers=[1], hidden=[8], activation=["relu"],
                       batch_size=[8, 16]),
             n_configs=None, joint_max_batch_size=8, embed_dim=4, seeds=1, cubic_weight_std=20**-0.5, cubic_seed=0,
             data_block=4, max_members_per_job=30, max_cost_per_job=3e9, checkpoint_every_s=120)
CONFIG = {"scale": "tiny", "seed": 0, "training": TRAINING, "sweep": SWEEP}


def _train(specs, cfg):
    return train_ensemble(specs, steps_per_level=cfg["steps_per_level"], levels=cfg["levels"], device="cpu",
                          cubic_weight_std=cfg["cubic_weight_std"], data_block=cfg["data_block"], progress=False)


def fig2_cubes(tmp_dir: pathlib.Path) -> list[str]:
    paths = []
    for part, specs in fig2_parts(TRAINING, 0).items():
        ds = fig2_dataset(result_to_dataset(_train(specs, fig2_part_config(TRAINING, part)), extra_attrs={"ema_span": TRAINING["ema_span"]}))
        paths.append(str(write_cube(ds, tmp_dir / f"fig2_{part}.nc", kind="training", config=CONFIG, scale="tiny",
                                    device="cpu")))
    return paths


def sweep_cube(tmp_dir: pathlib.Path) -> str:
    specs = sweep_specs(SWEEP, 0)
    parts = []
    for indices in sweep_parts(SWEEP, 0):
        ds = result_to_dataset(_train([specs[i] for i in indices], SWEEP), labels=[f"c{i:05d}" for i in indices])
        summary = level_summary(ds, SWEEP["tail_steps"])
        parts.append(ds.merge(summary).drop_vars("max_abs_score").assign_attrs(summary.attrs))
    ds = xr.concat(parts, dim="config", data_vars="minimal", coords="minimal", compat="override",
                   combine_attrs="drop_conflicts").sortby("config")
    ds.attrs = {"steps_per_level": SWEEP["steps_per_level"], "levels": SWEEP["levels"], "tail_steps": 2,
                "figure_levels": SWEEP["figure_levels"], "jobs": len(parts), "timing_wall_s_total": 1.0}
    return str(write_cube(ds, tmp_dir / "sweep.nc", kind="sweep", config=CONFIG, scale="tiny", device="cpu"))
