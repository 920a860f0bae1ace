# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # About this run
#
# Which scale and device produced this report, from which code and config, and the provenance of
# every result cube behind its figures (`vbmi.results.write_cube` stamps each cube).

# %% tags=["parameters"]
run_info_cube = "results/cubes/run_info.nc"
cube_paths = []

# %% tags=["remove_cell"]
import json
import os

import pandas as pd
import yaml
from IPython.display import Markdown, display

from vbmi.results import cube_config, read_cube

info = read_cube(run_info_cube, kind="run_info")
config = cube_config(info)
# Sections may register non-cube inputs too (e.g. the claims page's claims.json): list, don't read them.
cubes = {path: read_cube(path) for path in cube_paths if str(path).endswith(".nc")}
other_inputs = [path for path in cube_paths if not str(path).endswith(".nc")]

# %% tags=["remove_input"]
scale_note = {
    "tiny": "**tiny** scale: a smoke test of every code path; the numbers are not meaningful.",
    "default": ("**default** scale: every figure and table, one seed; Fig. 2's separable critics at the "
                "notebook's full schedule, everything else reduced (each job's measured time: the performance page)."),
    "paper": "**paper** scale: the paper's steps, batch sizes, grids and seeds.",
}.get(info.attrs["scale"], f"**{info.attrs['scale']}** scale (see workflow/scales/).")
display(Markdown(f"This report was produced at the {scale_note}"))
facts = {
    "scale": info.attrs["scale"],
    "device": info.attrs["device"],
    "GPU": info.attrs["gpu_name"],
    "git commit": info.attrs["git_commit"],
    "vbmi": info.attrs["vbmi_version"],
    "torch": info.attrs["torch_version"],
    "numpy / xarray": f"{info.attrs['numpy_version']} / {info.attrs['xarray_version']}",
    "python": info.attrs["python_version"],
    "platform": info.attrs["platform"],
    "CPUs / torch threads per job": f"{info.attrs['cpu_count']} / {info.attrs['torch_threads_per_job']}",
    "recorded at (UTC)": info.attrs["created_at"],
}
display(pd.DataFrame({"value": facts}))

# %% [markdown]
# ## Stages

# %% tags=["remove_input"]
display(info["active"].to_series().map({True: "on", False: "off"}).to_frame("status"))

# %% [markdown]
# ## Result cubes and their provenance
#
# One row per cube used by a report section. A cube from another scale, commit or config than this
# run is flagged: its figures would not belong to this report.

# %% tags=["remove_input"]
root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in cubes]) if cubes else ""
rows = []
for path, cube in cubes.items():
    rows.append(
        {
            "cube": os.path.relpath(os.path.abspath(path), root),
            "kind": cube.attrs["vbmi_cube_kind"],
            "dims": ", ".join(f"{d}={n}" for d, n in cube.sizes.items()),
            "variables": len(cube.data_vars),
            "scale": cube.attrs["scale"],
            "device": cube.attrs["device"],
            "git commit": cube.attrs["git_commit"][:12],
            "created (UTC)": str(cube.attrs["created_at"])[:19].replace("T", " "),
        }
    )
if rows:
    pd.set_option("display.max_colwidth", None)
    display(Markdown(f"Paths relative to `{root}`; the variables of each cube are listed below the table."))
    display(pd.DataFrame(rows).set_index("cube"))
    display(Markdown("\n".join(f"- `{os.path.relpath(os.path.abspath(p), root)}`: " + ", ".join(c.data_vars)
                               for p, c in cubes.items())))
else:
    display(Markdown("No experiment stage has registered a section yet, so there are no cubes to list."))
if other_inputs:
    display(Markdown("Other inputs of the report (not cubes): " + ", ".join(f"`{p}`" for p in other_inputs) + "."))

mismatches = [
    f"`{path}`: {key} is `{cube.attrs[key]}`, this run's is `{info.attrs[key]}`"
    for path, cube in cubes.items()
    for key in ("scale", "git_commit")
    if cube.attrs[key] != info.attrs[key]
]


def _agrees(recorded, current):
    """A cube records the config keys its job read (params.config): do they hold in this run's config?"""
    if isinstance(recorded, dict):
        return isinstance(current, dict) and all(k in current and _agrees(v, current[k]) for k, v in recorded.items())
    return recorded == current


mismatches += [
    f"`{path}`: made with a different config than this run"
    for path, cube in cubes.items()
    if not _agrees(cube_config(cube), config)
]
display(Markdown("\n".join(f"- **Mismatch**: {m}" for m in mismatches)
                 or "All cubes come from this run's scale, commit and config."))

# %% [markdown]
# ## Resolved configuration
#
# `config.yaml` merged with any `--configfile` scale file and `--config` overrides, after schema
# defaults were filled in (what `snakemake` actually ran with).

# %% tags=["remove_input"]
display(Markdown("```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```"))
