"""Comparisons 1 and 2: critic training throughput, vbmi's trainer against one-config-at-a-time loops.

1. ``single``: one configuration, separable and joint critics, batch 64..512: vbmi's trainer
   (:func:`vbmi.experiments.training.train_ensemble` with one run) against a plain PyTorch loop written
   the way the reference notebook trains (:mod:`bench.plain`: notebook-style critics, one model, one
   Adam, a Python loop). Both start from the same weights and see the same batches; the bound (InfoNCE)
   is evaluated in float64 on both sides, as vbmi's trainer does.
2. ``ensemble``: E = 1, 8, 64 configurations stacked into one batched model (``train_ensemble``,
   ``stack=True``) against the same runs trained one at a time (:func:`~vbmi.experiments.training.train_loop`).

Each timed call does the whole job (build the models, draw the data, train S steps), so throughput is
configurations x steps per second of what a user runs. ``torch-mist`` (a published PyTorch MI toolkit)
is not a dependency (it pins numpy<2); the JSON records whether it is importable, and no torch-mist
timing is implemented yet (its API could not be exercised here: it is not installed).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from . import plain
from ._timing import alternate, speedup

LEVELS = (2.0,)  # one MI level: the throughput does not depend on it
D = 20


def _trainer():
    """vbmi's trainer module (issue 4); imported lazily so the rest of the bench runs without it."""
    from vbmi.experiments import training

    return training


def _spec(critic: str, batch: int, seed: int):
    return _trainer().RunSpec(bound="nce", critic=critic, batch_size=batch, seed=seed)


def _vbmi_train(specs, steps: int, device: torch.device, stack) -> np.ndarray:
    res = _trainer().train_ensemble(specs, steps_per_level=steps, levels=LEVELS, d=D, device=device, stack=stack,
                                    progress=False, data_block=steps)
    return res.estimate  # [E, S]


def _loop_train(specs, steps: int, device: torch.device) -> np.ndarray:
    return _trainer().train_loop(specs, steps_per_level=steps, levels=LEVELS, d=D, device=device,
                                 data_block=steps).estimate


def _notebook_train(spec, steps: int, device: torch.device) -> np.ndarray:
    """The reference notebook's loop on notebook-style modules, same initial weights and batches as vbmi."""
    tr = _trainer()
    critic_v, _ = tr._single_modules(spec, D)  # the run's own initial weights (seeded by spec.seed)
    model = plain.load_from_vbmi(plain.plain_critic(spec.critic, D, spec.hidden, spec.layers, spec.embed_dim),
                                 critic_v).to(device)
    _, rho = tr._schedule(steps, LEVELS, D)
    stream = tr._DataStream(spec, rho.to(device, torch.float32), None, device, D)
    xs, ys = stream.block(0, steps)  # [S, K, d], the batches vbmi's trainer draws for this run
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    out = []
    for x, y in zip(xs, ys):
        mi = plain.plain_nce(model(x, y).double())
        opt.zero_grad()
        (-mi).backward()
        opt.step()
        out.append(float(mi.detach()))
    return np.asarray(out)[None]


def _agree(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> dict:
    diff = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
    ok = bool(a.shape == b.shape and np.all(np.isfinite(a)) and np.allclose(a, b, rtol=rtol, atol=atol))
    return {"agree": ok, "max_abs_diff": diff, "rtol": rtol, "atol": atol, "values_checked": int(a.size)}


def torch_mist_status() -> str:
    if importlib.util.find_spec("torch_mist") is None:
        return "not installed"
    return "installed (no torch-mist comparison implemented yet)"


def bench_single(size: dict, device: torch.device, repeats: int) -> list[dict]:
    """Comparison 1: one configuration, vbmi's trainer vs the notebook loop, for each critic and batch."""
    rows = []
    for critic in ("separable", "joint"):
        for batch in size["single_batches"]:
            steps = size["single_steps"][critic][str(batch)] if isinstance(size["single_steps"][critic], dict) \
                else size["single_steps"][critic]
            spec = _spec(critic, batch, seed=0)
            check_steps = min(steps, 3)
            check = _agree(_vbmi_train([spec], check_steps, device, stack=True),
                           _notebook_train(spec, check_steps, device), rtol=1e-4, atol=1e-4)
            # A joint step at K >= 256 takes seconds on a CPU: no warm-up round there (medians absorb it).
            warmup = 0 if critic == "joint" and batch >= 256 and device.type == "cpu" else 1
            timing = alternate({
                "vbmi": lambda: _vbmi_train([spec], steps, device, stack=True),
                "notebook_loop": lambda: _notebook_train(spec, steps, device),
            }, repeats=repeats, warmup=warmup, device=device)
            ratio = speedup(timing, "notebook_loop", "vbmi")
            rows.append({
                "comparison": "single", "critic": critic, "batch_size": batch, "configs": 1, "steps": steps,
                "bound": "nce", "check": check, "timing": timing, "speedup": ratio,
                "steps_per_s": {k: steps / v for k, v in timing["median_s"].items()},
                "torch_mist": torch_mist_status(),
            })
            print(f"  single {critic:9s} K={batch:4d}: vbmi {rows[-1]['steps_per_s']['vbmi']:8.2f} steps/s, "
                  f"notebook loop {rows[-1]['steps_per_s']['notebook_loop']:8.2f}  -> {ratio['ratio']:.2f}x "
                  f"(agree={check['agree']})", flush=True)
    return rows


def bench_ensemble(size: dict, device: torch.device, repeats: int) -> list[dict]:
    """Comparison 2: E stacked configurations vs the same E runs one at a time (configs x steps / s)."""
    rows = []
    for critic, ens_sizes in size["ensemble_sizes"].items():
        batch = size["ensemble_batch"]
        for e in ens_sizes:
            steps = size["ensemble_steps"][critic]
            specs = [_spec(critic, batch, seed=s) for s in range(e)]
            check_steps = min(steps, 3)
            check = _agree(_vbmi_train(specs, check_steps, device, stack=True),
                           _loop_train(specs, check_steps, device), rtol=1e-5, atol=1e-5)
            # The agreement check above already ran both sides once: no warm-up round for the big ensembles.
            timing = alternate({
                "vbmi_stacked": lambda: _vbmi_train(specs, steps, device, stack=True),
                "loop": lambda: _loop_train(specs, steps, device),
            }, repeats=repeats, warmup=0 if e >= 64 else 1, device=device)
            ratio = speedup(timing, "loop", "vbmi_stacked")
            work = e * steps
            rows.append({
                "comparison": "ensemble", "critic": critic, "batch_size": batch, "configs": e, "steps": steps,
                "bound": "nce", "check": check, "timing": timing, "speedup": ratio,
                "config_steps_per_s": {k: work / v for k, v in timing["median_s"].items()},
            })
            print(f"  ensemble {critic:9s} E={e:3d} K={batch}: stacked "
                  f"{rows[-1]['config_steps_per_s']['vbmi_stacked']:8.1f} config-steps/s, loop "
                  f"{rows[-1]['config_steps_per_s']['loop']:8.1f}  -> {ratio['ratio']:.2f}x (agree={check['agree']})",
                  flush=True)
    return rows


def profile_ensemble_step(e: int, batch: int, steps: int, device: torch.device, top: int = 12,
                          critic: str = "separable") -> dict:
    """Where the stacked trainer spends its time (torch.profiler, self CPU time per op)."""
    from torch.profiler import ProfilerActivity, profile

    specs = [_spec(critic, batch, seed=s) for s in range(e)]
    _vbmi_train(specs, 2, device, stack=True)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        _vbmi_train(specs, steps, device, stack=True)
    events = sorted(prof.key_averages(), key=lambda ev: ev.self_cpu_time_total, reverse=True)
    total = sum(ev.self_cpu_time_total for ev in events) or math.nan
    ops = [{"op": ev.key, "calls": ev.count, "self_cpu_s": ev.self_cpu_time_total / 1e6,
            "share": ev.self_cpu_time_total / total} for ev in events[:top]]
    optimizer_ops = {"aten::div", "aten::where", "aten::sqrt", "aten::lerp_", "aten::addcmul_", "aten::sub_",
                     "aten::mul_", "aten::add_", "aten::mul"}
    matmul_ops = {"aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"}
    share = lambda names: sum(ev.self_cpu_time_total for ev in events if ev.key in names) / total  # noqa: E731
    return {"critic": critic, "configs": e, "batch_size": batch, "steps": steps, "total_self_cpu_s": total / 1e6,
            "top_ops": ops,
            "share_matmul": share(matmul_ops), "share_elementwise_optimizer_like": share(optimizer_ops),
            "share_init_uniform": share({"aten::uniform_"})}
