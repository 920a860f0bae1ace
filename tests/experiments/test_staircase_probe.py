"""examples/staircase_probe.py: the probe cited by config.yaml's sweep design parses specs strictly and
prints one row per run with the same numbers train_ensemble records."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parents[2] / "examples" / "staircase_probe.py"


def _module():
    spec = importlib.util.spec_from_file_location("staircase_probe", PROBE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_spec_parsing_types_and_errors():
    probe = _module()
    s = probe.parse_spec("interpolated@0.01/cubic,batch_size=512,activation=tanh,lr=0.0001")
    assert (s.bound, s.alpha, s.dataset, s.batch_size, s.activation, s.lr) == (
        "interpolated", 0.01, "cubic", 512, "tanh", 1e-4)
    with pytest.raises(SystemExit, match="unknown key 'batch'"):
        probe.parse_spec("nce/gaussian,batch=64")
    with pytest.raises(SystemExit, match="expected bound"):
        probe.parse_spec("nce")


def test_probe_prints_one_row_per_run():
    out = subprocess.run([sys.executable, str(PROBE), "--steps-per-level", "4", "nce/gaussian,batch_size=8,hidden=8",
                          "js/cubic,batch_size=8,hidden=8,activation=tanh"],
                         capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""}).stdout
    rows = [ln for ln in out.splitlines() if ln.startswith(("nce/", "js/"))]
    assert len(rows) == 2 and all(len(r.split()) == 7 for r in rows), out
    assert "4 steps per level, 2 runs" in out


def test_probe_prints_tail_variances_for_the_levels_asked():
    out = subprocess.run([sys.executable, str(PROBE), "--steps-per-level", "8", "--levels", "2", "6", "--stat", "variance",
                          "nce/gaussian,batch_size=8,hidden=8"],
                         capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""}).stdout
    header, row = [ln for ln in out.splitlines() if ln.startswith(("variance", "nce/"))]
    assert header.split()[1:3] == ["2", "6"]
    values = [float(v) for v in row.split()[1:3]]
    assert len(row.split()) == 4 and all(v >= 0 for v in values) and values[0] != values[1], out
    assert "8 steps per level, 1 runs" in out
