"""Fixture for reports/performance.py: a performance cube from a bench JSON and two benchmark files."""

from __future__ import annotations

import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def _bench_json(tmp_dir: pathlib.Path) -> pathlib.Path:
    """A committed reference JSON if there is one, else a minimal hand-made one with every comparison."""
    refs = sorted((REPO / "bench" / "reference").glob("*.json"))
    if refs:
        return refs[0]
    timing = {"raw_s": {"a": [1.0], "b": [2.0]}, "median_s": {"a": 1.0, "b": 2.0}}
    sp = {"ratio": 2.0, "ratio_of_medians": 2.0, "per_round": [2.0]}
    result = {
        "size": "tiny",
        "machine": {"device": "cpu", "cpu_model": "fixture CPU", "torch_threads": 1, "gpu_name": None},
        "single": [{"critic": c, "batch_size": k, "steps_per_s": {"vbmi": 10.0 / k, "notebook_loop": 5.0 / k},
                    "speedup": sp} for c in ("separable", "joint") for k in (8, 16)],
        "ensemble": [{"critic": "separable", "configs": e, "config_steps_per_s": {"vbmi_stacked": 3.0, "loop": 2.0},
                      "speedup": sp} for e in (1, 2)],
        "mc_loop": {"evaluations_per_s": {"vectorised": 100.0, "batch_loop": 5.0}, "speedup": sp, "timing": timing},
        "mc_roofline": {"by_dtype": {"float64": {
            "ns_per_element": {"four_bounds": 20.0, "logsumexp_pass": 3.0}, "fraction_of_logsumexp_roofline": 0.15,
            "matmul_gflops": 40.0, "profile_ns_per_element": {"score_matrix": 5.0}}}},
        "memory": {"peak_mib": {"chunked": 10.0, "unchunked": 30.0}, "wall_s": {"chunked": 1.5, "unchunked": 1.0}},
        "targets": [{"name": "ensemble speedup, E=2", "measured": 2.0, "target": 1.5}],
    }
    path = tmp_dir / "bench_tiny_cpu.json"
    path.write_text(json.dumps(result))
    return path


def build(tmp_dir: pathlib.Path) -> dict:
    sys.path.insert(0, str(REPO))
    try:
        from bench.cube import performance_dataset
    finally:
        sys.path.remove(str(REPO))
    from vbmi.results import write_cube

    bench_dir = tmp_dir / "benchmarks"
    (bench_dir / "train").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (bench_dir / "train" / "gaussian.tsv").write_text(header + "12.5\t0:00:12\t300.1\t1\t1\t1\t0\t0\t95.0\t11.9\n")
    (bench_dir / "run_info.tsv").write_text(header + "1.0\t0:00:01\t80.0\t1\t1\t1\t0\t0\t10\t0.9\n")
    ds = performance_dataset([_bench_json(tmp_dir)], bench_dir)
    path = write_cube(ds, tmp_dir / "performance.nc", kind="performance", scale="tiny", device="cpu")
    return {"performance_cube": str(path)}
