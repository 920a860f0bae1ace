"""workflow/scripts/sweep_merge.py keeps every label whole when the parts' labels differ in length.

The first part's fixed string width once cut `interpolated_linear` to `interpolated` and `separable`
to `separ` in the merged cube (a string coordinate read back from netCDF carries its width as
encoding, which concatenation kept; vbmi.results.write_cube now drops inherited encodings).
"""

from __future__ import annotations

import pathlib

import numpy as np
import xarray as xr

from vbmi.results import read_cube, write_cube

from _pipeline import run_workflow_script

PARTS = [  # short labels first: the width the old merge kept
    {"bound": ["nce", "js"], "critic": ["joint", "joint"], "bound_label": ["nce", "js"]},
    {
        "bound": ["interpolated_linear", "interpolated_product"],
        "critic": ["separable", "separable"],
        "bound_label": ["interpolated_linear_0.5", "interpolated_product_0.5"],
    },
]
CONFIG = {"scale": "test", "device": "cpu", "seed": 0, "sweep": {"tail_steps": 5, "figure_levels": [2.0]}}


def _part(labels: dict[str, list[str]], start: int) -> xr.Dataset:
    n = len(labels["bound"])
    attrs = {"units": "nat", "long_name": "estimate", "description": "level estimate"}
    return xr.Dataset(
        {"estimate": (("config",), np.arange(start, start + n, dtype=np.float32), attrs)},
        coords={
            "config": [f"c{start + i:05d}" for i in range(n)],
            **{k: ("config", np.array(v, dtype=str)) for k, v in labels.items()},
        },
        attrs={"steps_per_level": 10, "levels": [2.0, 4.0], "tail_steps": 5, "timing_wall_s": 1.0},
    )


def test_merge_keeps_labels_of_every_length(tmp_path: pathlib.Path) -> None:
    paths = []
    for i, labels in enumerate(PARTS):
        paths.append(write_cube(_part(labels, 2 * i), tmp_path / f"part{i}.nc", kind="sweep_part", config=CONFIG))
    merged = tmp_path / "sweep.nc"
    proc = run_workflow_script(
        "sweep_merge.py",
        log=tmp_path / "merge.log",
        input={"parts": [str(p) for p in paths]},
        output={"cube": str(merged)},
        params={"config": CONFIG},
    )
    assert proc.returncode == 0, proc.stderr + (tmp_path / "merge.log").read_text()
    cube = read_cube(merged, kind="sweep")
    for key in ("bound", "critic", "bound_label"):
        assert list(cube[key].values) == [v for part in PARTS for v in part[key]], key
    assert cube.sel(config="c00002").bound.item() == "interpolated_linear"
    assert cube.attrs["jobs"] == 2


def test_write_cube_ignores_a_string_width_read_from_disk(tmp_path: pathlib.Path) -> None:
    """The root cause, without the script: a coordinate carrying a shorter width from a read is not cut."""
    short = read_cube(write_cube(_part(PARTS[0], 0), tmp_path / "short.nc", kind="sweep_part"))
    longer = short.assign_coords(bound=("config", np.array(["separable", "interpolated_product"])))
    longer["bound"].encoding = dict(short["bound"].encoding)  # what xr.concat keeps from the first part
    again = read_cube(write_cube(longer, tmp_path / "long.nc", kind="sweep_part"))
    assert list(again.bound.values) == ["separable", "interpolated_product"]
