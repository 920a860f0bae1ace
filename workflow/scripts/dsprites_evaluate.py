"""Score every trained dSprites encoder beside its random initialisation; write the `dsprites` cube."""

from _script import resolve_device, save_cube, setup
from vbmi.dsprites import data as D
from vbmi.dsprites.experiment import build_cube

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
p = snakemake.params  # noqa: F821
cfg = config["dsprites"]
device = resolve_device(config)
ds = D.from_cache(snakemake.input.data)  # noqa: F821
cube = build_cube(
    ds,
    dict(zip(p.seeds, snakemake.input.models)),
    n_eval=cfg["n_eval"],
    eval_seed=config["seed"],
    bins=cfg["bins"],
    device=device,
)
print(cube[["best_nmi", "gap", "mig"]].to_dataframe().to_string())
save_cube(snakemake, cube, kind="dsprites", device=device)  # noqa: F821
