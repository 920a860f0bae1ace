"""The checkpointed trainer: resuming from a checkpoint equals the uninterrupted run (vbmi.dsprites.train)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vbmi.dsprites import data as D
from vbmi.dsprites import train as T
from vbmi.dsprites.objective import ObjectiveConfig


CFG = T.TrainConfig(
    steps=6,
    batch_size=8,
    lr=1e-3,
    seed=3,
    log_every=2,
    checkpoint_every_s=0.0,
    objective=ObjectiveConfig(tc_ramp_start=2, tc_ramp_steps=2, dual_lr=0.1),
)


def _params(r: T.EncoderTrainResult) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*r.encoder.parameters(), *r.log_q.parameters())]


def test_a_damaged_model_file_is_named_when_read(ds, tmp_path):
    ckpt = tmp_path / "model.pt"
    T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=3, progress=False)
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # a truncated copy, as a killed copy or a full disk leaves
    with pytest.raises(ValueError, match=f"{ckpt} is unreadable"):
        T.load_checkpoint(ckpt)


def test_resume_equals_uninterrupted(ds, tmp_path):
    full = T.train(ds, CFG, device="cpu", progress=False)
    ckpt = tmp_path / "ckpt.pt"
    first = T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=3, progress=False)
    assert first.step == 3 and ckpt.is_file()
    st = torch.load(ckpt, weights_only=True)  # loads without unpickling code
    assert st["state"]["engine"]["step"] == 3  # the engine's layout: its state, ours under "extra"
    flat = T.load_checkpoint(ckpt)  # what evaluation reads: the flat layout of older files
    assert flat["step"] == 3 and flat["diverged_step"] == -1 and len(flat["history"]["step"]) == 1
    assert {"encoder", "log_q", "opt", "lam", "config", "seconds", "device"} <= set(flat)
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


def test_seed_changes_the_run_and_a_mismatched_checkpoint_restarts_with_a_warning(ds, tmp_path):
    a = T.train(ds, CFG, device="cpu", progress=False)
    b = T.train(ds, T.TrainConfig(**{**CFG.__dict__, "seed": 4}), device="cpu", progress=False)
    assert not torch.equal(_params(a)[0], _params(b)[0])
    ckpt = tmp_path / "c.pt"
    T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=1, progress=False)
    other = T.TrainConfig(**{**CFG.__dict__, "lr": 5e-4})
    fresh = T.train(ds, other, device="cpu", progress=False)
    with pytest.warns(UserWarning, match=r"c\.pt was written for another configuration, data or code"):
        restarted = T.train(ds, other, device="cpu", checkpoint=ckpt, progress=False)
    assert restarted.step == other.steps
    for x, y in zip(_params(fresh), _params(restarted)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_changed_data_retrains_from_step_0(ds, tmp_path):
    """The fault: a finished checkpoint of other data was "resumed" for 0 steps."""
    ckpt = tmp_path / "c.pt"
    T.train(ds, CFG, device="cpu", checkpoint=ckpt, progress=False)  # finished run on ds
    other = D.from_renderer(np.random.default_rng(1).choice(D.N_IMAGES, 64, replace=False))
    fresh = T.train(other, CFG, device="cpu", progress=False)
    with pytest.warns(UserWarning, match="was written for another configuration, data or code"):
        rerun = T.train(other, CFG, device="cpu", checkpoint=ckpt, progress=False)
    assert rerun.step == CFG.steps
    for x, y in zip(_params(fresh), _params(rerun)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert torch.load(ckpt, weights_only=True)["fingerprint"] == T.fingerprint(CFG, other.fingerprint())


def test_corrupt_checkpoint_restarts_with_a_warning_naming_it(ds, tmp_path):
    ckpt = tmp_path / "c.pt"
    T.train(ds, CFG, device="cpu", checkpoint=ckpt, stop_at=2, progress=False)
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated
    full = T.train(ds, CFG, device="cpu", progress=False)
    with pytest.warns(UserWarning, match=r"c\.pt is unreadable"):
        r = T.train(ds, CFG, device="cpu", checkpoint=ckpt, progress=False)
    for x, y in zip(_params(full), _params(r)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_fingerprint_covers_the_data(tmp_path):
    idx = np.random.default_rng(0).choice(D.N_IMAGES, 40, replace=False)
    ds = D.from_renderer(idx)
    cached = D.from_cache(D.write_cache(ds, tmp_path / "a.npz"))
    assert cached.fingerprint() == D.from_cache(tmp_path / "a.npz").fingerprint()  # deterministic
    # one more image, another subset, another order: all different
    bigger = D.from_renderer(np.append(idx, (idx.max() + 1) % D.N_IMAGES))
    assert D.from_cache(D.write_cache(bigger, tmp_path / "b.npz")).fingerprint() != cached.fingerprint()
    assert cached.subset(np.arange(39)).fingerprint() != cached.fingerprint()
    assert cached.subset(np.arange(40)[::-1]).fingerprint() != cached.fingerprint()
    # same index, one pixel different: different
    with np.load(tmp_path / "a.npz") as f:
        packed, index = f["packed"].copy(), f["index"]
    packed[7, 30, 3] ^= 1
    np.savez(tmp_path / "c.npz", packed=packed, index=index)
    assert D.from_cache(tmp_path / "c.npz").fingerprint() != cached.fingerprint()
    # and it is part of the training fingerprint
    assert T.fingerprint(CFG, "a") != T.fingerprint(CFG, "b")


def test_config_from_dict_round_trip():
    assert T.config_from_dict(CFG.to_dict()) == CFG
    with pytest.raises(TypeError):
        T.config_from_dict({"stepz": 3})


def test_remembered_posteriors_are_checkpointed_and_change_the_run(ds, tmp_path):
    cfg = dataclasses.replace(CFG, objective=dataclasses.replace(CFG.objective, ijs_memory=16, tc_memory=8))
    full = T.train(ds, cfg, device="cpu", progress=False)
    ckpt = tmp_path / "ckpt.pt"
    T.train(ds, cfg, device="cpu", checkpoint=ckpt, stop_at=3, progress=False)
    assert T.load_checkpoint(ckpt)["memory_mu"].shape == (16, cfg.encoder.latent_dim)  # 3 steps x 8, newest 16
    resumed = T.train(ds, cfg, device="cpu", checkpoint=ckpt, progress=False)
    for a, b in zip(_params(full), _params(resumed)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    plain = T.train(ds, CFG, device="cpu", progress=False)
    assert not np.array_equal(plain.history["loo_sum"], full.history["loo_sum"])
    # before memory_start the memories are kept but not used: a start past the end is the plain run
    late = dataclasses.replace(cfg, objective=dataclasses.replace(cfg.objective, memory_start=cfg.steps))
    for a, b in zip(_params(plain), _params(T.train(ds, late, device="cpu", progress=False))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_clipped_adam_caps_a_spike_at_a_multiple_of_the_running_norm_and_resumes_exactly(ds, tmp_path):
    w = torch.nn.Parameter(torch.zeros(3))
    opt = T.ClippedAdam([w], lr=0.1, clip=2.0)
    for scale in (1.0, 1.0, 1000.0):
        w.grad = torch.full((3,), scale)
        opt.step()
    assert w.grad.norm() == pytest.approx(2.0 * 3**0.5)  # the spike is cut to 2x the running norm sqrt(3)
    assert opt.param_groups[0]["norm_ema"] == pytest.approx(3**0.5 * (1 + 0.01))
    with pytest.raises(ValueError, match="clip"):
        T.ClippedAdam([w], lr=0.1, clip=0.0)
    cfg = dataclasses.replace(CFG, grad_clip=1.5)
    full = T.train(ds, cfg, device="cpu", progress=False)
    ckpt = tmp_path / "ckpt.pt"
    T.train(ds, cfg, device="cpu", checkpoint=ckpt, stop_at=3, progress=False)
    resumed = T.train(ds, cfg, device="cpu", checkpoint=ckpt, progress=False)
    for a, b in zip(_params(full), _params(resumed)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    plain = T.train(ds, CFG, device="cpu", progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(_params(full), _params(plain)))


def test_memory_lr_scale_changes_the_rate_from_memory_start_on_and_resumes_exactly(ds, tmp_path):
    obj = dataclasses.replace(CFG.objective, ijs_memory=16, memory_start=4)
    base = dataclasses.replace(CFG, objective=obj)
    slow = dataclasses.replace(base, memory_lr_scale=0.25)
    a, b = T.train(ds, base, device="cpu", progress=False), T.train(ds, slow, device="cpu", progress=False)
    np.testing.assert_array_equal(a.history["loss"][:2], b.history["loss"][:2])  # steps 0-3: one rate
    assert not np.array_equal(a.history["loss"][2:], b.history["loss"][2:])
    ckpt = tmp_path / "ckpt.pt"
    T.train(ds, slow, device="cpu", checkpoint=ckpt, stop_at=5, progress=False)  # resumed past the switch
    resumed = T.train(ds, slow, device="cpu", checkpoint=ckpt, progress=False)
    for x, y in zip(_params(b), _params(resumed)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
