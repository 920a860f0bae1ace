"""The ``performance`` cube: bench JSONs and Snakemake ``benchmark:`` files on labelled dims.

:func:`performance_dataset` reads any number of ``python -m bench`` JSONs (a CPU run, a GPU reference
under ``bench/reference/``) and a directory of benchmark TSVs, and lays them out on labelled dims:
``source`` (one per JSON: device and machine), ``critic``, ``batch_size``, ``configs``, ``dtype``,
``side`` (which program of a comparison), ``job`` (one per benchmark file). Missing combinations are NaN.

It only *reads* files: the bench itself (``bench/``, a development tool) is never imported by the
library or the pipeline; the workflow's ``performance_cube`` rule calls this module.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["performance_dataset", "summarise_benchmarks", "source_label", "BENCHMARK_FIELDS"]

BENCHMARK_FIELDS = ("s", "max_rss", "mean_load", "cpu_time")


def summarise_benchmarks(directory: str | os.PathLike) -> list[dict]:
    """One row per Snakemake benchmark file under ``directory``: job name (path without .tsv) and the
    mean of each numeric field over the file's repeats (``s`` = wall seconds, ``max_rss`` MiB)."""
    root = Path(directory)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        with path.open(newline="") as fh:
            records = list(csv.DictReader(fh, delimiter="\t"))
        if not records:
            continue
        row: dict = {"job": str(path.relative_to(root).with_suffix("")), "repeats": len(records)}
        for field in BENCHMARK_FIELDS:
            vals = []
            for rec in records:
                try:
                    vals.append(float(rec.get(field, "")))
                except (TypeError, ValueError):
                    pass
            row[field] = sum(vals) / len(vals) if vals else float("nan")
        row["rule"] = row["job"].split("/")[0]
        rows.append(row)
    return rows


def source_label(result: dict, path: str | os.PathLike = "") -> str:
    """``reference cuda: NVIDIA H200`` / ``local cpu: Intel Xeon, 1 thread(s)`` (where the JSON lives + machine)."""
    m = result["machine"]
    what = m.get("gpu_name") or f"{m.get('cpu_model', 'CPU')}, {m.get('torch_threads')} thread(s)"
    where = "reference" if Path(path).parent.name == "reference" else "local"
    return f"{where} {m['device'].split(':')[0]}: {what}"


def _var(frame: pd.DataFrame, dims: list[str], value: str, units: str, long_name: str, description: str) -> xr.DataArray:
    da = frame.set_index(dims)[value].to_xarray() if len(frame) else xr.DataArray(np.zeros((0,) * len(dims)),
                                                                                   dims=dims,
                                                                                   coords={d: [] for d in dims})
    da = da.astype(float)
    da.attrs = {"units": units, "long_name": long_name, "description": description}
    return da


def performance_dataset(json_paths: list[str | os.PathLike], benchmarks_dir: str | os.PathLike | None) -> xr.Dataset:
    """The performance cube body (see module docstring); ``json_paths`` may be empty."""
    single, ens, mc, roof, mem, targ, machines = [], [], [], [], [], [], {}
    for path in json_paths:
        result = json.loads(Path(path).read_text())
        src = source_label(result, path)
        if src in machines:  # two JSONs from the same kind of machine: tell them apart by file name
            src = f"{src} [{Path(path).name}]"
        machines[src] = {**result["machine"], "file": Path(path).name, "size": result.get("size"),
                         "torch_mist": result.get("torch_mist"), "wall_s": result.get("wall_s")}
        for r in result.get("single", []):
            for side, v in r["steps_per_s"].items():
                single.append({"source": src, "critic": r["critic"], "batch_size": r["batch_size"], "side": side,
                               "steps_per_s": v, "speedup": r["speedup"]["ratio"]})
        for r in result.get("ensemble", []):
            for side, v in r["config_steps_per_s"].items():
                ens.append({"source": src, "critic": r["critic"], "configs": r["configs"], "side": side,
                            "config_steps_per_s": v, "speedup": r["speedup"]["ratio"]})
        if "mc_loop" in result:
            r = result["mc_loop"]
            for side, v in r["evaluations_per_s"].items():
                mc.append({"source": src, "side": side, "evaluations_per_s": v, "speedup": r["speedup"]["ratio"]})
        for dtype, r in result.get("mc_roofline", {}).get("by_dtype", {}).items():
            for prog, v in {**r["ns_per_element"], **{f"profile_{k}": x for k, x in
                                                      r["profile_ns_per_element"].items()}}.items():
                roof.append({"source": src, "dtype": dtype, "program": prog, "ns_per_element": v,
                             "fraction": r["fraction_of_logsumexp_roofline"], "gflops": r["matmul_gflops"]})
        if "memory" in result:
            r = result["memory"]
            for side in r["peak_mib"]:
                mem.append({"source": src, "side": side, "peak_mib": r["peak_mib"][side], "wall_s": r["wall_s"][side]})
        for t in result.get("targets", []):
            targ.append({"source": src, "target": t["name"], "measured": t["measured"],
                         "goal": t["target"]})
    one = lambda df, dims: df.drop_duplicates(dims)  # noqa: E731 (per-comparison values repeat across sides)
    data = {}
    if single:
        df = pd.DataFrame(single)
        data["train_steps_per_s"] = _var(df, ["source", "critic", "batch_size", "side"], "steps_per_s", "1/s",
                                         "training steps per second (one configuration)",
                                         "Comparison 1: vbmi's trainer (side=vbmi) vs the notebook-style loop.")
        data["train_speedup"] = _var(one(df, ["source", "critic", "batch_size"]), ["source", "critic", "batch_size"],
                                     "speedup", "1", "vbmi trainer speedup over the notebook loop",
                                     "Median over alternated rounds of loop time / vbmi time (comparison 1).")
    if ens:
        df = pd.DataFrame(ens).rename(columns={"side": "ensemble_side"})
        data["ensemble_config_steps_per_s"] = _var(
            df, ["source", "critic", "configs", "ensemble_side"], "config_steps_per_s", "1/s",
            "configurations x steps per second", "Comparison 2: E stacked critics vs the same runs one at a time.")
        data["ensemble_speedup"] = _var(one(df, ["source", "critic", "configs"]), ["source", "critic", "configs"],
                                        "speedup", "1", "stacked-ensemble speedup over the loop",
                                        "Median over alternated rounds of loop time / stacked time.")
    if mc:
        df = pd.DataFrame(mc).rename(columns={"side": "mc_side"})
        data["mc_evaluations_per_s"] = _var(df, ["source", "mc_side"], "evaluations_per_s", "1/s",
                                            "bound evaluations per second",
                                            "Comparison 3: four bounds on one batch (K = 64), vectorised vs loop.")
        data["mc_speedup"] = _var(one(df, ["source"]), ["source"], "speedup", "1", "vectorised MC speedup",
                                  "Median over alternated rounds of loop time / vectorised time.")
    if roof:
        df = pd.DataFrame(roof)
        data["ns_per_element"] = _var(df, ["source", "dtype", "program"], "ns_per_element", "ns",
                                      "nanoseconds per score element",
                                      "K = 512: the four bounds, score matrix + bounds, exp and logsumexp passes, "
                                      "and the profile of the MC's pieces (program profile_*).")
        data["roofline_fraction"] = _var(one(df, ["source", "dtype"]), ["source", "dtype"], "fraction", "1",
                                         "fraction of the logsumexp roofline",
                                         "logsumexp pass time / four-bounds time, per alternated round (median).")
        data["matmul_gflops"] = _var(one(df, ["source", "dtype"]), ["source", "dtype"], "gflops", "GFLOP/s",
                                     "large matmul throughput", "The machine's dense matmul rate in the same run.")
    if mem:
        df = pd.DataFrame(mem).rename(columns={"side": "memory_side"})
        data["peak_memory_mib"] = _var(df, ["source", "memory_side"], "peak_mib", "MiB", "peak memory of one step",
                                       "Comparison 4: joint critic, batch 512; CPU: peak RSS increase, "
                                       "CUDA: peak allocated.")
        data["memory_step_s"] = _var(df, ["source", "memory_side"], "wall_s", "s", "step time",
                                     "Forward + backward time of that step.")
    if targ:
        df = pd.DataFrame(targ)
        data["target_measured"] = _var(df, ["source", "target"], "measured", "1", "measured ratio",
                                       "The ratio each issue target is about, measured in that source's run.")
        data["target_goal"] = _var(df, ["source", "target"], "goal", "1", "target",
                                   "The issue's target for that ratio (device dependent).")
    rules = summarise_benchmarks(benchmarks_dir) if benchmarks_dir and Path(benchmarks_dir).is_dir() else []
    if rules:
        df = pd.DataFrame(rules)
        data["rule_wall_s"] = _var(df, ["job"], "s", "s", "job wall time", "Snakemake benchmark: wall seconds.")
        data["rule_cpu_s"] = _var(df, ["job"], "cpu_time", "s", "job CPU time", "Snakemake benchmark: CPU seconds.")
        data["rule_max_rss_mib"] = _var(df, ["job"], "max_rss", "MiB", "job peak RSS",
                                        "Snakemake benchmark: maximum resident set size.")
    ds = xr.Dataset(data)
    ds.attrs["sources_json"] = json.dumps(machines, sort_keys=True, default=str)
    ds.attrs["benchmarks_dir"] = str(benchmarks_dir or "")
    return ds
