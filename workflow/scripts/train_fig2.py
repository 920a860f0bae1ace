"""Fig. 2: train one (critic, dataset) share of the bounds on the MI staircase; write a `training` cube."""

from _script import resolve_device, save_cube, setup
from vbmi.experiments.sweep import fig2_dataset, fig2_parts
from vbmi.experiments.training import result_to_dataset, train_from_config

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
cfg = config["training"]
device = resolve_device(config)
specs = fig2_parts(cfg, config["seed"])[snakemake.wildcards.part]  # noqa: F821
result = train_from_config(specs, cfg, device=device, checkpoint_path=snakemake.params.checkpoint)  # noqa: F821
print(f"{len(specs)} runs, {result.steps} steps, {result.wall_s:.1f} s, {result.meta['steps_per_s']:.1f} steps/s")
ds = fig2_dataset(result_to_dataset(result, extra_attrs={"ema_span": cfg["ema_span"]}))
save_cube(snakemake, ds, kind="training", device=device)  # noqa: F821
