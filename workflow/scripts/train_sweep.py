"""Sweep (Table 3, Figs. 6-7): train one job's share of the configurations; write a `sweep_part` cube."""

from _script import resolve_device, save_cube, setup
from vbmi.experiments.plan import sweep_parts, sweep_specs
from vbmi.experiments.sweep import level_summary
from vbmi.train import checkpoint
from vbmi.experiments.training import result_to_dataset, train_from_config

config = setup(snakemake)  # noqa: F821 (injected by Snakemake); params.config: sweep, seed
cfg = config["sweep"]
device = resolve_device(config)
indices = sweep_parts(cfg, config["seed"])[int(snakemake.wildcards.part)]  # noqa: F821
all_specs = sweep_specs(cfg, config["seed"])
specs = [all_specs[i] for i in indices]
# The checkpoint goes only once the cube that depends on it is written: a kill before that resumes.
with checkpoint.removed_on_success(snakemake.params.checkpoint):  # noqa: F821
    result = train_from_config(specs, cfg, device=device, checkpoint_path=snakemake.params.checkpoint)  # noqa: F821
    print(f"{len(indices)} runs, {result.steps} steps, {result.wall_s:.1f} s, {result.meta['steps_per_s']:.1f} steps/s")
    ds = result_to_dataset(result, labels=[f"c{i:05d}" for i in indices])
    summary = level_summary(ds, cfg["tail_steps"])
    ds = ds.merge(summary).drop_vars("max_abs_score").assign_attrs(summary.attrs)  # per-step max|f|: Fig. 2 only
    save_cube(snakemake, ds, kind="sweep_part", device=device)  # noqa: F821
