"""The checkpointed trainer: resuming from a checkpoint equals the uninterrupted run (vbmi.dsprites.train)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vbmi.dsprites import data as D
from vbmi.dsprites import train as T
from vbmi.dsprites.objective import ObjectiveConfig


@pytest.fixture(scope="module")
def ds():
    return D.from_renderer(np.random.default_rng(0).choice(D.N_IMAGES, 64, replace=False))


CFG = T.TrainConfig(
    steps=6,
    batch_size=8,
    lr=1e-3,
    seed=3,
    log_every=2,
    checkpoint_every_s=0.0,
    objective=ObjectiveConfig(tc_ramp_start=2, tc_ramp_steps=2, dual_lr=0.1),
)


def _params(r: T.TrainResult) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*r.encoder.parameters(), *r.log_q.parameters())]


def test_resume_equals_uninterrupted(ds, tmp_path):
    full = T.train(ds, CFG, device="cpu", progress=False)
    ckpt = tmp_path / "ckpt.pt"
    first = T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=3, progress=False)
    assert first.step == 3 and ckpt.is_file()
    st = torch.load(ckpt, weights_only=True)  # loads without unpickling code
    assert st["step"] == 3
    resumed = T.train(ds, CFG, device="cpu", checkpoint=ckpt, progress=False)
    assert resumed.step == full.step == 6
    for a, b in zip(_params(full), _params(resumed)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(full.lam, resumed.lam, rtol=0, atol=0)
    assert set(full.history) == {"step", *T.LOGGED}
    for k in full.history:
        np.testing.assert_array_equal(full.history[k], resumed.history[k])
    np.testing.assert_array_equal(full.history["step"], [2, 4, 6])
    assert np.isfinite(np.stack([full.history[k] for k in T.LOGGED])).all()
    assert full.history["tc_weight"][0] == 0.0 and full.history["tc_weight"][-1] == 1.0
    # a finished run resumed again does nothing more
    again = T.train(ds, CFG, device="cpu", checkpoint=ckpt, progress=False)
    for a, b in zip(_params(full), _params(again)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_seed_changes_the_run_and_config_mismatch_is_refused(ds, tmp_path):
    a = T.train(ds, CFG, device="cpu", progress=False)
    b = T.train(ds, T.TrainConfig(**{**CFG.__dict__, "seed": 4}), device="cpu", progress=False)
    assert not torch.equal(_params(a)[0], _params(b)[0])
    ckpt = tmp_path / "c.pt"
    T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=1, progress=False)
    other = T.TrainConfig(**{**CFG.__dict__, "lr": 5e-4})
    with pytest.raises(ValueError, match="different training config"):
        T.train(ds, other, device="cpu", checkpoint=ckpt, progress=False)
    fresh = T.train(ds, other, device="cpu", progress=False)
    restarted = T.train(ds, other, device="cpu", checkpoint=ckpt, progress=False, restart_on_mismatch=True)
    for x, y in zip(_params(fresh), _params(restarted)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_config_from_dict_round_trip():
    assert T.config_from_dict(CFG.to_dict()) == CFG
    with pytest.raises(TypeError):
        T.config_from_dict({"stepz": 3})
