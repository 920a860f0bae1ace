"""vbmi.results: the one door to disk (round trip, provenance, conventions, clear errors)."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
import xarray as xr

from vbmi.results import (
    KIND_ATTR,
    PROVENANCE_ATTRS,
    CubeError,
    as_cube,
    cube_config,
    read_cube,
    write_cube,
)

META = {"units": "nat", "long_name": "MI estimate", "description": "Per-step bound value."}


def _example(rng_seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(rng_seed)
    estimate = rng.normal(size=(2, 3, 4))
    estimate[0, 0, 0] = np.nan  # a diverged run stays NaN through the round trip
    return xr.Dataset(
        {
            "estimate": (("bound", "seed", "step"), estimate, META),
            "diverged_at": (
                ("bound", "seed"),
                np.array([[3, -1, -1], [-1, -1, 2]]),
                {"units": "1", "long_name": "divergence step", "description": "-1: never"},
            ),
            "diverged": (
                ("bound",),
                np.array([True, False]),
                {"units": "1", "long_name": "any seed diverged", "description": "flag"},
            ),
        },
        coords={
            "bound": ["nce", "alpha"],
            "seed": [0, 1, 2],
            "step": np.arange(4) * 10,
            "true_mi": ("step", np.array([2.0, 4.0, 6.0, 8.0]), {"units": "nat"}),
            "alpha": ("bound", [0.01, 0.5]),
        },
        attrs={"task": "gaussian", "dim": 20},
    )


CONFIG = {"seed": 7, "training": {"steps": 10, "alpha": [0.01, 0.5]}, "device": "auto"}


def test_round_trip_is_identical(tmp_path: pathlib.Path) -> None:
    ds = _example()
    path = write_cube(ds, tmp_path / "deep" / "dir" / "c.nc", kind="training", config=CONFIG, scale="tiny", device="cpu")
    assert path == tmp_path / "deep" / "dir" / "c.nc"
    back = read_cube(path, kind="training")
    expected = as_cube(ds, kind="training", config=CONFIG, scale="tiny", device="cpu", created_at=back.attrs["created_at"])
    xr.testing.assert_identical(back, expected)
    # what was stored: float data as float32, labels as str so .sel reads like the config
    assert back["estimate"].dtype == np.float32
    assert back["true_mi"].dtype == np.float64  # coordinates keep their dtype (exact .sel)
    assert back["diverged"].dtype == bool
    assert back["bound"].dtype.kind == "U"
    assert float(back["estimate"].sel(bound="alpha", seed=1, step=20)) == pytest.approx(
        float(ds["estimate"].sel(bound="alpha", seed=1, step=20)), rel=1e-6
    )
    assert back.sel(alpha=0.01).bound.item() == "nce"
    assert np.isnan(back["estimate"][0, 0, 0])
    # the caller's dataset is untouched
    assert ds["estimate"].dtype == np.float64 and KIND_ATTR not in ds.attrs


def test_provenance_attrs(tmp_path: pathlib.Path) -> None:
    back = read_cube(write_cube(_example(), tmp_path / "c.nc", kind="montecarlo", config=CONFIG, scale="paper", device="cuda"))
    for key in PROVENANCE_ATTRS:
        assert isinstance(back.attrs[key], str) and back.attrs[key], key
    assert back.attrs[KIND_ATTR] == "montecarlo"
    assert back.attrs["scale"] == "paper" and back.attrs["device"] == "cuda"
    assert cube_config(back) == CONFIG
    assert json.loads(back.attrs["config_json"])["training"]["alpha"] == [0.01, 0.5]
    import torch

    assert back.attrs["torch_version"] == torch.__version__
    assert back.attrs["created_at"].endswith("+00:00")
    assert back.attrs["task"] == "gaussian"  # the caller's attrs are kept


def test_floats_are_compressed_float32(tmp_path: pathlib.Path) -> None:
    ds = xr.Dataset({"x": (("step",), np.zeros(20000), META)}, coords={"step": np.arange(20000)})
    path = write_cube(ds, tmp_path / "z.nc", kind="k")
    with xr.open_dataset(path) as raw:
        assert raw["x"].encoding["zlib"] is True
        assert raw["x"].encoding["dtype"] == np.float32
    assert path.stat().st_size < 20000 * 4  # zeros compress; raw float32 would be 80 kB


def test_same_inputs_same_cube_except_created_at(tmp_path: pathlib.Path) -> None:
    a = read_cube(write_cube(_example(1), tmp_path / "a.nc", kind="k", config=CONFIG))
    b = read_cube(write_cube(_example(1), tmp_path / "b.nc", kind="k", config=CONFIG))
    xr.testing.assert_identical(a.drop_attrs(deep=False).assign_attrs(), b.drop_attrs(deep=False).assign_attrs())
    assert {k: v for k, v in a.attrs.items() if k != "created_at"} == {
        k: v for k, v in b.attrs.items() if k != "created_at"
    }


@pytest.mark.parametrize("missing", ["units", "long_name", "description"])
def test_variable_without_metadata_is_rejected(tmp_path: pathlib.Path, missing: str) -> None:
    ds = _example()
    del ds["estimate"].attrs[missing]
    with pytest.raises(ValueError, match=rf"'estimate'.*{missing}"):
        write_cube(ds, tmp_path / "c.nc", kind="k")
    assert not any(tmp_path.iterdir())  # nothing written, not even a temp file


def test_bad_dimensions_are_rejected(tmp_path: pathlib.Path) -> None:
    ds = xr.Dataset({"x": (("batchSize",), np.zeros(2), META)}, coords={"batchSize": [1, 2]})
    with pytest.raises(ValueError, match="batchSize.*snake_case"):
        write_cube(ds, tmp_path / "c.nc", kind="k")
    ds = xr.Dataset({"x": (("replicate",), np.zeros(2), META)})
    with pytest.raises(ValueError, match="'replicate' has no coordinate"):
        write_cube(ds, tmp_path / "c.nc", kind="k")


def test_unstorable_attrs_are_rejected(tmp_path: pathlib.Path) -> None:
    ds = _example().assign_attrs(flag=True)
    with pytest.raises(ValueError, match="'flag'"):
        write_cube(ds, tmp_path / "c.nc", kind="k")
    with pytest.raises(ValueError, match="kind"):
        write_cube(_example(), tmp_path / "c.nc", kind="Not A Kind")


def test_failed_write_leaves_no_partial_cube(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "c.nc"
    write_cube(_example(0), target, kind="k")
    before = target.read_bytes()

    def boom(self: xr.Dataset, *args: object, **kwargs: object) -> None:
        pathlib.Path(args[0]).write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_cube(_example(1), target, kind="k")
    assert target.read_bytes() == before  # the old cube is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nc"]  # temp file removed


def test_read_cube_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(CubeError, match="no such cube file"):
        read_cube(tmp_path / "missing.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_text("not netcdf at all")
    with pytest.raises(CubeError, match="not a readable netCDF"):
        read_cube(garbage)
    plain = tmp_path / "plain.nc"
    _example().to_netcdf(plain)
    with pytest.raises(CubeError, match="not a vbmi cube"):
        read_cube(plain)
    cube = write_cube(_example(), tmp_path / "cube.nc", kind="training")
    with pytest.raises(CubeError, match="is a 'training' cube, expected kind 'dsprites'"):
        read_cube(cube, kind="dsprites")
    assert issubclass(CubeError, ValueError)


def test_read_cube_releases_the_file(tmp_path: pathlib.Path) -> None:
    path = write_cube(_example(), tmp_path / "c.nc", kind="k")
    ds = read_cube(path)
    os.replace(write_cube(_example(1), tmp_path / "d.nc", kind="k"), path)  # rewriting while ds is alive works
    assert ds["estimate"].values.shape == (2, 3, 4)


def test_object_and_bytes_labels_come_back_as_str(tmp_path: pathlib.Path) -> None:
    ds = xr.Dataset(
        {
            "x": (("critic",), np.array([1.0, 2.0]), META),
            "winner": (("critic",), np.array(["a", "bb"], dtype=object), {**META, "units": "1"}),
        },
        coords={"critic": np.array([b"separable", b"joint"]), "label": ("critic", np.array(["s", "j"], dtype=object))},
    )
    back = read_cube(write_cube(ds, tmp_path / "c.nc", kind="k"))
    for name in ("critic", "label", "winner"):
        assert back[name].dtype.kind == "U", name
    assert back.sel(critic="joint")["winner"].item() == "bb"
    xr.testing.assert_identical(back, as_cube(ds, kind="k", created_at=back.attrs["created_at"]))


def test_drop_timings_keeps_what_must_reproduce(tmp_path: pathlib.Path) -> None:
    from vbmi.results import TIMING_ATTR, drop_timings

    def run(seconds: float) -> xr.Dataset:
        ds = _example().assign(
            train_seconds=(("seed",), np.full(3, seconds), {**META, "units": "s", TIMING_ATTR: "wall-clock"})
        )
        ds.attrs["timing_wall_s"] = 2 * seconds
        return read_cube(write_cube(ds, tmp_path / f"{seconds}.nc", kind="k", config=CONFIG))

    a, b = run(1.5), run(2.5)
    with pytest.raises(AssertionError):
        xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(drop_timings(a), drop_timings(b))
    assert "train_seconds" not in drop_timings(a) and "estimate" in drop_timings(a)
    assert "created_at" not in drop_timings(a).attrs and "created_at" in a.attrs  # input untouched
    assert "timing_wall_s" not in drop_timings(a).attrs and drop_timings(a).attrs["task"] == "gaussian"
    b.attrs["wall_s"] = 1.0  # an unmarked timing is a reproducibility failure
    with pytest.raises(AssertionError):
        xr.testing.assert_identical(drop_timings(a), drop_timings(b))
