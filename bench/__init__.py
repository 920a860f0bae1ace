"""vbmi's benchmarks: every speed claim as a ratio of two programs timed alternately in one run.

``python -m bench`` (``make bench``) runs, at the default size (< 10 minutes on a 2-core CPU):

1. ``single``: critic training steps/s, separable and joint critics, batch 64..512, vbmi's trainer vs
   a plain loop written like the reference notebook (``torch-mist``: whether it is importable is recorded);
2. ``ensemble``: configurations x steps/s of E = 1, 8, 64 stacked critics vs the same runs one at a time;
3. ``mc_loop`` / ``mc_roofline``: optimal-critic Monte Carlo bound evaluations/s vectorised vs batch by
   batch (K = 64), and at K = 512 ns per score element of the four bounds against the machine's own
   roofline (fp32 matmul FLOP/s, exp and logsumexp passes) measured in the same run, with a profile;
4. ``memory``: peak RSS (CUDA: peak allocated) of the joint critic at batch 512, chunked vs not;
5. ``pipeline`` (``--pipeline`` only): the default-scale pipeline's wall time and its ``benchmark:`` files.

Each comparison first checks that both sides compute the same numbers and records the check. The JSON
(``results/bench/bench_<size>_<device>.json``) holds the machine, torch version, threads, device, load
average, every raw timing and the medians. Only ratios measured within one run are compared with targets.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from vbmi.train.checkpoint import atomic_write

REPO = Path(__file__).resolve().parents[1]

SIZES: dict[str, dict] = {
    "default": {
        "repeats": 3,
        "single_batches": [64, 128, 256, 512],
        "single_steps": {"separable": 10, "joint": {"64": 4, "128": 2, "256": 1, "512": 1}},
        "ensemble_batch": 64,
        "ensemble_sizes": {"separable": [1, 8, 64], "joint": [1, 8]},
        # 20 steps: model construction (also timed, both sides) stays a small share of a call.
        "ensemble_steps": {"separable": 20, "joint": 2},
        "profile_configs": 64, "profile_steps": 5,
        "mc_repeats": 7,  # cheap rounds: more of them steady the ratios on a loaded machine
        "mc_k": 64, "mc_replicates": 512, "mc_mi": 6.0, "mc_alpha": 0.5, "mc_dtype": "float64",
        "roof_k": 512, "roof_replicates": 16, "roof_dtypes": ["float32", "float64"], "roof_matmul_n": 1024,
        "memory_batch": 512, "memory_repeats": 2,
    },
    "tiny": {
        "repeats": 2,
        "single_batches": [8, 16],
        "single_steps": {"separable": 2, "joint": 1},
        "ensemble_batch": 8,
        "ensemble_sizes": {"separable": [1, 2], "joint": [2]},
        "ensemble_steps": {"separable": 2, "joint": 2},
        "profile_configs": 2, "profile_steps": 2,
        "mc_repeats": 2,
        "mc_k": 8, "mc_replicates": 8, "mc_mi": 2.0, "mc_alpha": 0.5, "mc_dtype": "float64",
        "roof_k": 16, "roof_replicates": 4, "roof_dtypes": ["float64"], "roof_matmul_n": 64,
        "memory_batch": 16, "memory_repeats": 1,
    },
}

COMPARISONS = ("single", "ensemble", "mc_loop", "mc_roofline", "memory")


def targets(result: dict) -> list[dict]:
    """The targets, each with the ratio measured in this run (None where not measured): vbmi's trainer at
    least as fast as the plain loop in every single-run cell; stacked separable ensembles of E >= 8 at
    least 2x (CPU) or 10x (GPU) the same runs one at a time; the Monte Carlo ratios."""
    on_gpu = result["machine"]["device"].startswith("cuda")
    out = []
    for r in result.get("single", []):
        out.append({"name": f"single run vs plain loop, {r['critic']} batch {r['batch_size']}",
                    "measured": r["speedup"]["ratio"], "measured_cpu_time": r["speedup"].get("ratio_cpu"),
                    "target": 1.0, "unit": "x"})
    sep = [r for r in result.get("ensemble", []) if r["critic"] == "separable"]
    big = min(8, max((r["configs"] for r in sep), default=0))  # the tiny size stacks fewer than 8
    for r in sep:
        if r["configs"] >= max(big, 2):
            out.append({"name": f"ensemble speedup, E={r['configs']} separable, batch {r['batch_size']}",
                        "measured": r["speedup"]["ratio"], "measured_cpu_time": r["speedup"].get("ratio_cpu"),
                        "target": 10.0 if on_gpu else 2.0, "unit": "x"})
    if "mc_loop" in result:
        r = result["mc_loop"]
        out.append({"name": f"MC vectorised vs batch loop, K={r['k']}", "measured": r["speedup"]["ratio"],
                    "target": 20.0, "unit": "x"})
    if "mc_roofline" in result:
        for dtype, r in result["mc_roofline"]["by_dtype"].items():
            out.append({"name": f"four bounds at K={r['k']} ({dtype}), fraction of the logsumexp roofline",
                        "measured": r["fraction_of_logsumexp_roofline"], "target": 0.30, "unit": "fraction"})
    for t in out:
        t["met"] = bool(t["measured"] is not None and math.isfinite(t["measured"]) and t["measured"] >= t["target"])
    return out


def run(size: str = "default", *, only: list[str] | None = None, device: str = "cpu", out_dir: str | Path | None = None,
        pipeline: bool = False, threads: int = 1, pipeline_configfile: str | None = None) -> dict:
    """Run the comparisons of ``size`` (``default`` or ``tiny``), print a table, write and return the JSON."""
    import torch

    from vbmi.utils import resolve_device

    from ._timing import load_average, machine_info

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    only = list(only) if only else list(COMPARISONS)
    unknown = set(only) - set(COMPARISONS)
    if unknown:
        raise ValueError(f"unknown comparison(s) {sorted(unknown)}; valid: {', '.join(COMPARISONS)}")
    torch.set_num_threads(threads)  # the bench entry point (not the library) fixes the thread count
    dev = resolve_device(device)
    cfg = SIZES[size]
    result: dict = {"bench_version": 1, "size": size, "sizes": cfg, "machine": machine_info(dev),
                    "comparisons_run": only}
    t0 = time.perf_counter()
    reps = cfg["repeats"]
    if "single" in only or "ensemble" in only:
        from . import training

        result["torch_mist"] = training.torch_mist_status()
        if "single" in only:
            print("[1] single-configuration training: vbmi trainer vs notebook loop", flush=True)
            result["single"] = training.bench_single(cfg, dev, reps)
        if "ensemble" in only:
            print("[2] ensemble training: E stacked vs one at a time", flush=True)
            result["ensemble"] = training.bench_ensemble(cfg, dev, reps)
            result["ensemble_profile"] = training.profile_ensemble_step(cfg["profile_configs"], cfg["ensemble_batch"],
                                                                        cfg["profile_steps"], dev)
        if "single" in only:  # where one run of vbmi's trainer spends its time at the largest batch
            result["single_profile"] = training.profile_ensemble_step(1, max(cfg["single_batches"]),
                                                                      cfg["profile_steps"], dev)
            print("[1b] achieved FLOP/s of a separable step vs the machine's fp32 matmul", flush=True)
            result["single_flops"] = training.bench_flops(cfg, dev, reps)
    if "mc_loop" in only or "mc_roofline" in only:
        from . import montecarlo

        result["mc_implementation"] = montecarlo.implementation()
        if "mc_loop" in only:
            print("[3a] optimal-critic Monte Carlo: vectorised vs batch loop", flush=True)
            result["mc_loop"] = montecarlo.bench_loop(cfg, dev, cfg["mc_repeats"])
        if "mc_roofline" in only:
            print("[3b] optimal-critic Monte Carlo vs the machine's roofline", flush=True)
            result["mc_roofline"] = montecarlo.bench_roofline(cfg, dev, cfg["mc_repeats"])
    if "memory" in only:
        from .memory import bench_memory

        print("[4] memory: joint critic, chunked vs not", flush=True)
        result["memory"] = bench_memory(cfg, dev, cfg["memory_repeats"])
    if pipeline:
        from .pipeline import bench_pipeline

        print(f"[5] whole pipeline ({pipeline_configfile or 'default scale'})", flush=True)
        extra = ["--configfile", "config.yaml", pipeline_configfile] if pipeline_configfile else None
        result["pipeline"] = bench_pipeline("results/bench/pipeline_run", extra=extra)
    result["machine"]["load_average_end"] = load_average()
    result["wall_s"] = time.perf_counter() - t0
    result["targets"] = targets(result)
    result["checks"] = all_checks(result)
    out = Path(out_dir) if out_dir is not None else REPO / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    tag = dev.type
    if result["machine"]["gpu_name"]:  # e.g. bench_default_cuda_nvidia-h200.json
        tag += "_" + "-".join("".join(ch if ch.isalnum() else " " for ch in result["machine"]["gpu_name"].lower()).split())
    path = out / f"bench_{size}_{tag}.json"
    text = json.dumps(_clean(result), indent=1, default=_jsonable, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    result["json_path"] = str(path)
    print_table(result)
    print(f"wrote {path} ({result['wall_s']:.0f} s)")
    return result


def all_checks(result: dict) -> list[dict]:
    """Every numerical agreement check of the run, flattened: ``[{comparison, case, agree, max_abs_diff}]``."""
    rows = []
    for r in result.get("single", []) + result.get("ensemble", []):
        rows.append({"comparison": r["comparison"], "case": f"{r['critic']} K={r['batch_size']} E={r['configs']}",
                     **r["check"]})
    if "mc_loop" in result:
        rows.append({"comparison": "mc_loop", "case": "vectorised vs loop", **result["mc_loop"]["check"]})
        rows.append({"comparison": "mc_loop", "case": "vs written-out formulas",
                     **result["mc_loop"]["check_plain_formula"]})
        rows.append({"comparison": "mc_loop", "case": "vs vbmi.bounds registry calls",
                     **result["mc_loop"]["check_registry"]})
        rows.append({"comparison": "mc_loop", "case": "proposal vs vbmi MC", **result["mc_loop"]["check_proposal"]})
    for dtype, r in result.get("mc_roofline", {}).get("by_dtype", {}).items():
        if r.get("check_proposal") is not None:
            rows.append({"comparison": "mc_roofline", "case": f"proposal vs vbmi MC ({dtype})", **r["check_proposal"]})
    if "memory" in result:
        rows.append({"comparison": "memory", "case": "chunked vs unchunked", **result["memory"]["check"]})
    return rows


def _clean(obj):
    """Non-finite floats become None, so the file is strict JSON (the tests require finite ratios anyway)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def print_table(result: dict) -> None:
    """The human-readable summary: every ratio measured, then the targets."""
    m = result["machine"]
    print(f"\nvbmi bench ({result['size']}), {m['device']} {m['gpu_name'] or m['cpu_model']}, torch {m['torch_version']}, "
          f"{m['torch_threads']} thread(s), load {m['load_average_start']} -> {m.get('load_average_end')}")
    print(f"{'comparison':10s} {'case':34s} {'fast side':>14s} {'slow side':>14s} {'ratio':>8s} {'agree':>6s}")
    for r in result.get("single", []):
        print(f"{'single':10s} {r['critic'] + ' batch ' + str(r['batch_size']):34s} "
              f"{r['steps_per_s']['vbmi']:10.2f} st/s {r['steps_per_s']['notebook_loop']:10.2f} st/s "
              f"{r['speedup']['ratio']:7.2f}x {str(r['check']['agree']):>6s}")
    for r in result.get("ensemble", []):
        print(f"{'ensemble':10s} {r['critic'] + ' E=' + str(r['configs']) + ' batch ' + str(r['batch_size']):34s} "
              f"{r['config_steps_per_s']['vbmi_stacked']:9.1f} cs/s {r['config_steps_per_s']['loop']:9.1f} cs/s "
              f"{r['speedup']['ratio']:7.2f}x {str(r['check']['agree']):>6s}")
    if "mc_loop" in result:
        r = result["mc_loop"]
        print(f"{'mc':10s} {'K=' + str(r['k']) + ' R=' + str(r['replicates']):34s} "
              f"{r['evaluations_per_s']['vectorised']:8.0f} ev/s {r['evaluations_per_s']['batch_loop']:8.0f} ev/s "
              f"{r['speedup']['ratio']:7.2f}x {str(r['check']['agree']):>6s}")
        print(f"{'mc':10s} {'K=' + str(r['k']) + ' proposal (bench/proposals.py)':34s} "
              f"{r['evaluations_per_s']['proposal_vectorised']:8.0f} ev/s {r['evaluations_per_s']['batch_loop']:8.0f} ev/s "
              f"{r['proposal_speedup']['ratio']:7.2f}x {str(r['check_proposal']['agree']):>6s}")
    if "mc_roofline" in result:
        for dtype, r in result["mc_roofline"]["by_dtype"].items():
            ns = r["ns_per_element"]
            print(f"{'roofline':10s} {'K=' + str(r['k']) + ' ' + dtype + ' bounds vs logsumexp':34s} "
                  f"{ns['logsumexp_pass']:8.2f} ns/el {ns['four_bounds']:8.2f} ns/el "
                  f"{r['fraction_of_logsumexp_roofline']:8.3f} {'':>6s}")
            print(f"{'roofline':10s} {'K=' + str(r['k']) + ' ' + dtype + ' proposal vs logsumexp':34s} "
                  f"{ns['logsumexp_pass']:8.2f} ns/el {ns['proposal_fused_inplace']:8.2f} ns/el "
                  f"{r['proposal_fraction_of_logsumexp_roofline']:8.3f} {str((r.get('check_proposal') or {}).get('agree')):>6s}")
    if "memory" in result:
        r = result["memory"]
        print(f"{'memory':10s} {'joint batch ' + str(r['batch_size']) + ' ' + r['metric']:34s} "
              f"{r['peak_mib']['chunked']:9.0f} MiB {r['peak_mib']['unchunked']:9.0f} MiB "
              f"{r['memory_ratio_unchunked_over_chunked']:7.2f}x {str(r['check']['agree']):>6s}")
    if "single_flops" in result:
        r = result["single_flops"]
        print(f"{'flops':10s} {'separable batch ' + str(r['batch_size']) + ' vs fp32 matmul':34s} "
              f"{r['achieved_gflops']:7.1f} GF/s {r['matmul_gflops']:7.1f} GF/s {r['fraction_of_matmul']:8.3f}")
    print(f"torch-mist: {result.get('torch_mist', 'not checked')}")
    print("\ntargets:")
    for t in result["targets"]:
        cpu = t.get("measured_cpu_time")
        extra = f"; in CPU time {cpu:.3g}" if isinstance(cpu, float) and math.isfinite(cpu) else ""
        print(f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['measured']:.3g} (target >= {t['target']:g}{extra})")
