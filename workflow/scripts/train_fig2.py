"""Fig. 2: train one (critic, dataset) share of the bounds on the MI staircase; write a `training` cube."""

from _script import resolve_device, save_cube, setup
from vbmi.experiments.plan import fig2_part_config, fig2_parts
from vbmi.experiments.sweep import fig2_dataset
from vbmi.train import checkpoint
from vbmi.experiments.training import result_to_dataset, train_from_config

config = setup(snakemake)  # noqa: F821 (injected by Snakemake); params.config: training, seed
cfg = config["training"]
device = resolve_device(config)
part = snakemake.wildcards.part  # noqa: F821
specs = fig2_parts(cfg, config["seed"])[part]
# The checkpoint goes only once the cube that depends on it is written: a kill before that resumes.
with checkpoint.removed_on_success(snakemake.params.checkpoint):  # noqa: F821
    result = train_from_config(specs, fig2_part_config(cfg, part), device=device,
                               checkpoint_path=snakemake.params.checkpoint)  # noqa: F821
    print(f"{len(specs)} runs, {result.steps} steps, {result.wall_s:.1f} s, {result.meta['steps_per_s']:.1f} steps/s")
    ds = fig2_dataset(result_to_dataset(result, extra_attrs={"ema_span": cfg["ema_span"]}))
    save_cube(snakemake, ds, kind="training", device=device)  # noqa: F821
