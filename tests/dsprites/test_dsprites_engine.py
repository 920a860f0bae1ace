"""The dSprites trainer on the shared training engine gives the numbers of the plain loop it replaced.

``_plain_loop`` is a frozen copy of the trainer's former loop body (``torch.optim.Adam``, a Python loop,
the dual update and log accumulation inline; checkpointing and progress removed, as they do not touch the
numbers). It calls the same model, objective and data code as the trainer, so the comparison stays
meaningful when those change: what it checks is that moving the loop onto the engine changed nothing, to
the bit (both sides run the same float32 operations in the same order on one thread).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vbmi.dsprites import train as T
from vbmi.dsprites.objective import ObjectiveConfig, dual_update, lagrangian, tc_weight, terms


CFG = T.TrainConfig(
    steps=6,
    batch_size=8,
    lr=1e-3,
    seed=3,
    log_every=4,  # 6 steps: one full interval and a partial one at the end
    checkpoint_every_s=0.0,
    objective=ObjectiveConfig(tc_ramp_start=1, tc_ramp_steps=3, dual_lr=0.1),
)
ADDITIVE = dataclasses.replace(CFG, seed=5, log_every=2,
                               objective=ObjectiveConfig(tc_ramp_start=0, tc_ramp_steps=0, dual="additive",
                                                         tc_lower="ijs", dual_lr=0.5))


def _plain_loop(ds, cfg):
    """The former loop, frozen: (encoder, log_q, history, lam)."""
    encoder, log_q, opt, g_data, g_noise, lam = T._new_state(cfg, torch.device("cpu"))
    history = {k: [] for k in ("step", *T.LOGGED)}
    acc = torch.zeros(len(T.LOGGED), dtype=torch.float64)
    encoder.train()
    for step in range(cfg.steps):
        rows = torch.randint(len(ds), (cfg.batch_size,), generator=g_data).numpy()
        x = torch.from_numpy(ds.images(rows)).to(dtype=torch.float32)[:, None]
        t = terms(encoder, log_q, x, g_noise, noise_var=cfg.objective.noise_var, tc_lower=cfg.objective.tc_lower)
        w = tc_weight(step, cfg.objective)
        loss = lagrangian(t, lam.to(torch.float32), w, cfg.objective)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lam = dual_update(lam, {k: v.detach().double() for k, v in t.items()}, w, cfg.objective)
        vals = torch.stack([t["ijs"].detach(), t["tnce"], t["loo_sum"].detach(), t["tc"].detach(),
                            t["smooth"].detach()]).double()
        acc += torch.cat([vals, lam, torch.tensor([w, loss.item()], dtype=torch.float64)])
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            k = step % cfg.log_every + 1
            history["step"].append(float(step + 1))
            for name, v in zip(T.LOGGED, (acc / k).tolist()):
                history[name].append(v)
            acc = torch.zeros_like(acc)
    return encoder, log_q, {k: np.asarray(v) for k, v in history.items()}, lam


def _params(encoder, log_q) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*encoder.parameters(), *log_q.parameters())]


@pytest.mark.parametrize("cfg", [CFG, ADDITIVE], ids=["multiplicative", "additive"])
def test_engine_trainer_equals_the_plain_loop(ds, cfg):
    enc, log_q, hist, lam = _plain_loop(ds, cfg)
    r = T.train(ds, cfg, device="cpu", progress=False)
    assert r.step == cfg.steps
    assert set(r.history) == set(hist)
    for k in hist:
        np.testing.assert_array_equal(r.history[k], hist[k], err_msg=k)
    for a, b in zip(_params(enc, log_q), _params(r.encoder, r.log_q)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(r.lam, lam, rtol=0, atol=0)
    # the run did something: the weights moved and the multipliers were updated
    init, init_q, *_ = T._new_state(cfg, torch.device("cpu"))
    assert not torch.equal(_params(init, init_q)[0], _params(r.encoder, r.log_q)[0])
    assert not torch.equal(lam, torch.tensor([cfg.objective.lambda_tc_init, cfg.objective.lambda_smooth_init],
                                             dtype=torch.float64))


def _nan_at(monkeypatch, bad_step: int) -> list[int]:
    """Make the terms of step ``bad_step`` (0-based call count) non-finite; returns the call counter."""
    calls = [0]

    def poisoned(*args, **kwargs):
        t = terms(*args, **kwargs)
        if calls[0] == bad_step:
            t["ijs"] = t["ijs"] * float("nan")
        calls[0] += 1
        return t

    monkeypatch.setattr(T, "terms", poisoned)
    return calls


def test_a_non_finite_lagrangian_stops_training_with_a_warning_naming_the_step(ds, tmp_path, monkeypatch):
    cfg = T.TrainConfig(**{**CFG.__dict__, "log_every": 2})
    good = T.train(ds, cfg, device="cpu", checkpoint=tmp_path / "good.pt", stop_at=3, progress=False)
    calls = _nan_at(monkeypatch, 3)
    ckpt = tmp_path / "bad.pt"
    with pytest.warns(T.TrainingDiverged, match=r"step 4 of 6 is not finite.*after 3 steps.*bad\.pt"):
        r = T.train(ds, cfg, device="cpu", checkpoint=ckpt, progress=False)
    assert calls[0] == 4  # no step after the bad one
    # the result is the run of the 3 steps before it: no NaN reached the weights, multipliers or log
    assert r.step == 3
    for a, b in zip(_params(good.encoder, good.log_q), _params(r.encoder, r.log_q)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(r.lam, good.lam, rtol=0, atol=0)
    for k in good.history:
        np.testing.assert_array_equal(r.history[k], good.history[k], err_msg=k)
    assert T.load_checkpoint(ckpt)["diverged_step"] == 3
    # a rerun finds the diverged checkpoint, says so again, and does not step it
    with pytest.warns(T.TrainingDiverged, match="step 4 of 6"):
        again = T.train(ds, cfg, device="cpu", checkpoint=ckpt, progress=False)
    assert calls[0] == 4 and again.step == 3
    torch.testing.assert_close(_params(again.encoder, again.log_q)[0], _params(r.encoder, r.log_q)[0],
                               rtol=0, atol=0)


def test_stop_at_without_a_checkpoint_stops_there(ds):
    r = T.train(ds, CFG, device="cpu", stop_at=2, progress=False)
    assert r.step == 2 and len(r.history["step"]) == 0  # log_every=4: nothing logged yet
