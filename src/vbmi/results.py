"""The one door to disk: every experiment's result cube goes through :func:`write_cube`.

A *cube* is an :class:`xarray.Dataset` saved as netCDF4 with one encoding policy and one set of
provenance attributes, so a figure can always be traced back to the code, config, scale and device
that produced it (model: ArviZ ``make_attrs`` and its single ``to_netcdf`` policy).

Conventions enforced by :func:`write_cube` (it raises ``ValueError`` naming every violation):

* dimensions are singular ``snake_case`` (``bound``, ``critic``, ``seed``, ``step``, ``alpha``)
  and every dimension has a coordinate whose values are the config labels, so
  ``cube.sel(bound="nce", critic="separable")`` reads like the config;
* every data variable carries non-empty ``units``, ``long_name`` and ``description`` attributes
  (``units="nat"`` for MI estimates, ``"1"`` for dimensionless numbers);
* floating-point data variables are stored as float32 with zlib compression; coordinates keep
  their dtype, so ``cube.sel(alpha=0.01)`` still matches exactly after a round trip;
* ground truth is a coordinate (``true_mi(step)``), not a loose variable;
* wall-clock measurements (seconds, steps per second) are marked: a data variable with the
  attribute ``vbmi_timing="wall-clock"`` (``TIMING_ATTR``), a dataset attribute by a name starting
  with ``timing_`` (``TIMING_PREFIX``, e.g. ``timing_wall_s``). Everything else must be identical
  when the same config and seed are rerun, which the pipeline test checks after :func:`drop_timings`.

The file is written to a temporary name in the target directory and moved into place with
:func:`os.replace`, so a job that fails never leaves a partial cube behind.

Provenance attributes added to every cube (``PROVENANCE_ATTRS``): ``vbmi_cube_kind``,
``created_at`` (UTC, ISO 8601), ``vbmi_version``, ``torch_version``, ``git_commit`` (``"unknown"``
outside a git checkout), ``config_json`` (the resolved config as a JSON string, since netCDF
attributes cannot hold mappings; read it back with :func:`cube_config`), ``scale`` and ``device``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pathlib
import re
import subprocess
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np
import xarray as xr

from .train.checkpoint import atomic_write

__all__ = [
    "CubeError",
    "KIND_ATTR",
    "PROVENANCE_ATTRS",
    "TIMING_ATTR",
    "TIMING_PREFIX",
    "REQUIRED_VARIABLE_ATTRS",
    "as_cube",
    "cube_config",
    "drop_timings",
    "run_info_dataset",
    "read_cube",
    "write_cube",
]

KIND_ATTR = "vbmi_cube_kind"
PROVENANCE_ATTRS = (
    KIND_ATTR,
    "created_at",
    "vbmi_version",
    "torch_version",
    "git_commit",
    "config_json",
    "scale",
    "device",
)
REQUIRED_VARIABLE_ATTRS = ("units", "long_name", "description")
# Wall-clock measurements are the only things allowed to differ when the same config and seed are rerun
# (see drop_timings): a data variable holding them carries the attribute {TIMING_ATTR: "wall-clock"};
# a dataset attribute holding one is named with TIMING_PREFIX (timing_wall_s, timing_steps_per_s).
TIMING_ATTR = "vbmi_timing"
TIMING_PREFIX = "timing_"
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_ENGINE = "netcdf4"


class CubeError(ValueError):
    """A file is not a readable vbmi cube of the expected kind; the message says why."""


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _torch_version() -> str:
    try:
        import torch
    except ImportError:  # the report environment may read cubes without torch
        return "unknown"
    return str(torch.__version__)


def _git_commit() -> str:
    """HEAD of the checkout this module lives in, ``-dirty`` if it has local changes, else "unknown"."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40", "--match=NeVeRmAtCh"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "unknown"


def _check_layout(ds: xr.Dataset) -> None:
    problems: list[str] = []
    for dim in ds.dims:
        if not isinstance(dim, str) or not _SNAKE_CASE.match(dim):
            problems.append(f"dimension {dim!r} is not singular snake_case (e.g. 'batch_size')")
        elif dim not in ds.coords:
            problems.append(
                f"dimension {dim!r} has no coordinate; give it the config labels "
                f"(e.g. ds.assign_coords({dim}=[...]))"
            )
    for name, var in ds.data_vars.items():
        missing = [
            a
            for a in REQUIRED_VARIABLE_ATTRS
            if not isinstance(var.attrs.get(a), str) or not var.attrs[a].strip()
        ]
        if missing:
            problems.append(f"data variable {name!r} lacks non-empty attribute(s) {', '.join(missing)}")
    if problems:
        raise ValueError("cannot write cube:\n  - " + "\n  - ".join(problems))


def _check_attr_value(owner: str, key: str, value: Any) -> None:
    if isinstance(value, (bool, np.bool_)) or isinstance(value, Mapping) or value is None:
        raise ValueError(
            f"cannot write cube: attribute {key!r} of {owner} is {type(value).__name__}; "
            "netCDF attributes hold strings, numbers or 1-d arrays of them "
            "(use str/int, or json.dumps for structures)"
        )


def as_cube(
    ds: xr.Dataset,
    *,
    kind: str,
    config: Mapping[str, Any] | None = None,
    scale: str | None = None,
    device: str | None = None,
    created_at: str | None = None,
) -> xr.Dataset:
    """Return exactly the dataset :func:`write_cube` stores: checked, float32, provenance attached.

    ``read_cube(write_cube(ds, path, ...))`` is identical to ``as_cube(ds, ...)`` up to
    ``created_at`` (pass ``created_at`` to pin it). The caller's dataset is not modified.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray.Dataset, got {type(ds).__name__}")
    if not isinstance(kind, str) or not _SNAKE_CASE.match(kind):
        raise ValueError(f"cube kind must be a snake_case string, got {kind!r}")
    _check_layout(ds)
    for key, value in ds.attrs.items():
        _check_attr_value("the dataset", key, value)
    for name, var in ds.variables.items():
        for key, value in var.attrs.items():
            _check_attr_value(f"variable {name!r}", key, value)

    out = ds.copy(deep=False)
    for name, var in ds.data_vars.items():
        if np.issubdtype(var.dtype, np.floating) and var.dtype != np.float32:
            out[name] = var.astype(np.float32)
    # unicode labels survive netCDF as variable-length strings; turn bytes/object labels into str now
    # so the in-memory dtype equals what read_cube returns
    text = {
        name: var.copy(data=np.asarray(var.values, dtype=str))
        for name, var in out.variables.items()
        if var.dtype.kind in ("O", "S")
    }
    out = out.assign_coords({k: v for k, v in text.items() if k in out.coords})
    for name, var in text.items():
        if name not in out.coords:
            out[name] = var
    out.attrs = {
        **ds.attrs,
        KIND_ATTR: kind,
        "created_at": created_at
        or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vbmi_version": _package_version("vbmi"),
        "torch_version": _torch_version(),
        "git_commit": _git_commit(),
        "config_json": json.dumps(dict(config or {}), sort_keys=True, default=str),
        "scale": "unknown" if scale is None else str(scale),
        "device": "unknown" if device is None else str(device),
    }
    return out


def write_cube(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    kind: str,
    config: Mapping[str, Any] | None = None,
    scale: str | None = None,
    device: str | None = None,
) -> pathlib.Path:
    """Check ``ds``, attach provenance and write it atomically to ``path`` (netCDF4, float32 + zlib).

    Parents of ``path`` are created. Raises ``ValueError`` naming every dimension or variable that
    breaks the conventions in the module docstring. Returns the path written.
    """
    # One encoding policy: drop what variables inherited from a file they were read from. A string
    # coordinate read back carries encoding dtype '<U{longest}', and concatenated parts keep the first
    # part's, which would cut every longer label to that width on write ('separable' -> 'separ').
    cube = as_cube(ds, kind=kind, config=config, scale=scale, device=device).drop_encoding()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = {
        name: {"zlib": True, "complevel": 4}
        for name, var in cube.variables.items()
        if var.dtype.kind in "fiub"  # coordinates too: a 20k-step int64 axis is 160 kB raw
    }
    # Unique temporary name in the target directory, then os.replace; mode from the process umask.
    return atomic_write(path, lambda tmp: cube.to_netcdf(tmp, engine=_ENGINE, format="NETCDF4", encoding=encoding))


def read_cube(path: str | os.PathLike[str], kind: str | None = None) -> xr.Dataset:
    """Load a cube written by :func:`write_cube` fully into memory (the file is closed on return).

    Raises :class:`CubeError` if the file is missing, is not netCDF, is not a vbmi cube, or is a
    cube of a different ``kind`` than requested.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CubeError(f"{path}: no such cube file")
    try:
        with xr.open_dataset(path, engine=_ENGINE) as handle:
            ds = handle.load()
    except Exception as err:  # netCDF4/HDF5 raise OSError, xarray ValueError; both mean "not readable"
        raise CubeError(f"{path}: not a readable netCDF file ({type(err).__name__}: {err})") from err
    found = ds.attrs.get(KIND_ATTR)
    if not found:
        raise CubeError(
            f"{path}: not a vbmi cube (no {KIND_ATTR!r} attribute; write it with vbmi.results.write_cube)"
        )
    if kind is not None and found != kind:
        raise CubeError(f"{path}: is a {found!r} cube, expected kind {kind!r}")
    missing = [a for a in PROVENANCE_ATTRS if a not in ds.attrs]
    if missing:
        raise CubeError(f"{path}: vbmi cube lacks provenance attribute(s) {', '.join(missing)}")
    decoded = {
        name: var.copy(data=np.asarray(var.values, dtype=str))
        for name, var in ds.variables.items()
        if var.dtype.kind == "O"
    }
    coords = {k: v for k, v in decoded.items() if k in ds.coords}
    if coords:
        ds = ds.assign_coords(coords)
    for name, var in decoded.items():
        if name not in coords:
            ds[name] = var
    return ds


def cube_config(ds: xr.Dataset) -> dict[str, Any]:
    """The resolved config a cube was produced with (parsed from its ``config_json`` attribute)."""
    try:
        return json.loads(ds.attrs["config_json"])
    except KeyError as err:
        raise CubeError("dataset has no 'config_json' attribute; is it a vbmi cube?") from err


def run_info_dataset(active: Mapping[str, bool], *, threads_per_job: int, device: str) -> xr.Dataset:
    """The machine and software a pipeline run happens on, as a cube body (kind ``run_info``).

    ``active`` maps each stage name to whether it ran (config ``activate``); the report's about page and
    index read this cube to say which scale, device and environment produced the report.
    """
    import os
    import platform

    gpu = "none"
    if str(device).startswith("cuda"):
        import torch

        gpu = torch.cuda.get_device_name(torch.device(device))
    stages = list(active)
    return xr.Dataset(
        {
            "active": (
                ("stage",),
                np.array([bool(active[s]) for s in stages], dtype=bool),
                {
                    "units": "1",
                    "long_name": "stage switched on",
                    "description": "config activate.<stage>: whether the stage and its report section ran.",
                },
            )
        },
        coords={"stage": np.array(stages, dtype=str)},
        attrs={
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count() or 0,
            "gpu_name": gpu,
            "torch_threads_per_job": int(threads_per_job),
            "numpy_version": np.__version__,
            "xarray_version": xr.__version__,
        },
    )


def drop_timings(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without its wall-clock measurements (variables with attribute ``vbmi_timing``, dataset
    attributes named ``timing_*``) and without ``created_at``: what must be identical between two runs
    of the same config and seed."""
    timed = [name for name, var in ds.variables.items() if TIMING_ATTR in var.attrs]
    out = ds.drop_vars(timed)
    out.attrs = {
        k: v for k, v in ds.attrs.items() if k != "created_at" and not k.startswith(TIMING_PREFIX)
    }
    return out


# ---- JSON results (claims page; added with vbmi.claims) ----------------------------------------------
__all__ += ["write_json"]  # noqa: PLE0605


def write_json(obj: Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``obj`` as indented, strict JSON (no NaN/Infinity) atomically to ``path``; parents are created.

    Like :func:`write_cube`, the file appears under its name only once complete (temporary file in the
    same directory, then :func:`os.replace`), so a failed job never leaves half a file behind.
    """
    text = json.dumps(obj, indent=1, allow_nan=False)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))
# ---- end JSON results ------------------------------------------------------------------------------------
