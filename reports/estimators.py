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
# # Estimators on tasks with known MI
#
# `vbmi.estimate_mi` (the default neural critic: normal-score preprocessing, Gaussian-copula critic plus a
# learned residual, InfoNCE on the held-out test split), the KSG estimator (k = 3) and the linear-Gaussian
# (CCA) estimator, each on the tasks of `vbmi.tasks`, whose true MI is exact (Gaussians, multivariate
# Student-t, and invertible transforms of them). An estimate is within tolerance when its error is at most
# max(0.1 nat, 20% of the truth). The interval of each method is described in `vbmi.estimate` and
# `vbmi.baselines`; coverage counts the runs whose interval holds the truth (nominal 95%).

# %% tags=["parameters"]
est_cube = "results/cubes/estimators.nc"

# %% tags=["remove_input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from vbmi.results import read_cube

cube = read_cube(est_cube, kind="estimators")  # note: dim "method" clashes with sel(method=...): sel({...})
sns.set_theme(style="whitegrid", context="paper")
truth = cube.true_mi
err = abs(cube.estimate - truth)
within = abs(cube.estimate.mean("seed") - truth) <= np.maximum(0.1, 0.2 * truth)
covered = (cube.interval_low <= truth) & (truth <= cube.interval_high)
summary = pd.DataFrame({
    "tasks within tolerance": [f"{int(within.sel({'method': m}).sum())}/{cube.sizes['task']}" for m in cube.method.values],
    "mean absolute error (nat)": [float(err.sel({"method": m}).mean()) for m in cube.method.values],
    "interval coverage": [f"{float(covered.sel({'method': m}).mean()):.0%}" for m in cube.method.values],
    "seconds per estimate": [float(cube.seconds.sel({"method": m}).mean()) for m in cube.method.values],
}, index=pd.Index(cube.method.values, name="method"))
display(Markdown(f"{cube.attrs.get('n_samples', '?')} pairs per task, {cube.sizes['seed']} seed(s), "
                 f"{cube.sizes['task']} task(s); scale `{cube.attrs.get('scale', '?')}`."))
display(summary.style.format({"mean absolute error (nat)": "{:.3f}", "seconds per estimate": "{:.1f}"}))

# %% [markdown]
# ## Every estimator on every task
# Mean estimate over seeds, with the mean interval; `*` marks a task outside the tolerance.

# %% tags=["remove_input"]
rows = []
for t in cube.task.values:
    row = {"task": t, "true MI": float(truth.sel(task=t))}
    for m in cube.method.values:
        c = cube.sel({"task": t, "method": m})
        mark = "" if bool(within.sel({"task": t, "method": m})) else " *"
        row[m] = (f"{float(c.estimate.mean()):.3f} [{float(c.interval_low.mean()):.3f}, "
                  f"{float(c.interval_high.mean()):.3f}]{mark}")
    rows.append(row)
display(pd.DataFrame(rows).set_index("task").style.format({"true MI": "{:.3f}"}))

# %% tags=["remove_input"]
fig, ax = plt.subplots(figsize=(8, 0.35 * cube.sizes["task"] + 1.5))
methods = list(cube.method.values)
palette = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
for i, t in enumerate(cube.task.values):
    tv = float(truth.sel(task=t))
    ax.plot([tv, tv], [i - 0.4, i + 0.4], color="black", lw=2)
    for j, m in enumerate(methods):
        c = cube.sel({"task": t, "method": m})
        off = (j - (len(methods) - 1) / 2) * 0.22
        # A bias-corrected interval (CCA's basic bootstrap) need not contain its own estimate, so the
        # interval is drawn as a segment rather than as error bars around the point.
        ax.plot([float(c.interval_low.mean()), float(c.interval_high.mean())], [i + off, i + off],
                color=palette[m], lw=1.5)
        ax.plot(float(c.estimate.mean()), i + off, "o", ms=4, color=palette[m], label=m if i == 0 else None)
ax.set_yticks(range(cube.sizes["task"]), cube.task.values)
ax.invert_yaxis()
ax.set_xlabel("I(X;Y) (nats); black bar: truth")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Runtime and independence test
# Seconds per estimate (one CPU thread) and the neural estimator's permutation p-value of independence
# (every task here is dependent, so small p-values are the expected outcome).

# %% tags=["remove_input"]
tab = cube.seconds.mean("seed").to_pandas()
if "neural" in methods:
    tab["neural p-value (max over seeds)"] = cube.p_value.sel({"method": "neural"}).max("seed").to_pandas()
display(tab.style.format("{:.3g}"))
