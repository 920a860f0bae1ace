"""The data-change fault probe at the workflow level: after a data change, and under --forcerun, the rerun
of dsprites_train trains from step 0 (it used to "resume" the finished checkpoint for 0 steps)."""

from __future__ import annotations

import pathlib
import re

import pytest
import torch
import yaml

from _pipeline import DEFAULT_CONFIG, TINY_CONFIG, run_snakemake
from vbmi.dsprites import train as T

pytestmark = pytest.mark.slow  # three small snakemake runs, ~1 minute

ONLY_DSPRITES = {
    "activate": {"training": False, "sweep": False, "montecarlo": False, "gradients": False, "dsprites": True},
    "dsprites": {"n_images": 128, "steps": 4, "batch_size": 8, "n_eval": 128},
}


def _train(workdir: pathlib.Path, layer: pathlib.Path, *extra: str) -> tuple[str, dict]:
    model = "results/dsprites/seed0/model.pt"
    proc = run_snakemake(
        workdir, "--cores", "1", *extra, model, configfiles=(DEFAULT_CONFIG, TINY_CONFIG, layer), timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (workdir / "results" / "logs" / "dsprites" / "train_seed0.log").read_text()
    blob = torch.load(workdir / model, weights_only=True)
    return log, {"fingerprint": blob["fingerprint"], **T.load_checkpoint(workdir / model)}


def test_data_change_and_forcerun_retrain(tmp_path: pathlib.Path) -> None:
    layer = tmp_path / "layer.yaml"
    layer.write_text(yaml.safe_dump(ONLY_DSPRITES))
    work = tmp_path / "run"
    log, first = _train(work, layer)
    assert re.search(r"^4 steps in", log, re.MULTILINE), log
    assert not (work / "results" / "dsprites" / "seed0" / "checkpoint.pt").exists()  # removed once the model is written

    changed = {**ONLY_DSPRITES, "dsprites": {**ONLY_DSPRITES["dsprites"], "n_images": 160}}
    layer.write_text(yaml.safe_dump(changed))
    log, second = _train(work, layer)
    assert re.search(r"^4 steps in", log, re.MULTILINE), log  # retrained, not 0 steps
    assert "160 images" in log
    assert second["fingerprint"] != first["fingerprint"]
    assert not torch.equal(second["encoder"]["head.weight"], first["encoder"]["head.weight"])

    log, third = _train(work, layer, "--forcerun", "dsprites_train")
    assert re.search(r"^4 steps in", log, re.MULTILINE), log
    assert third["fingerprint"] == second["fingerprint"]
