"""Comparisons 1 and 2: critic training throughput, vbmi's trainer against one-config-at-a-time loops.

1. ``single``: one configuration, separable and joint critics, batch 64..512: vbmi's trainer
   (:func:`vbmi.experiments.training.train_ensemble` with one run, i.e. the engine) against a plain PyTorch loop written
   the way the reference notebook trains (:mod:`bench.plain`: notebook-style critics, one model, one
   Adam, a Python loop). Both start from the same weights and see the same batches; the bound (InfoNCE)
   is evaluated in float64 on both sides, as vbmi's trainer does.
2. ``ensemble``: E = 1, 8, 64 configurations stacked into one batched model (``train_ensemble``,
   ``stack=True``) against the same runs trained one at a time (:func:`train_loop` below: one model, one
   ``torch.optim.Adam``, a Python loop; the comparison side lives here, not in the library).

Each timed call does the whole job (build the models, draw the data, train S steps), so throughput is
configurations x steps per second of what a user runs. ``torch-mist`` (a published PyTorch MI toolkit)
is not a dependency (it pins numpy<2); the JSON records whether it is importable, and no torch-mist
timing is implemented yet (its API could not be exercised here: it is not installed).
"""

from __future__ import annotations

import importlib.util
import math
import time
from typing import Sequence

import numpy as np
import torch

from . import plain
from ._timing import alternate, speedup

LEVELS = (2.0,)  # one MI level: the throughput does not depend on it
D = 20


def _trainer():
    """vbmi's trainer module; imported lazily so the rest of the bench runs without it."""
    from vbmi.experiments import training

    return training


def _spec(critic: str, batch: int, seed: int):
    return _trainer().RunSpec(bound="nce", critic=critic, batch_size=batch, seed=seed)


def _vbmi_train(specs, steps: int, device: torch.device, stack) -> np.ndarray:
    res = _trainer().train_ensemble(specs, steps_per_level=steps, levels=LEVELS, d=D, device=device, stack=stack,
                                    progress=False, data_block=steps)
    return res.estimate  # [E, S]


def _loop_train(specs, steps: int, device: torch.device) -> np.ndarray:
    return train_loop(specs, steps_per_level=steps, levels=LEVELS, d=D, device=device, data_block=steps).estimate


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


def separable_step_flops(batch: int, d: int = D, hidden: int = 256, layers: int = 2, embed: int = 32) -> float:
    """Floating-point operations of one training step of a separable critic (forward + backward).

    Per network (g and h) on K rows: forward MACs ``K (d H + (layers-1) H^2 + H E)``; backward the same
    for weight gradients plus the input gradients of every layer but the first; the score matrix
    ``K^2 E`` forward and twice that backward. 2 FLOPs per MAC; the bound's O(K^2) elementwise work and
    the optimiser are not counted (so this is a lower bound on the work done).
    """
    k = batch
    net = k * (d * hidden + (layers - 1) * hidden**2 + hidden * embed)
    net_input_grads = k * ((layers - 1) * hidden**2 + hidden * embed)
    macs = 2 * (2 * net + net_input_grads) + 3 * k * k * embed
    return 2.0 * macs


def bench_flops(size: dict, device: torch.device, repeats: int) -> dict:
    """Achieved FLOP/s of vbmi's separable training step at the largest batch, against a large fp32
    matmul timed alternately in the same run (the machine's attainable rate on one thread)."""
    batch = max(size["single_batches"])
    steps = size["single_steps"]["separable"]
    spec = _spec("separable", batch, seed=0)
    n = size["roof_matmul_n"]
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    timing = alternate({
        "vbmi_separable": lambda: _vbmi_train([spec], steps, device, stack=True),
        "matmul": lambda: torch.mm(a, b, out=out),
    }, repeats=repeats, warmup=1, device=device)
    step_flops = separable_step_flops(batch)
    achieved = [step_flops * steps / t for t in timing["raw_s"]["vbmi_separable"]]
    peak = [2.0 * n**3 / t for t in timing["raw_s"]["matmul"]]
    fractions = [x / y for x, y in zip(achieved, peak)]
    res = {"comparison": "flops", "critic": "separable", "batch_size": batch, "steps": steps,
           "step_flops": step_flops, "timing": timing, "matmul_n": n,
           "achieved_gflops": sorted(achieved)[len(achieved) // 2] / 1e9,
           "matmul_gflops": sorted(peak)[len(peak) // 2] / 1e9,
           "fraction_of_matmul": sorted(fractions)[len(fractions) // 2],
           "note": "whole calls (model construction included); FLOPs count matmuls only"}
    print(f"  flops separable K={batch}: {res['achieved_gflops']:.1f} GFLOP/s achieved, fp32 matmul "
          f"{res['matmul_gflops']:.1f} GFLOP/s -> {100 * res['fraction_of_matmul']:.0f}%", flush=True)
    return res


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


# --------------------------------------------------------------------------------------------------
# The comparison side: the same runs one at a time, the plain way
# --------------------------------------------------------------------------------------------------
def train_loop(
    specs: Sequence,
    *,
    steps_per_level: int,
    levels: Sequence[float] = (2.0, 4.0, 6.0, 8.0, 10.0),
    d: int = 20,
    cubic_seed: int = 0,
    cubic_weight_std: float = 1.0,
    device: str | torch.device = "auto",
    data_block: int = 50,
):
    """The same runs trained one at a time, the reference notebook's way: one model, one
    ``torch.optim.Adam``, a Python loop over steps. Same initialisation, data and float64 evaluation as
    :func:`vbmi.experiments.training.train_ensemble`, so the two agree to float tolerance (the tests) and
    can be timed against each other. A run stops at its first non-finite estimate (recorded as diverged).
    """
    from vbmi.data import CubicTransform, gaussian_log_p_y_given_x
    from vbmi.experiments.training import (FLOAT32_EXP_LIMIT, TrainResult, _DataStream, _schedule, _single_modules,
                                           _use_float64_ema)
    from vbmi.utils import resolve_device

    specs = list(specs)
    dev = resolve_device(device)
    true_mi, rho_cpu = _schedule(steps_per_level, levels, d)
    total = int(true_mi.shape[0])
    rho = rho_cpu.to(dev)
    cubic = CubicTransform(d, cubic_seed, weight_std=cubic_weight_std) if any(s.dataset == "cubic" for s in specs) else None
    est = np.full((len(specs), total), np.nan)
    max_abs = np.full((len(specs), total), np.nan, dtype=np.float32)
    diverged = np.full(len(specs), -1, dtype=np.int64)
    t0 = time.monotonic()
    for r, spec in enumerate(specs):
        critic, objective = _single_modules(spec, d)
        critic = None if critic is None else critic.to(dev)
        objective = objective.to(dev)
        _use_float64_ema(objective)
        objective.train()
        params = ([] if critic is None else list(critic.parameters())) + list(objective.parameters())
        opt = torch.optim.Adam(params, lr=spec.lr, foreach=False) if params else None
        stream = _DataStream(spec, rho.to(torch.float32), cubic if spec.dataset == "cubic" else None, dev, d)
        for step in range(total):
            if step % data_block == 0:
                xb, yb = stream.block(step, min(total, step + data_block))
            x, y = xb[step % data_block], yb[step % data_block]  # [K, d]
            scores32 = None
            if critic is None:
                scores = gaussian_log_p_y_given_x(x.double(), y.double(), rho[step].to(torch.float64))
            else:
                scores32 = critic(x, y)  # [K, K]
                scores32.retain_grad()
                scores = scores32.double()
            value = objective(scores, y)
            max_abs[r, step] = float(scores.detach().abs().max())
            value_f = float(value.detach())
            if not math.isfinite(value_f) or not math.isfinite(max_abs[r, step]):
                diverged[r] = step
                break
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                (-value).backward()
                if scores32 is not None and not bool(torch.isfinite(scores32.grad).all()):
                    diverged[r] = step  # the float64 gradient overflowed float32 (as the ensemble's hook)
                    break
                opt.step()
            est[r, step] = value_f
    wall = time.monotonic() - t0
    return TrainResult(
        specs=specs, true_mi=true_mi.numpy(), estimate=est, max_abs_score=max_abs, diverged_step=diverged,
        overflow_steps=(np.nan_to_num(max_abs, nan=0.0) > FLOAT32_EXP_LIMIT).sum(1), steps_per_level=steps_per_level,
        levels=tuple(float(v) for v in levels), device=str(dev), wall_s=wall,
        meta={"data_block": data_block, "cubic_seed": cubic_seed, "d": d,
              "steps_per_s": total * len(specs) / wall if wall > 0 else float("nan")},
    )


def bench_specs(n: int, *, critic: str = "separable", bound: str = "nce", batch_size: int = 64, hidden: int = 256,
                layers: int = 2, seed: int = 0) -> list:
    """``n`` configurations that share a critic shape (so they stack into one group): distinct seeds and
    learning rates spread over 1e-4..1e-3, the paper's Fig. 2 architecture by default."""
    lrs = np.geomspace(1e-4, 1e-3, n) if n > 1 else [5e-4]
    from vbmi.experiments.plan import RunSpec

    return [RunSpec(bound=bound, critic=critic, batch_size=batch_size, hidden=hidden, layers=layers, lr=float(lr),
                    seed=seed + i) for i, lr in enumerate(lrs)]


def train_stacked_steps(specs: Sequence, steps: int, *, device: str | torch.device = "auto", mi: float = 2.0):
    """Train ``specs`` as stacked ensembles (joint critics too) for ``steps`` steps at one MI level."""
    return _trainer().train_ensemble(specs, steps_per_level=steps, levels=(mi,), device=device, stack=True, progress=False)


def train_loop_steps(specs: Sequence, steps: int, *, device: str | torch.device = "auto", mi: float = 2.0):
    """The same runs one at a time (:func:`train_loop`): one model, one ``torch.optim.Adam``, a Python loop."""
    return train_loop(specs, steps_per_level=steps, levels=(mi,), device=device)
