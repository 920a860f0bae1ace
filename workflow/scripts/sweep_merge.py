"""Sweep: concatenate the jobs' `sweep_part` cubes into the one `sweep` cube the reports read."""

import xarray as xr
from _script import save_cube, setup
from vbmi.results import read_cube

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
parts = [read_cube(p, kind="sweep_part") for p in snakemake.input.parts]  # noqa: F821
ds = xr.concat(parts, dim="config", data_vars="minimal", coords="minimal", compat="override",
               combine_attrs="drop_conflicts").sortby("config")
ds.attrs = {k: v for k, v in parts[0].attrs.items() if k in ("steps_per_level", "levels", "tail_steps")}
ds.attrs["tail_steps"] = int(config["sweep"]["tail_steps"])
ds.attrs["figure_levels"] = [float(v) for v in config["sweep"]["figure_levels"]]
ds.attrs["timing_wall_s_total"] = float(sum(p.attrs["timing_wall_s"] for p in parts))
ds.attrs["jobs"] = len(parts)
print(ds)
save_cube(snakemake, ds, kind="sweep")  # noqa: F821
