"""The ablation probe tool (vbmi.dsprites.ablate) and the record it keeps."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from vbmi.dsprites import ablate as A
from vbmi.dsprites import data as D


def test_overrides_parse_into_the_nested_config():
    assert A.parse_overrides(["lr=3e-4", "objective.tc_lower=max", "objective.tc_fixed=true"]) == {
        "lr": 3e-4,
        "objective": {"tc_lower": "max", "tc_fixed": True},
    }
    with pytest.raises(ValueError, match="not key=value"):
        A.parse_overrides(["lr"])


def test_a_probe_writes_its_json_and_one_record_row(tmp_path):
    ds = D.from_renderer(np.random.default_rng(0).choice(D.N_IMAGES, 96, replace=False))
    cache = D.write_cache(ds, tmp_path / "c.npz")
    record = tmp_path / "record.csv"
    args = ["--data", str(cache), "--steps", "3", "--n-eval", "96", "--out", str(tmp_path / "out")]
    args += ["--record", str(record)]
    A.main(["--name", "p1", *args, "--set", "batch_size=8", "--set", "objective.tc_ramp_start=1"])
    A.main(["--name", "p1", *args, "--set", "batch_size=8"])  # same name: the row is replaced, not duplicated
    rows = list(csv.DictReader(open(record)))
    assert [r["name"] for r in rows] == ["p1"] and rows[0]["overrides"] == "batch_size=8"
    assert rows[0]["steps"] == "3" and 0 <= float(rows[0]["best_pos_x"]) <= 1
    assert (tmp_path / "out" / "p1.json").is_file()
    # scoring an existing checkpoint gives the same scores as the probe that trained it
    A.main(["--name", "p2", *args, "--score-checkpoint", str(tmp_path / "out" / "p1.pt")])
    rows = {r["name"]: r for r in csv.DictReader(open(record))}
    assert rows["p2"]["best_pos_x"] == rows["p1"]["best_pos_x"] and rows["p2"]["steps"] == "3"


def test_the_committed_record_has_every_column():
    rows = list(csv.DictReader(open(A.RECORD)))
    assert rows and set(rows[0]) == set(A.COLUMNS)
