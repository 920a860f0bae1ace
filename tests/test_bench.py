"""The bench runs end to end at its tiny size and writes a complete JSON (no timing thresholds here:
speed claims are ratios measured by ``python -m bench``; these tests only check the bookkeeping)."""

from __future__ import annotations

import json
import math
import statistics
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "targets:" in proc.stdout  # the table was printed
    files = list(out.glob("bench_tiny_*.json"))
    assert len(files) == 1
    return json.loads(files[0].read_text())  # strict JSON: json.loads would accept NaN, so check below


def _finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_machine_and_provenance(tiny):
    m = tiny["machine"]
    for key in ("hostname", "platform", "cpu_model", "cpu_count", "torch_version", "torch_threads", "device",
                "git_commit", "created_at", "load_average_start", "load_average_end", "vbmi_version"):
        assert key in m, key
    assert m["torch_threads"] == 1
    assert m["device"] == "cpu"
    assert tiny["torch_mist"].startswith(("installed", "not installed"))
    assert tiny["size"] == "tiny" and tiny["sizes"]["repeats"] >= 1


def test_every_comparison_present_with_raw_timings(tiny):
    rows = tiny["single"] + tiny["ensemble"] + [tiny["mc_loop"]]
    assert {(r["critic"], r["batch_size"]) for r in tiny["single"]} == {
        (c, k) for c in ("separable", "joint") for k in tiny["sizes"]["single_batches"]}
    assert sorted(r["configs"] for r in tiny["ensemble"] if r["critic"] == "separable") == \
        tiny["sizes"]["ensemble_sizes"]["separable"]
    for r in rows:
        reps = tiny["sizes"]["mc_repeats" if r["comparison"] == "mc_loop" else "repeats"]
        raw = r["timing"]["raw_s"]
        assert len(raw) >= 2  # two programs, timed alternately
        for name, times in raw.items():
            assert len(times) == reps, (r["comparison"], name)
            assert all(_finite_positive(t) for t in times)
            assert r["timing"]["median_s"][name] == pytest.approx(statistics.median(times))
        assert _finite_positive(r["speedup"]["ratio"]) and _finite_positive(r["speedup"]["ratio_of_medians"])
        assert len(r["speedup"]["per_round"]) == reps


def test_roofline_memory_and_profiles(tiny):
    for dtype, r in tiny["mc_roofline"]["by_dtype"].items():
        for key in ("four_bounds", "proposal_fused_inplace", "scores_and_four_bounds", "exp_pass", "logsumexp_pass"):
            assert _finite_positive(r["ns_per_element"][key]), (dtype, key)
        assert _finite_positive(r["fraction_of_logsumexp_roofline"])
        assert _finite_positive(r["matmul_gflops"])
        assert all(_finite_positive(v) for v in r["profile_ns_per_element"].values())
    mem = tiny["memory"]
    assert set(mem["peak_mib"]) == {"chunked", "unchunked"}
    assert all(math.isfinite(v) for v in mem["peak_mib"].values())
    assert _finite_positive(mem["time_ratio_chunked_over_unchunked"])
    prof = tiny["ensemble_profile"]
    assert prof["top_ops"] and 0 <= prof["share_matmul"] <= 1


def test_both_sides_agreed(tiny):
    checks = tiny["checks"]
    comparisons = {c["comparison"] for c in checks}
    assert comparisons == {"single", "ensemble", "mc_loop", "mc_roofline", "memory"}
    for c in checks:
        assert c["agree"] is True, c
        assert c["values_checked"] >= 1 and math.isfinite(c["max_abs_diff"])
    n_dtypes = len(tiny["mc_roofline"]["by_dtype"])
    assert len(checks) == len(tiny["single"]) + len(tiny["ensemble"]) + 4 + n_dtypes + 1


def test_targets_listed_with_finite_measurements(tiny):
    names = " ".join(t["name"] for t in tiny["targets"])
    assert "ensemble speedup" in names and "MC vectorised" in names and "roofline" in names
    for t in tiny["targets"]:
        assert _finite_positive(t["measured"]) and isinstance(t["met"], bool)


def test_benchmark_summary(tmp_path):
    sys.path.insert(0, str(REPO))
    try:
        from bench.pipeline import summarise_benchmarks
    finally:
        sys.path.remove(str(REPO))
    (tmp_path / "train").mkdir()
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train" / "gaussian.tsv").write_text(header + "12.5\t0:00:12\t300.1\t1\t1\t1\t0\t0\t95.0\t11.9\n"
                                                     + "7.5\t0:00:07\t100.1\t1\t1\t1\t0\t0\t85.0\t7.1\n")
    (tmp_path / "run_info.tsv").write_text(header + "1.0\t0:00:01\tNA\t1\t1\t1\t0\t0\t10\t0.9\n")
    rows = {r["job"]: r for r in summarise_benchmarks(tmp_path)}
    assert set(rows) == {"train/gaussian", "run_info"}
    assert rows["train/gaussian"]["s"] == pytest.approx(10.0) and rows["train/gaussian"]["repeats"] == 2
    assert rows["train/gaussian"]["rule"] == "train" and math.isnan(rows["run_info"]["max_rss"])


def test_adam_probe_keeps_the_probed_zeros_and_times_both_sides():
    """The probe must time sqrt and the fused step on a second moment that still holds its zeros."""
    sys.path.insert(0, str(REPO))
    try:
        from bench.adam_probe import probe
    finally:
        sys.path.remove(str(REPO))
    rows = probe(shape=(2, 8, 8), fractions=(0.5,), repeats=1, inner=2)
    assert [(r["fraction"], r["fill"]) for r in rows] == [(0.5, "zero"), (0.5, "subnormal")]
    for r in rows:
        assert r["sqrt_ms"] > 0 and r["fused_adam_step_ms"] > 0
        assert 0.35 < r["share_after"] < 0.65  # about half of v stayed zero / subnormal
