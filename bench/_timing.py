"""Alternating timer and machine description: the two things every comparison in bench/ shares.

Every comparison times two (or more) programs *alternately in the same run* (A B A B ...), so a change
in machine load hits both sides alike; the headline is the median of the per-round ratios, each taken
between adjacent runs. Absolute times are recorded too, but only ratios are compared with targets.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device | str) -> None:
    """Wait for queued kernels so a wall-clock reading covers them (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def alternate(programs: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
              device: torch.device | str = "cpu") -> dict:
    """Time each program ``repeats`` times, interleaved round by round (A B A B ...), after ``warmup`` rounds.

    Returns ``{"raw_s": {name: [wall seconds per round]}, "median_s": {name: median}, "cpu_s": {name:
    [process CPU seconds per round]}}``. Wall time is the measure; CPU time is recorded beside it because on
    a shared machine other processes' load stretches wall time far more than this process's CPU time.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    raw: dict[str, list[float]] = {name: [] for name in programs}
    cpu: dict[str, list[float]] = {name: [] for name in programs}
    for rnd in range(warmup + repeats):
        for name, fn in programs.items():
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            if rnd >= warmup:
                raw[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {"raw_s": raw, "median_s": {name: statistics.median(ts) for name, ts in raw.items()}, "cpu_s": cpu}


def speedup(timing: dict, slow: str, fast: str, *, work_slow: float = 1.0, work_fast: float = 1.0) -> dict:
    """How many times faster ``fast`` does the same work as ``slow``, from one :func:`alternate` result.

    ``work_*`` is the work each timed call does (e.g. configurations x steps), so sides doing different
    amounts of work per call still compare as throughputs. Headline: the median over rounds of the
    ratio of adjacent runs; the ratio of medians is kept beside it.
    """
    a, b = timing["raw_s"][slow], timing["raw_s"][fast]
    per_round = [(ta / work_slow) / (tb / work_fast) for ta, tb in zip(a, b)]
    out = {
        "slow": slow,
        "fast": fast,
        "ratio": statistics.median(per_round),
        "ratio_of_medians": (statistics.median(a) / work_slow) / (statistics.median(b) / work_fast),
        "per_round": per_round,
    }
    if "cpu_s" in timing:  # the same ratio in process CPU time (less sensitive to other processes' load)
        ca, cb = timing["cpu_s"][slow], timing["cpu_s"][fast]
        out["ratio_cpu"] = statistics.median([(x / work_slow) / (y / work_fast) for x, y in zip(ca, cb) if y > 0]
                                             or [float("nan")])
    return out


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine_info(device: torch.device) -> dict:
    """Machine, software and threading facts recorded in every bench JSON."""
    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "device": str(device),
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda_version": torch.version.cuda,
        "git_commit": _git_commit(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
    }
    try:
        import vbmi

        info["vbmi_version"] = vbmi.__version__
    except ImportError:  # pragma: no cover
        info["vbmi_version"] = "unknown"
    return info
