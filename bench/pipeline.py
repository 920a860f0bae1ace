"""Comparison 5 (``python -m bench --pipeline``): wall time of the default-scale pipeline on this machine,
and the per-rule times Snakemake's ``benchmark:`` files record (``{results_dir}/benchmarks/**/*.tsv``).

The wall time is indicative (one run, whatever else the machine is doing); the per-rule table is what
the report's performance section shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from vbmi.performance import BENCHMARK_FIELDS, summarise_benchmarks  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]


def bench_pipeline(results_dir: str | os.PathLike, cores: int = 2, extra: list[str] | None = None) -> dict:
    """Run the default-scale pipeline into ``results_dir`` and time it; then summarise its benchmark files."""
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake) if snakemake.exists() else "snakemake", "--cores", str(cores),
           "--workflow-profile", "workflow/profiles/default", "--config", f"results_dir={results_dir}",
           *(extra or [])]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rows = summarise_benchmarks(Path(REPO, results_dir, "benchmarks"))
    out = {"comparison": "pipeline", "command": " ".join(cmd), "returncode": proc.returncode, "wall_s": wall,
           "cores": cores, "rules": rows, "sum_rule_s": sum(r["s"] for r in rows)}
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-4000:]
    print(f"  pipeline: exit {proc.returncode}, wall {wall:.0f} s on {cores} cores, {len(rows)} benchmark files "
          f"summing {out['sum_rule_s']:.0f} s", flush=True)
    return out
