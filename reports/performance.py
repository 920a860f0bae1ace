# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Engineering appendix: performance
#
# Not part of the paper: how fast vbmi is, against a plain training loop and against the machine. Every
# speed figure here comes from `python -m bench` (`make bench`): each comparison times two programs
# **alternately in the same run** (A B A B ...), after checking that both compute the same numbers, and
# reports the median of the per-round ratios, so the load on a shared machine hits both sides alike.
# Absolute rates depend on the machine and its load; the ratios are the claims. One column per bench
# JSON (this machine's run under the results directory, and references from `bench/reference/`).
# The last table is this pipeline run's own per-rule times, from Snakemake's `benchmark:` files.

# %% tags=["parameters"]
performance_cube = "results/cubes/performance.nc"

# %% tags=["remove_input"]
import json
from datetime import datetime

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.ticker import NullLocator

from vbmi import plotting
from vbmi.results import read_cube

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100})
pd.set_option("display.max_colwidth", None)
cube = read_cube(performance_cube, kind="performance")
sources = json.loads(cube.attrs.get("sources_json", "{}"))
run_commit = str(cube.attrs.get("git_commit", "unknown"))


def table(var, index, columns, fmt="{:.3g}"):
    """A variable as a pivot table (rows `index`, columns `columns`), formatted; empty cells say 'not measured'."""
    df = cube[var].to_dataframe().reset_index().dropna(subset=[var])
    return df.pivot_table(index=index, columns=columns, values=var).map(
        lambda v: "not measured" if pd.isna(v) else fmt.format(v))


def bare(commit: str) -> str:
    return str(commit or "unknown").removesuffix("-dirty")


def age_days(created: str | None) -> float:
    try:
        a = datetime.fromisoformat(str(created))
        b = datetime.fromisoformat(str(cube.attrs.get("created_at")))
        return (b - a).total_seconds() / 86400
    except (TypeError, ValueError):
        return float("nan")


# %% [markdown]
# ## Where the numbers come from
#
# A bench JSON measured on another commit than this run's code measures other code: it is flagged
# here, and its ratios should be re-measured (`make bench`) before they are read as this code's.

# %% tags=["remove_input"]
if sources:
    flags = []
    for src, info in sources.items():
        commit = str(info.get("git_commit") or "unknown")
        same = bare(commit) == bare(run_commit) and bare(commit) != "unknown"
        age = age_days(info.get("created_at"))
        note = ("same commit as this run" if same else
                f"**another commit**: `{commit[:12]}` (this run: `{run_commit[:12]}`)")
        if commit.endswith("-dirty"):
            note += ", with uncommitted changes"
        if np.isfinite(age) and age >= 1:
            note += f", measured {age:.0f} day(s) before this run"
        flags.append(f"- {src} (`{info.get('file')}`): {note}.")
    display(Markdown("\n".join(flags)))
    keys = ["file", "size", "device", "gpu_name", "cpu_model", "cpu_count", "torch_version", "torch_threads",
            "git_commit", "created_at", "load_average_start", "load_average_end", "torch_mist", "wall_s"]
    display(pd.DataFrame({src: {k: info.get(k) for k in keys} for src, info in sources.items()}).fillna("n/a"))
else:
    display(Markdown("**Not measured:** no bench JSON was found (run `make bench`, or add a reference under "
                     "`bench/reference/`); only the per-rule times below are shown."))

# %% [markdown]
# ## Targets of the training engine: met or missed
#
# Computed from the bench JSONs above, per source: (1) vbmi's trainer at least as fast as the plain loop
# (ratio >= 1.0x) in every single-run cell (each critic and batch size); (2) E stacked separable critics
# at least 2x faster than the same runs one at a time, at E = 8 and (3) at E = 64.

# %% tags=["remove_input"]
srcs = list(cube.source.values) if "source" in cube.coords else []
rows = []
for src in srcs:
    if "train_speedup" in cube:
        sp = cube.train_speedup.sel(source=src).to_series().dropna()
        if len(sp):
            slow = sp[sp < 1.0]
            rows.append({"source": src, "target": "vbmi >= 1.0x the plain loop in every single-run cell",
                         "measured": f"min {sp.min():.2f}x over {len(sp)} cells",
                         "verdict": "met" if slow.empty else f"missed in {len(slow)} of {len(sp)} cells: " + ", ".join(
                             f"{c} K={int(k)} {v:.2f}x" for (c, k), v in slow.items())})
        else:
            rows.append({"source": src, "target": "vbmi >= 1.0x the plain loop in every single-run cell",
                         "measured": "not measured", "verdict": "not measured"})
    else:
        rows.append({"source": src, "target": "vbmi >= 1.0x the plain loop in every single-run cell",
                     "measured": "not measured", "verdict": "not measured"})
    for e in (8, 64):
        name = f"stacked separable ensemble >= 2x one at a time, E = {e}"
        v = np.nan
        if "ensemble_speedup" in cube and "separable" in cube.critic.values and e in cube.configs.values:
            v = float(cube.ensemble_speedup.sel(source=src, critic="separable", configs=e))
        rows.append({"source": src, "target": name, "measured": "not measured" if np.isnan(v) else f"{v:.2f}x",
                     "verdict": "not measured" if np.isnan(v) else ("met" if v >= 2.0 else "missed")})
if rows:
    targets = pd.DataFrame(rows).set_index(["source", "target"])
    met = (targets.verdict == "met").sum()
    missed = targets.verdict.str.startswith("missed").sum()
    unmeasured = (targets.verdict == "not measured").sum()
    display(Markdown(f"**{met} met, {missed} missed, {unmeasured} not measured.**"))
    display(targets)
else:
    display(Markdown("**Not measured:** no bench JSON, so no target can be checked."))

# %% [markdown]
# ### Other targets recorded by the bench run
#
# The targets the bench itself checked when it ran (its JSON's `targets`), each a ratio measured within
# that run.

# %% tags=["remove_input"]
if "target_measured" in cube:
    t = cube[["target_measured", "target_goal"]].to_dataframe().dropna().reset_index()
    t["verdict"] = np.where(t["target_measured"] >= t["target_goal"], "met", "missed")
    t["measured"] = [plotting.fmt_num(v, 2) for v in t["target_measured"]]
    t["goal"] = [plotting.fmt_num(v, 2) for v in t["target_goal"]]
    display(t[["source", "target", "measured", "goal", "verdict"]].set_index(["source", "target"]))
else:
    display(Markdown("**Not measured:** the bench JSONs record no targets."))

# %% [markdown]
# ## Critic training throughput vs batch size
# One configuration, vbmi's trainer (`train_ensemble` with one run) against a plain loop written like
# the reference notebook (its separable and tile-and-concatenate joint critics, one Adam, a Python loop),
# same initial weights and batches. Joint critics scale as K^2.

# %% tags=["remove_input"]
if "train_steps_per_s" not in cube:
    display(Markdown("**Not measured** (no single-run comparison in the bench JSONs)."))
else:
    da = cube["train_steps_per_s"]
    srcs, critics = list(da.source.values), list(da.critic.values)
    fig, axes = plt.subplots(len(critics), len(srcs), figsize=(5.0 * len(srcs), 3.4 * len(critics)),
                             squeeze=False, sharex=True)
    for i, critic in enumerate(critics):
        for j, src in enumerate(srcs):
            ax = axes[i][j]
            for side in da.side.values:
                s = da.sel(source=src, critic=critic, side=side).dropna("batch_size")
                ax.plot(s.batch_size, s, marker="o", label=str(side))
            ax.set(xscale="log", yscale="log", ylabel="steps / s")
            ax.set_title(f"{critic} critic\n{src}", fontsize=9)
            ax.xaxis.set_minor_locator(NullLocator())  # batch sizes are labelled below instead
            ax.set_xticks(list(da.batch_size.values), [str(v) for v in da.batch_size.values])
            if i == len(critics) - 1:
                ax.set_xlabel("batch size K")
            ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()
    display(table("train_speedup", ["critic", "batch_size"], "source", "{:.2f}x"))

# %% [markdown]
# ## Ensembles: E stacked critics vs the same runs one at a time
# Configurations x steps per second (batch 64, one thread on a CPU). On a CPU a stacked joint critic is
# not faster than the loop, which is why vbmi's trainer stacks joint critics only on CUDA.

# %% tags=["remove_input"]
if "ensemble_config_steps_per_s" not in cube:
    display(Markdown("**Not measured** (no ensemble comparison in the bench JSONs)."))
else:
    display(table("ensemble_config_steps_per_s", ["critic", "configs"], ["source", "ensemble_side"], "{:.1f}"))
    display(table("ensemble_speedup", ["critic", "configs"], "source", "{:.2f}x"))

# %% [markdown]
# ## Optimal-critic Monte Carlo
# Bound evaluations per second (NWJ, NCE, I_alpha, JS on one batch of K = 64), vectorised over replicates
# vs a Python loop over batches; then, at K = 512, nanoseconds per score element of the four bounds
# against the machine's own exp and logsumexp passes and its matmul rate, measured in the same run.
# Rows `profile_*` time each piece separately (`registry_*`: the plain `vbmi.bounds` calls).

# %% tags=["remove_input"]
if "mc_evaluations_per_s" in cube:
    display(table("mc_evaluations_per_s", "mc_side", "source", "{:.0f}"))
    display(cube["mc_speedup"].to_series().dropna().map(lambda v: f"{v:.1f}x").to_frame("vectorised / loop"))
else:
    display(Markdown("**Not measured** (no Monte Carlo comparison in the bench JSONs)."))
if "ns_per_element" in cube:
    display(table("ns_per_element", "program", ["source", "dtype"], "{:.2f}"))
    extra = cube[["roofline_fraction", "matmul_gflops"]].to_dataframe().dropna(how="all")
    display(pd.DataFrame({
        "fraction of the logsumexp roofline": [plotting.fmt_num(v, 2) for v in extra.roofline_fraction],
        "matmul GFLOP/s": [plotting.fmt_num(v, 1) for v in extra.matmul_gflops]}, index=extra.index))

# %% [markdown]
# ## Memory: joint critic at batch 512, chunked vs not
# Peak memory of one forward + backward (CPU: peak RSS increase of a fresh process; CUDA: peak allocated),
# with `JointCritic`'s default chunking (checkpointed row chunks) and with `max_chunk_elements=None`.

# %% tags=["remove_input"]
if "peak_memory_mib" in cube:
    display(table("peak_memory_mib", "memory_side", "source", "{:.0f} MiB"))
    display(table("memory_step_s", "memory_side", "source", "{:.2f} s"))
else:
    display(Markdown("**Not measured** (no memory comparison in the bench JSONs)."))

# %% [markdown]
# ## This run's jobs (Snakemake `benchmark:` files)

# %% tags=["remove_input"]
if "rule_wall_s" in cube:
    jobs = cube[["rule_wall_s", "rule_cpu_s", "rule_max_rss_mib"]].to_dataframe()
    jobs["rule"] = [j.split("/")[0] for j in jobs.index]
    per_rule = jobs.groupby("rule").agg(jobs=("rule_wall_s", "size"), wall_s=("rule_wall_s", "sum"),
                                        cpu_s=("rule_cpu_s", "sum"), max_rss_mib=("rule_max_rss_mib", "max"))
    display(plotting.format_frame(per_rule.sort_values("wall_s", ascending=False), 1))
    slowest = jobs.drop(columns="rule").sort_values("rule_wall_s", ascending=False)
    n_show = min(15, len(slowest))
    display(Markdown(f"{len(jobs)} benchmarked jobs, {jobs['rule_wall_s'].sum():.0f} s of job wall time in total "
                     "(per rule above). " + (f"The {n_show} slowest of the {len(jobs)} jobs:" if n_show < len(jobs)
                                             else "Every job:")))
    display(plotting.format_frame(slowest.head(n_show), 1))
else:
    display(Markdown("No `benchmark:` files were found under the results directory."))
