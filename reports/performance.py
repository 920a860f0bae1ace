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
# # Performance
#
# How fast vbmi is, against its peers and against the machine. Every speed figure here comes from
# `python -m bench` (`make bench`): each comparison times two programs **alternately in the same run**
# (A B A B ...), after checking that both compute the same numbers, and reports the median of the
# per-round ratios, so the load on a shared machine hits both sides alike. Absolute rates depend on the
# machine and its load; the ratios are the claims. One column per bench JSON (this machine's CPU run,
# and a GPU reference from `bench/reference/` when one has been recorded). The last table is this
# pipeline run's own per-rule times, from Snakemake's `benchmark:` files.

# %% tags=["parameters"]
performance_cube = "results/cubes/performance.nc"

# %% tags=["remove_cell"]
import json

import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator
import pandas as pd
from IPython.display import Markdown, display

from vbmi.results import read_cube

cube = read_cube(performance_cube, kind="performance")
sources = json.loads(cube.attrs.get("sources_json", "{}"))


def table(var, index, columns, fmt="{:.3g}"):
    """A variable as a pivot table (rows `index`, columns `columns`), formatted."""
    df = cube[var].to_dataframe().reset_index().dropna(subset=[var])
    return df.pivot_table(index=index, columns=columns, values=var).map(
        lambda v: "" if pd.isna(v) else fmt.format(v))


# %% [markdown]
# ## Where the numbers come from

# %% tags=["remove_input"]
if sources:
    keys = ["file", "size", "device", "gpu_name", "cpu_model", "cpu_count", "torch_version", "torch_threads",
            "git_commit", "created_at", "load_average_start", "load_average_end", "torch_mist", "wall_s"]
    display(pd.DataFrame({src: {k: info.get(k) for k in keys} for src, info in sources.items()}))
else:
    display(Markdown("No bench JSON was found (run `make bench`, or add a reference under `bench/reference/`); "
                     "only the per-rule times below are shown."))

# %% [markdown]
# ## Targets
# The targets, each a ratio measured within one run: stacked ensemble vs one-at-a-time loop
# (>= 1.5x on one CPU thread at E = 64 separable critics, >= 10x on a GPU), the vectorised Monte Carlo
# vs a batch-by-batch loop (>= 20x at K = 64), and the four optimal-critic bounds at K = 512 as a
# fraction of one logsumexp pass over the same elements (>= 30%).

# %% tags=["remove_input"]
if "target_measured" in cube:
    t = cube[["target_measured", "target_goal"]].to_dataframe().dropna().reset_index()
    t["met"] = t["target_measured"] >= t["target_goal"]
    display(t.rename(columns={"target_measured": "measured", "target_goal": "goal"}).set_index(["source", "target"]))

# %% [markdown]
# ## Critic training throughput vs batch size
# One configuration, vbmi's trainer (`train_ensemble` with one run) against a plain loop written like
# the reference notebook (its separable and tile-and-concatenate joint critics, one Adam, a Python loop),
# same initial weights and batches. Joint critics scale as K^2.

# %% tags=["remove_input"]
if "train_steps_per_s" in cube:
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
# not faster than the loop (issue 4), which is why vbmi's trainer stacks joint critics only on CUDA.

# %% tags=["remove_input"]
if "ensemble_config_steps_per_s" in cube:
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
    display(cube["mc_speedup"].to_dataframe().dropna().round(1))
if "ns_per_element" in cube:
    display(table("ns_per_element", "program", ["source", "dtype"], "{:.2f}"))
    display(cube[["roofline_fraction", "matmul_gflops"]].to_dataframe().dropna(how="all"))

# %% [markdown]
# ## Memory: joint critic at batch 512, chunked vs not
# Peak memory of one forward + backward (CPU: peak RSS increase of a fresh process; CUDA: peak allocated),
# with `ConcatCritic`'s default chunking (checkpointed row chunks) and with `max_chunk_elements=None`.

# %% tags=["remove_input"]
if "peak_memory_mib" in cube:
    display(table("peak_memory_mib", "memory_side", "source", "{:.0f} MiB"))
    display(table("memory_step_s", "memory_side", "source", "{:.2f} s"))

# %% [markdown]
# ## This run's jobs (Snakemake `benchmark:` files)

# %% tags=["remove_input"]
if "rule_wall_s" in cube:
    jobs = cube[["rule_wall_s", "rule_cpu_s", "rule_max_rss_mib"]].to_dataframe()
    jobs["rule"] = [j.split("/")[0] for j in jobs.index]
    per_rule = jobs.groupby("rule").agg(jobs=("rule_wall_s", "size"), wall_s=("rule_wall_s", "sum"),
                                        cpu_s=("rule_cpu_s", "sum"), max_rss_mib=("rule_max_rss_mib", "max"))
    display(per_rule.sort_values("wall_s", ascending=False).round(1))
    display(Markdown(f"{len(jobs)} benchmarked jobs, {jobs['rule_wall_s'].sum():.0f} s of job wall time in total. "
                     "The slowest jobs:"))
    display(jobs.sort_values("rule_wall_s", ascending=False).head(15).round(1))
else:
    display(Markdown("No `benchmark:` files were found under the results directory."))
