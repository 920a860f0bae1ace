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
# # Table 3: hyperparameter-optimised estimates (Appendix C.1)
#
# Every bound trains critics over a grid of learning rate, critic type (separable / joint), hidden
# layers, units, nonlinearity and batch size, on the Fig. 2 staircase. **Protocol** (the paper does
# not state one; `vbmi.experiments.sweep` documents ours): a configuration's estimate at an MI level is
# the mean of its estimates over the last `tail_steps` steps of that level; each cell (bound, task,
# level) reports the configuration closest to the true MI, excluding runs that diverged before the end
# of the level. The I_alpha row takes the best over the swept alphas. Our value is printed beside the
# paper's as `ours (paper)`.

# %% tags=["parameters"]
sweep_cube = "results/cubes/sweep.nc"

# %% tags=["remove_cell"]
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from vbmi.experiments.sweep import GRID_KEYS, PAPER_TABLE3, best_per_cell
from vbmi.results import cube_config, read_cube

ds = read_cube(sweep_cube, kind="sweep")
cfg = cube_config(ds)["sweep"]
levels = ds.level.values.astype(float)
display(Markdown(
    f"Scale **{ds.attrs['scale']}**: {ds.sizes['config']} runs in {int(ds.attrs.get('jobs', 1))} jobs, "
    f"{int(ds.attrs['steps_per_level'])} steps per level, level estimate = mean of the last "
    f"{int(ds.attrs['tail_steps'])} steps; grid `{cfg['grid']}`, n_configs = {cfg['n_configs']} "
    f"(null: full grid), joint critics up to batch {cfg['joint_max_batch_size']}. The paper's grid is "
    "lr x {separable, joint} x 1-3 layers x 256-2048 units x {ReLU, Tanh} x batch 64-512 (App. C.1)."))

# %% tags=["remove_cell"]
row_name = {"interpolated": "I_alpha", "nce": "I_NCE", "js": "I_JS", "nwj": "I_NWJ", "tnce": "I_NCE (Eq. 12)",
            "nwj_reparam": "I_NWJ (Eq. 14)", "interpolated_linear": "linear interp. (not in Table 3)",
            "interpolated_product": "product interp. (not in Table 3)"}
summary = ds[["level_mean", "level_std", "level_diverged"]]
# Table rows are bound *names*: the I_alpha row competes across its alphas.
summary = summary.assign_coords(bound_label=("config", ds.bound.values))
best = best_per_cell(summary)
best["row"] = best["bound_label"].map(row_name).fillna(best["bound_label"])
best["task"] = np.where(best["bound_label"].isin(["tnce", "nwj_reparam"]), "Gaussian, known p(y|x)",
                        best["dataset"].map({"gaussian": "Gaussian, unstructured", "cubic": "Cubic, unstructured"}))
best["paper"] = [PAPER_TABLE3.get((d, b), [np.nan] * 5)[list(PAPER_TABLE3_LEVELS).index(lv)]
                 if lv in (PAPER_TABLE3_LEVELS := (2.0, 4.0, 6.0, 8.0, 10.0)) else np.nan
                 for d, b, lv in zip(best["dataset"], best["bound_label"], best["level"])]
alpha_of = ds.alpha.to_series()
best["alpha"] = [alpha_of[c] for c in best["config"]]

# %% [markdown]
# ## Ours beside the paper's Table 3

# %%
cell = best.assign(text=[f"{o:.1f} ({p:.1f})" if np.isfinite(p) else f"{o:.1f}"
                         for o, p in zip(best["level_mean"], best["paper"])])
order = ["Gaussian, unstructured", "Cubic, unstructured", "Gaussian, known p(y|x)"]
table = cell.pivot_table(index=["task", "row"], columns="level", values="text", aggfunc="first")
table = table.reindex([t for t in order if t in table.index.get_level_values(0)], level=0)
table.columns = [f"{c:g} nats" for c in table.columns]
display(table)

# %% [markdown]
# ## The winning configuration of every cell

# %%
cols = ["task", "row", "level", "level_mean", "level_std", "paper", "alpha", *[k for k in GRID_KEYS if k in best]]
display(best[cols].sort_values(["task", "row", "level"]).reset_index(drop=True).round(3))

# %% [markdown]
# ## Findings, with the numbers behind them

# %% tags=["remove_cell"]
lines = []
get = lambda task, row, lv: best[(best.task == task) & (best.row == row) & (best.level == lv)]
top = float(levels.max())
for task in ("Gaussian, unstructured", "Cubic, unstructured"):
    nce = get(task, "I_NCE", top)
    if len(nce):
        k = int(nce["batch_size"].iloc[0])
        lines.append(f"- **NCE is capped by log(batch size)** ({task}): the best NCE at {top:g} nats is "
                     f"{nce['level_mean'].iloc[0]:.2f} with batch {k} (log {k} = {np.log(k):.2f}); the paper's "
                     f"{PAPER_TABLE3.get(('gaussian' if task.startswith('Gaussian') else 'cubic', 'nce'))[-1]:.1f} "
                     "exceeds log 64 = 4.16, so its best NCE runs used batches above 64 as well.")
for task in ("Gaussian, unstructured", "Cubic, unstructured"):
    sub = best[best.task == task]
    if sub.empty:
        continue
    paper_rows = [r for r in ("I_alpha", "I_NCE", "I_JS", "I_NWJ") if r in set(sub.row)]
    wins = sum(1 for lv in levels
               if not sub[(sub.level == lv) & sub.row.isin(paper_rows)].empty
               and sub[(sub.level == lv) & sub.row.isin(paper_rows)].set_index("row")["level_mean"]
               .sub(lv).abs().idxmin() == "I_alpha")
    lines.append(f"- **I_alpha is the best row of Table 3** ({task}): closest to the truth at {wins} of "
                 f"{len(levels)} levels here (the paper: all 5).")
known = best[best.task == "Gaussian, known p(y|x)"]
if not known.empty:
    reparam = known[known.row == "I_NWJ (Eq. 14)"]
    tnce = known[known.row == "I_NCE (Eq. 12)"]
    if len(reparam):
        err = (reparam.level_mean - reparam.level).abs().max()
        lines.append(f"- **Eq. 14 with known p(y|x) is highly accurate** (it only learns q(y)): its worst |error| "
                     f"over the levels is {err:.2f} nats (the paper: exact to 0.1).")
    if len(tnce):
        t10 = tnce[tnce.level == top]
        if len(t10):
            k = int(t10.batch_size.iloc[0])
            lines.append(f"- **TNCE (Eq. 12) is also capped by log K**: {t10.level_mean.iloc[0]:.2f} at {top:g} nats "
                         f"with batch {k} (log K = {np.log(k):.2f}); the paper's 4.8 is close to log 128 = 4.85.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Where we differ from the paper, and why
#
# * **Search budget.** Below paper scale the grid is a small subset (see the scale note above): fewer
#   architectures, shorter training (the paper trains 4,000 steps per level), joint critics only at the
#   smallest batches. Our winners are therefore lower than the paper's, most at high MI; the ordering of
#   the rows is the comparable quantity.
# * **Protocol.** The paper does not say how a configuration's estimate at a level is measured or how the
#   best configuration is chosen; ours (mean over the level's tail, per-cell winner closest to the truth)
#   can favour a noisy configuration that happens to land near the truth, which flatters the
#   high-variance NWJ/JS rows (their `level_std` column shows how noisy the winner is).
# * **Cubic task.** `W_ij ~ N(0, 1/d)` instead of the caption's `N(0, 1)` (the latter overflows every
#   exp-based bound at step 1); the MI is unchanged.
