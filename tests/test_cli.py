"""`python -m vbmi`: JSON on stdout for .npz/.csv/.nc files, one error line on stderr for bad ones."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vbmi.__main__ import load_arrays, main
from vbmi.data import sample_gaussian

FAST = ["--steps", "30"]


@pytest.fixture(scope="module")
def xy():
    x, y = sample_gaussian(300, mi=0.8, d=2, generator=5)
    return x.numpy().astype(np.float64), y.numpy().astype(np.float64)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vbmi", *args], capture_output=True, text=True, env=env, timeout=120)


def _check_json(stdout: str, n: int) -> dict:
    out = json.loads(stdout)
    assert math.isfinite(out["value"]) and out["stderr"] > 0 and out["units"] == "nat"
    assert out["bound"] == "nce" and out["kind"] == "lower" and out["n"] == n
    assert out["n_train"] + out["n_val"] + out["n_test"] == n
    return out


def test_npz_subprocess(tmp_path, xy):
    """The real command, as a user runs it (one subprocess; the other formats go through main())."""
    f = tmp_path / "d.npz"
    np.savez(f, a=xy[0], b=xy[1])
    p = _run("estimate", str(f), "--x-key", "a", "--y-key", "b", *FAST)
    assert p.returncode == 0, p.stderr
    _check_json(p.stdout, 300)


def test_npz_default_keys_matches_library(tmp_path, xy, capsys):
    f = tmp_path / "d.npz"
    np.savez(f, x=xy[0], y=xy[1])
    assert main(["estimate", str(f), *FAST, "--seed", "2"]) == 0
    out = _check_json(capsys.readouterr().out, 300)
    from vbmi import estimate_mi

    assert out["value"] == estimate_mi(*xy, seed=2, max_steps=30, progress=False).value


def test_csv_names_and_positions(tmp_path, xy, capsys):
    df = pd.DataFrame({"x1": xy[0][:, 0], "x2": xy[0][:, 1], "y1": xy[1][:, 0], "y2": xy[1][:, 1]})
    f = tmp_path / "d.csv"
    df.to_csv(f, index=False)
    assert main(["estimate", str(f), "--x-cols", "x1,x2", "--y-cols", "2,3", *FAST]) == 0
    out = _check_json(capsys.readouterr().out, 300)
    assert out["config"]["x_dim"] == 2 and out["config"]["y_dim"] == 2


def test_csv_two_columns_default(tmp_path, xy, capsys):
    f = tmp_path / "d.csv"
    pd.DataFrame({"u": xy[0][:, 0], "v": xy[1][:, 0]}).to_csv(f, index=False)
    assert main(["estimate", str(f), *FAST, "--history"]) == 0
    out = _check_json(capsys.readouterr().out, 300)
    assert len(out["history"]["val"]) >= 1


def test_netcdf(tmp_path, xy, capsys):
    f = tmp_path / "d.nc"
    xr.Dataset({"x": (("sample", "dx"), xy[0]), "y": (("sample", "dy"), xy[1])}).to_netcdf(f)
    assert main(["estimate", str(f), *FAST]) == 0
    _check_json(capsys.readouterr().out, 300)
    x, y = load_arrays(f)
    np.testing.assert_array_equal(x, xy[0])


def test_bounds_listing(capsys):
    assert main(["bounds"]) == 0
    text = capsys.readouterr().out
    assert "nce" in text and "Eq. 10" in text and "loo_upper" in text
    assert main(["bounds", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["nce"]["kind"] == "lower" and rows["loo_upper"]["kind"] == "upper"
    assert rows["tnce"]["estimate_mi"] is False and rows["nwj"]["estimate_mi"] is True


def test_bad_file_subprocess(tmp_path):
    f = tmp_path / "broken.npz"
    f.write_bytes(b"this is not a zip file")
    p = _run("estimate", str(f))
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbmi: error:") and "broken.npz" in lines[0]


def _bad_npz(tmp_path, xy):
    f = tmp_path / "nan.npz"
    x = xy[0].copy()
    x[3, 1] = np.nan
    np.savez(f, x=x, y=xy[1])
    return f


@pytest.mark.parametrize(
    "make,extra,match",
    [
        (lambda p, xy: p / "missing.npz", [], "no such file"),
        (lambda p, xy: (p / "d.txt").write_text("1,2") and p / "d.txt", [], "unsupported file type '.txt'"),
        (lambda p, xy: np.savez(p / "k.npz", a=xy[0], b=xy[1]) or p / "k.npz", [], "no array 'x'; arrays: a, b"),
        (_bad_npz, [], "x contains NaN"),
        (lambda p, xy: np.savez(p / "m.npz", x=xy[0], y=xy[1][:-1]) or p / "m.npz", [], "same number of samples"),
        (lambda p, xy: np.savez(p / "o.npz", x=xy[0], y=xy[1]) or p / "o.npz", ["--bound", "tnce"],
         "cannot be estimated from samples alone"),
        (lambda p, xy: np.savez(p / "o.npz", x=xy[0], y=xy[1]) or p / "o.npz", ["--bound", "foo"],
         "unknown bound 'foo'; valid names:"),
        (lambda p, xy: np.savez(p / "o.npz", x=xy[0], y=xy[1]) or p / "o.npz", ["--bound", "interpolated",
                                                                                 "--alpha", "2"], "alpha"),
        (lambda p, xy: pd.DataFrame({"a": [1.0] * 50, "b": [2.0] * 50, "c": [3.0] * 50}).to_csv(p / "c.csv")
         or p / "c.csv", [], "say which are x and y with --x-cols/--y-cols"),
        (lambda p, xy: pd.DataFrame({"a": [1.0] * 50, "b": [2.0] * 50}).to_csv(p / "c.csv", index=False)
         or p / "c.csv", ["--x-cols", "a", "--y-cols", "zz"], "--y-cols: no column 'zz'"),
        (lambda p, xy: xr.Dataset({"x": ("s", xy[0][:, 0])}).to_netcdf(p / "v.nc") or p / "v.nc", [],
         "no variable 'y'"),
    ],
)
def test_bad_inputs_one_line(tmp_path, xy, capsys, make, extra, match):
    f = make(tmp_path, xy)
    assert main(["estimate", str(f), *FAST, *extra]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbmi: error:"), cap.err
    assert match in lines[0]


# ------------------------------------------------------------------------------------- CLI input cases
def test_headerless_csv_keeps_its_first_row(tmp_path, xy, capsys):
    f = tmp_path / "nohead.csv"
    np.savetxt(f, np.c_[xy[0][:, 0], xy[1][:, 0]], delimiter=",")
    x, y = load_arrays(f)
    assert x.shape == (300, 1) and x[0, 0] == pytest.approx(xy[0][0, 0])  # the first row is data
    assert "read as data (no header)" in capsys.readouterr().err
    assert main(["estimate", str(f), *FAST]) == 0
    out = _check_json(capsys.readouterr().out, 300)
    assert out["n"] == 300
    x2, _ = load_arrays(f, header="yes")  # forced: the first row is a header
    assert x2.shape == (299, 1)


def test_csv_with_header_is_detected(tmp_path, xy):
    f = tmp_path / "head.csv"
    pd.DataFrame({"u": xy[0][:, 0], "v": xy[1][:, 0]}).to_csv(f, index=False)
    x, _ = load_arrays(f)
    assert x.shape == (300, 1) and x[0, 0] == pytest.approx(xy[0][0, 0])


def test_column_named_0_vs_position_0_is_explicit(tmp_path, xy, capsys):
    f = tmp_path / "names.csv"
    pd.DataFrame({"a": xy[0][:, 0], "0": xy[1][:, 0], "b": xy[1][:, 1]}).to_csv(f, index=False)
    with pytest.raises(ValueError, match=r"'0' is ambiguous: it names column 1 and is also position 0 \(column 'a'\)"):
        load_arrays(f, x_cols="0", y_cols="b")
    x, _ = load_arrays(f, x_cols="#0", y_cols="b")  # position
    np.testing.assert_allclose(x[:, 0], xy[0][:, 0])
    x, _ = load_arrays(f, x_cols="=0", y_cols="b")  # name
    np.testing.assert_allclose(x[:, 0], xy[1][:, 0])
    assert main(["estimate", str(f), "--x-cols", "0", "--y-cols", "b", *FAST]) == 1
    assert "ambiguous" in capsys.readouterr().err


@pytest.mark.parametrize("extra,match", [
    (["--device", "tpu"], "device 'tpu' is not usable here"),
    (["--seed", str(2**70)], "seed must be an int in [0, 2**63)"),
    (["--method", "foo"], "unknown method 'foo'; valid: neural, ksg, cca"),
])
def test_more_bad_inputs_one_line(tmp_path, xy, capsys, extra, match):
    f = tmp_path / "d.npz"
    np.savez(f, x=xy[0], y=xy[1])
    assert main(["estimate", str(f), *FAST, *extra]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbmi: error:") and match in lines[0], lines


def test_float16_npz_and_baseline_methods(tmp_path, xy, capsys):
    f = tmp_path / "h.npz"
    np.savez(f, x=xy[0].astype(np.float16), y=xy[1].astype(np.float16))
    assert main(["estimate", str(f), *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    assert math.isfinite(out["value"]) and out["interval"][0] <= out["value"] <= out["interval"][1]
    assert 0 < out["p_value"] <= 1 and out["saturated"] is False
    assert main(["estimate", str(f), "--method", "cca"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "cca" and out["kind"] == "estimate"


def test_suite_subcommand(capsys):
    assert main(["suite", "--methods", "cca", "--tasks", "gauss-1x1,gauss-dense-3x3", "--n", "500", "--seeds", "0"]) == 0
    text = capsys.readouterr().out
    assert "gauss-dense-3x3" in text and "cca: " in text and "within max(0.1, 20%)" in text
