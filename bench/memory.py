"""Comparison 4: peak memory of one training step of the joint critic at batch 512, chunked vs not.

Each side runs in its own subprocess (``python -m bench.memory --chunk ...``) so peaks do not mix:
peak RSS on CPU (``VmHWM`` after the step minus ``VmRSS`` before it), peak allocated CUDA memory on a
GPU. Chunked = :class:`vbmi.critics.JointCritic`'s default ``max_chunk_elements`` (rows of the score
matrix evaluated in checkpointed chunks); unchunked = ``max_chunk_elements=None`` (all K^2 pairs at once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def child(batch: int, chunk: str, device_name: str, seed: int) -> dict:
    """One forward + backward of a joint critic on a batch; returns peaks, time and the numbers to compare."""
    import torch

    torch.set_num_threads(1)
    from vbmi import bounds
    from vbmi.critics import JointCritic
    from vbmi.data import sample_gaussian
    from vbmi.utils import resolve_device

    device = resolve_device(device_name)
    g = torch.Generator().manual_seed(seed)
    kwargs = {} if chunk == "default" else {"max_chunk_elements": None if chunk == "none" else int(chunk)}
    critic = JointCritic(20, 20, generator=g, **kwargs).to(device)
    x, y = sample_gaussian(batch, mi=6.0, generator=g)
    x, y = x.to(device), y.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    rss_before = _proc_status_kib("VmRSS")
    t0 = time.perf_counter()
    estimate = bounds.nce(critic(x, y).double())
    (-estimate).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    grad_sq = sum(float((p.grad.double() ** 2).sum()) for p in critic.parameters())
    out = {
        "batch_size": batch, "chunk": chunk, "max_chunk_elements": critic.max_chunk_elements,
        "device": str(device), "wall_s": wall, "estimate": float(estimate.detach()), "grad_norm": math.sqrt(grad_sq),
        "rss_before_mib": rss_before / 1024, "peak_rss_mib": _proc_status_kib("VmHWM") / 1024,
    }
    out["peak_rss_increase_mib"] = out["peak_rss_mib"] - out["rss_before_mib"]
    if device.type == "cuda":
        out["cuda_peak_allocated_mib"] = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
    return out


def _run_child(batch: int, chunk: str, device: str, seed: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), src, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "bench.memory", "--batch", str(batch), "--chunk", chunk,
                           "--device", device, "--seed", str(seed)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(size: dict, device, repeats: int) -> dict:
    """Alternate chunked / unchunked subprocesses; compare peaks (median over repeats)."""
    batch = size["memory_batch"]
    sides = {"chunked": "default", "unchunked": "none"}
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, chunk in sides.items():
            runs[name].append(_run_child(batch, chunk, str(device), seed=0))
    first = {name: r[0] for name, r in runs.items()}
    est_a, est_b = first["chunked"]["estimate"], first["unchunked"]["estimate"]
    gn_a, gn_b = first["chunked"]["grad_norm"], first["unchunked"]["grad_norm"]
    check = {"agree": bool(math.isclose(est_a, est_b, rel_tol=1e-5, abs_tol=1e-5)
                           and math.isclose(gn_a, gn_b, rel_tol=1e-4, abs_tol=1e-6)),
             "max_abs_diff": abs(est_a - est_b), "grad_norm_rel_diff": abs(gn_a - gn_b) / max(abs(gn_b), 1e-30),
             "rtol": 1e-5, "atol": 1e-5, "values_checked": 2}
    key = "cuda_peak_allocated_mib" if "cuda_peak_allocated_mib" in first["chunked"] else "peak_rss_increase_mib"
    med = lambda name, k: sorted(r[k] for r in runs[name])[len(runs[name]) // 2]  # noqa: E731
    out = {
        "comparison": "memory", "critic": "joint", "batch_size": batch, "metric": key, "check": check,
        "runs": runs, "peak_mib": {name: med(name, key) for name in sides},
        "wall_s": {name: med(name, "wall_s") for name in sides},
    }
    out["memory_ratio_unchunked_over_chunked"] = out["peak_mib"]["unchunked"] / max(out["peak_mib"]["chunked"], 1e-9)
    out["time_ratio_chunked_over_unchunked"] = out["wall_s"]["chunked"] / out["wall_s"]["unchunked"]
    print(f"  memory joint K={batch}: {key} chunked {out['peak_mib']['chunked']:.0f} MiB, unchunked "
          f"{out['peak_mib']['unchunked']:.0f} MiB -> {out['memory_ratio_unchunked_over_chunked']:.2f}x less; step time "
          f"x{out['time_ratio_chunked_over_unchunked']:.2f} (agree={check['agree']})", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--chunk", default="default", help="'default', 'none' or a max_chunk_elements value")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(json.dumps(child(a.batch, a.chunk, a.device, a.seed)))


if __name__ == "__main__":
    main()
