"""Record where and how this run happens (scale, device, versions, machine) as the `run_info` cube."""

from _script import resolve_device, save_cube, setup
from vbmi.results import run_info_dataset

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
device = resolve_device(config)
ds = run_info_dataset(config["activate"], threads_per_job=config["threads_per_job"], device=device)
print(ds)
save_cube(snakemake, ds, kind="run_info", device=device)  # noqa: F821
