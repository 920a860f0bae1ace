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
# # Fig. 2: estimating MI while training the critic
#
# Each bound trains its own critic (Adam) on a fresh batch every step while the true MI steps through
# 2, 4, 6, 8, 10 nats (black staircase). Light curves: the estimate at every step; dark curves: the
# same smoothed by an exponential moving average (the reference notebook's span). Blue: separable
# critic `g(x)^T h(y)`; orange: joint critic `MLP([x, y])`. Top row: the 20-d correlated Gaussian;
# bottom row: the cubic task `y -> (W y)^3`. SMILE (clipped DV, tau = 5; Song & Ermon 2020) is **not
# from the paper**; it is shown as the best-known later estimator.

# %% tags=["parameters"]
fig2_cubes = []

# %% tags=["remove_cell"]
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import xarray as xr
from IPython.display import Markdown, display

from vbmi.results import cube_config, read_cube

cubes = [read_cube(p, kind="training") for p in fig2_cubes]
cube = xr.combine_by_coords(cubes, combine_attrs="drop_conflicts")
cfg = cube_config(cubes[0])["training"]
spl = int(cubes[0].attrs["steps_per_level"])
levels = np.asarray(cubes[0].attrs["levels"], dtype=float)
span = int(cubes[0].attrs.get("ema_span", cfg.get("ema_span", 200)))
batch = int(cfg["batch_size"])
sns.set_theme(style="whitegrid", context="paper")
COLORS = {"separable": sns.color_palette()[0], "joint": sns.color_palette()[1]}
ORDER = [b for b in ["tuba", "nwj", "js", "dv", "mine", "nce", "interpolated_0.01", "interpolated_0.5",
                     "interpolated_0.99", "smile"] if b in cube.bound.values]
ORDER += [b for b in cube.bound.values.tolist() if b not in ORDER]


def title(label: str) -> str:
    name = str(cube.bound_name.sel(bound=label).values)
    alpha = float(cube.alpha.sel(bound=label).values)
    pretty = {"nwj": "$I_{NWJ}$", "tuba": "$I_{TUBA}$", "dv": "$I_{DV}$", "mine": "$I_{MINE}$", "js": "$I_{JS}$",
              "nce": "$I_{NCE}$", "smile": "SMILE* (not in paper)"}.get(name, name)
    return f"$I_\\alpha$, α={alpha:g}" if name == "interpolated" else pretty


display(Markdown(
    f"Scale **{cubes[0].attrs['scale']}**: {spl} steps per MI level ({spl * len(levels)} per run; the notebook "
    f"uses 4,000 per level), batch {batch}, critics {cfg['layers']} x {cfg['hidden']} {cfg['activation']}, "
    f"Adam lr {cfg['lr']}, EMA span {span}, device `{cubes[0].attrs['device']}`."))

# %%
n_b = len(ORDER)
fig, axes = plt.subplots(cube.sizes["dataset"], n_b, figsize=(1.9 * n_b, 2.2 * cube.sizes["dataset"]),
                         sharex=True, sharey=True, squeeze=False)
datasets = [d for d in ["gaussian", "cubic"] if d in cube.dataset.values]
steps = cube.step.values
for r, dataset in enumerate(datasets):
    for c, label in enumerate(ORDER):
        ax = axes[r, c]
        for critic in [k for k in ["separable", "joint"] if k in cube.critic.values]:
            for seed in cube.seed.values:
                series = cube.estimate.sel(bound=label, critic=critic, dataset=dataset, seed=seed).to_series()
                ax.plot(steps, series.values, color=COLORS[critic], alpha=0.25, lw=0.5)
                ax.plot(steps, series.ewm(span=span).mean().values, color=COLORS[critic], lw=1.2,
                        label=critic if (r, c, seed) == (0, 0, cube.seed.values[0]) else None)
        ax.plot(steps, cube.true_mi.values, color="black", lw=1)
        ax.set_ylim(-1, 12)
        if r == 0:
            ax.set_title(title(label), fontsize=8)
        if c == 0:
            ax.set_ylabel(f"{dataset}\nMI (nats)")
        if r == len(datasets) - 1:
            ax.set_xlabel("step")
fig.legend(loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.04))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Numbers behind the figure
#
# For each run and MI level: the mean and standard deviation of the estimate over the last quarter of
# the level's steps (the critic has had most of the level to adapt), and the step at which the run
# diverged (-1: never). `overflow` counts the steps at which max |f| passed 88.7, where `exp` overflows
# in float32: those steps would be non-finite in a float32 evaluation; vbmi evaluates bounds in float64.

# %% tags=["remove_cell"]
tail = max(1, spl // 4)
rows = []
for label in ORDER:
    for critic in cube.critic.values:
        for dataset in datasets:
            for seed in cube.seed.values:
                est = cube.estimate.sel(bound=label, critic=critic, dataset=dataset, seed=seed).values
                for li, lv in enumerate(levels):
                    window = est[(li + 1) * spl - tail:(li + 1) * spl]
                    rows.append({"bound": label, "critic": str(critic), "dataset": dataset, "seed": int(seed),
                                 "level": lv, "mean": float(np.mean(window)), "std": float(np.std(window)),
                                 "diverged_step": int(cube.diverged_step.sel(bound=label, critic=critic,
                                                                             dataset=dataset, seed=seed)),
                                 "overflow": int(cube.overflow_steps.sel(bound=label, critic=critic, dataset=dataset,
                                                                         seed=seed))})
stats = pd.DataFrame(rows)
agg = stats.groupby(["dataset", "critic", "bound", "level"])[["mean", "std"]].mean()

# %%
table = agg["mean"].unstack("level").round(2)
table.columns = [f"{c:g} nats" for c in table.columns]
display(table)

# %%
display(stats.groupby(["dataset", "critic", "bound"])[["diverged_step", "overflow"]].max())

# %% [markdown]
# ## The paper's qualitative findings, checked on these runs
#
# Each line states the finding, the numbers from the table above, and whether it holds here. "Top"
# is the highest MI level; variance is measured as the standard deviation of the estimate over the
# level's last quarter.

# %% tags=["remove_cell"]
top = float(levels.max())


def m(dataset, critic, bound, level=top, what="mean"):
    try:
        return float(agg.loc[(dataset, critic, bound, level), what])
    except KeyError:
        return float("nan")


def verdict(ok):
    return "**holds**" if ok else "**does not hold here**"


lines = []
ln_k = np.log(batch)
nce_vals = {(d, c): m(d, c, "nce") for d in datasets for c in cube.critic.values}
ok = all(v <= ln_k + 0.05 for v in nce_vals.values()) and max(nce_vals.values()) > ln_k - 0.5
lines.append(f"1. *I_NCE saturates at log(batch size) = log {batch} = {ln_k:.2f}*: at {top:g} nats NCE gives "
             + ", ".join(f"{v:.2f} ({d}, {c})" for (d, c), v in nce_vals.items()) + f" -> {verdict(ok)}.")
# Median over the (dataset, critic) cells: one exploding run (separable JS on the cubic task) must not
# decide the ranking alone.
hi = {b: np.nanmedian([m(d, c, b, what='std') for d in datasets for c in cube.critic.values]) for b in ORDER}
ranked = sorted(hi, key=lambda b: -hi[b])
multi = [b for b in ORDER if b == "nce" or b.startswith("interpolated")]
ok = min(hi.get("nwj", np.nan), hi.get("js", np.nan)) > max(hi[b] for b in multi)
lines.append(f"2. *NWJ and JS have higher variance at high MI than the multi-sample NCE and I_alpha*: std over the "
             f"tail at {top:g} nats, median over datasets and critics: " + ", ".join(f"{b} {hi[b]:.2f}" for b in ranked)
             + f" -> {verdict(bool(ok))}.")
alphas = [b for b in ORDER if b.startswith("interpolated")]
if alphas:
    bias = {b: np.nanmean([abs(m(d, c, b) - top) for d in datasets for c in cube.critic.values])
            for b in alphas + ["nce", "nwj"]}
    ok = any(bias[a] < bias["nce"] and hi[a] < hi["nwj"] for a in alphas)
    lines.append(f"3. *I_alpha is less biased than NCE and less variable than NWJ*: |bias| at {top:g} nats: "
                 + ", ".join(f"{b} {bias[b]:.2f}" for b in bias) + "; std: "
                 + ", ".join(f"{b} {hi[b]:.2f}" for b in alphas + ["nwj"]) + f" -> {verdict(ok)}.")
if {"joint", "separable"} <= set(cube.critic.values):
    err = {(b, c): np.nanmean([abs(m(d, c, b, lv) - lv) for d in datasets for lv in levels])
           for b in ("nwj", "js") for c in ("joint", "separable")}
    ok = all(err[(b, "joint")] < err[(b, "separable")] for b in ("nwj", "js"))
    lines.append("4. *Joint critics beat separable ones for NWJ/JS*: mean |error| over all levels and datasets: "
                 + ", ".join(f"{b} {c} {err[(b, c)]:.2f}" for (b, c) in err) + f" -> {verdict(ok)}.")
if "cubic" in datasets and alphas:
    cub = {a: np.nanmean([abs(m("cubic", c, a, lv) - lv) for c in cube.critic.values for lv in levels[-2:]])
           for a in alphas}
    best = min(cub, key=cub.get)
    lines.append("5. *On the cubic task the smallest alpha does best*: mean |error| at the two top levels: "
                 + ", ".join(f"{a} {v:.2f}" for a, v in cub.items()) + f"; best {best} -> "
                 + verdict(best == min(alphas, key=lambda a: float(a.split('_')[1]))) + ".")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Where we differ from the paper, and why
#
# * **Training length.** Below paper scale each level gets far fewer than the notebook's 4,000 steps, so
#   critics are less converged: every estimate sits lower than in the paper's Fig. 2, most of all at
#   high MI and for the joint critic and the cubic task; a finding marked "does not hold here" should be
#   re-checked at paper scale (`--configfile workflow/scales/paper.yaml`) before it is read as a
#   disagreement.
# * **Cubic task scale.** The caption draws `W_ij ~ N(0, 1)`; then `(W y)^3` reaches |y| ~ 3,000 and
#   every exp-based bound overflows at the first step. We use `W_ij ~ N(0, 1/d)` (config
#   `training.cubic_weight_std`), which keeps a random full-rank mixing and the same MI.
# * **I_JS value.** We report Eq. 18 (`1 + E_p[V] - E_q[e^V]`), tight at the optimum; the public
#   notebook and port report `I - 1/e` at the optimum, so their JS curves sit ~0.37 nats lower.
# * **Numerics.** Bounds are evaluated in float64, so NWJ-type curves stay finite where a float32
#   evaluation (the notebook's) would have produced -inf (the `overflow` column counts those steps); a run
#   whose float64 gradient overflows float32 is marked diverged and frozen.
