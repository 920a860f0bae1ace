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

# %% tags=["remove_input"]
from IPython.display import HTML, display

from vbmi import claims

display(HTML(claims.section_html("sweep_table3", {"sweep": sweep_cube})))

# %% tags=["remove_input"]
import numpy as np
import pandas as pd
from IPython.display import Markdown

from vbmi import plotting
from vbmi.experiments.sweep import GRID_KEYS, PAPER_TABLE3, best_per_cell, paper_value
from vbmi.results import cube_config, read_cube

pd.set_option("display.max_colwidth", None)
ds = read_cube(sweep_cube, kind="sweep")
cfg = cube_config(ds)["sweep"]
levels = ds.level.values.astype(float)
grid = {k: ([plotting.fmt_lr(v) for v in vals] if k == "lr" else vals) for k, vals in cfg["grid"].items()}
overrides = {b: o for b, o in (cfg.get("grid_by_bound") or {}).items() if o}  # keys trained instead of the grid's
override_text = "; ".join(
    f"{b}: " + ", ".join(f"{k} {[plotting.fmt_lr(x) for x in v] if k == 'lr' else v}" for k, v in o.items())
    for b, o in overrides.items())
only_on = "; ".join(  # bound entries restricted to some tasks (`datasets:`)
    e["bound"] + (f" (alpha {e['alpha']})" if e.get("alpha") is not None else "")
    + f" on the {', '.join(e['datasets'])} task only" for e in cfg["bounds"] if e.get("datasets"))
display(Markdown(
    f"**Scale note.** Scale **{ds.attrs['scale']}**: {ds.sizes['config']} runs in {int(ds.attrs.get('jobs', 1))} "
    f"jobs, {int(ds.attrs['steps_per_level'])} steps per level, level estimate = mean of the last "
    f"{int(ds.attrs['tail_steps'])} steps; grid " + ", ".join(f"{k} {v}" for k, v in grid.items())
    + (f"; per bound, instead of the grid's (`sweep.grid_by_bound`): {override_text}" if overrides else "")
    + (f"; {only_on} (`sweep.bounds`)" if only_on else "")
    + f"; n_configs = {cfg['n_configs']} (null: full grid), joint critics up to batch "
    f"{cfg['joint_max_batch_size']}. The paper's grid is learning rate x {{separable, joint}} x 1-3 layers x "
    "256-2048 units x {ReLU, Tanh} x batch 64-512 (App. C.1)."))

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

#
# Each cell is `ours (paper)`, one decimal as in the paper; `†` marks a cell more than 1 nat from the paper's.
# A cell in which every run diverged before the end of the level says so (`all N runs diverged, first at
# step S`) instead of showing a number.

# %% tags=["remove_input"]
TASK = {"gaussian": "Gaussian, unstructured", "cubic": "Cubic, unstructured"}
KNOWN = ("tnce", "nwj_reparam")


def task_of(dataset, bound_label):
    return "Gaussian, known p(y|x)" if bound_label in KNOWN else TASK.get(dataset, dataset)


runs = summary[["level_diverged"]].to_dataframe().reset_index()
runs = runs.assign(diverged_step=[int(ds.diverged_step.sel(config=c)) for c in runs["config"]])
runs["task"] = [task_of(d, b) for d, b in zip(runs["dataset"], runs["bound_label"])]
runs["row"] = runs["bound_label"].map(row_name).fillna(runs["bound_label"])
counts = runs.groupby(["task", "row", "level"]).agg(
    n=("level_diverged", "size"), n_div=("level_diverged", "sum"),
    first_div=("diverged_step", lambda s: int(s[s >= 0].min()) if (s >= 0).any() else -1))
FAR = 1.0  # nats from the paper's value that count as a miss
cell = best.assign(text=[(f"{o:.1f} ({p:.1f})" + (" †" if abs(o - p) > FAR else "")) if np.isfinite(p)
                         else f"{o:.1f}" for o, p in zip(best["level_mean"], best["paper"])])
order = ["Gaussian, unstructured", "Cubic, unstructured", "Gaussian, known p(y|x)"]
table = cell.pivot_table(index=["task", "row"], columns="level", values="text", aggfunc="first")
ROW_ORDER = ["I_alpha", "I_NCE", "I_JS", "I_NWJ", "I_NCE (Eq. 12)", "I_NWJ (Eq. 14)"]


def sorted_rows(index):
    return sorted(index, key=lambda tr: (order.index(tr[0]) if tr[0] in order else 99,
                                         ROW_ORDER.index(tr[1]) if tr[1] in ROW_ORDER else 50, tr[1]))


table = table.reindex(index=sorted_rows(counts.index.droplevel("level").unique()), columns=levels)
for (task, row, lv), c in counts.iterrows():
    if (task, row) in table.index and not isinstance(table.loc[(task, row), lv], str):
        table.loc[(task, row), lv] = (f"all {c.n} runs diverged, first at step {c.first_div}" if c.n_div == c.n
                                      else "n/a")
table.columns = [f"{c:g} nats" for c in table.columns]
table.index.names = ["task", "estimator"]
display(table)
paired = best[np.isfinite(best["paper"])]
far = paired[(paired["level_mean"] - paired["paper"]).abs() > FAR]
display(Markdown(
    f"**Within {FAR:g} nat of the paper:** {len(paired) - len(far)} of {len(paired)} cells"
    + ("." if far.empty else "; further off (†): " + "; ".join(
        f"{r.row} ({r.task}) at {r.level:g} nats, {r.level_mean:.2f} vs {r.paper:.1f}" for r in far.itertuples()) + ".")))
div = counts.groupby(["task", "row"])["n_div"].max()
display(Markdown(
    "**Diverged runs** (estimate non-finite or outside the range the bound can take, before the end of the "
    "level; left out of the winners): " + ("none." if div.sum() == 0 else "; ".join(
        f"{row} ({task}): {int(n)} of {int(counts.loc[(task, row), 'n'].max())} runs by the last level"
        for (task, row), n in div.items() if n > 0) + ".")))

# %% [markdown]
# ## The winning configuration of every cell
#
# The configuration behind each number of Table 3 (learning rate, critic, layers x units,
# nonlinearity, batch size; the alpha for I_alpha), and below it how much the winner's estimate moved
# over the level's tail (its standard deviation, nats).

# %% tags=["remove_input"]
def describe(r) -> str:
    if r.critic == "known":
        text = f"lr {plotting.fmt_lr(r.lr)}, batch {int(r.batch_size)}"
    else:
        text = (f"lr {plotting.fmt_lr(r.lr)}, {r.critic} {int(r.layers)} x {int(r.hidden)} {r.activation}, "
                f"batch {int(r.batch_size)}")
    return text + (f", α={r.alpha:g}" if np.isfinite(r.alpha) else "")


win = best.assign(config_text=[describe(r) for r in best.itertuples()],
                  spread=[plotting.fmt_num(v, 2) for v in best["level_std"]])
for what, col in (("winning configuration", "config_text"), ("spread of the winner's estimate (nats)", "spread")):
    t = win.pivot_table(index=["task", "row"], columns="level", values=col, aggfunc="first")
    t = t.reindex(sorted_rows(t.index))
    t.columns = [f"{c:g} nats" for c in t.columns]
    t.index.names = ["task", "estimator"]
    display(Markdown(f"**{what.capitalize()}**"))
    display(t.fillna("no winner: every run diverged (Table 3)"))

# %% [markdown]
# ## Numbers behind the verdicts above
#
# From the table the Table 3 verdicts read (`vbmi.claims.sweep.sweep_table`): for each row and level, the
# |estimate - true MI| of its configuration closest to the true MI. A configuration that diverged before
# the end of the level, or whose estimate is non-finite or beyond 100 nats, is *excluded* (the verdicts
# count it as infinitely wrong). Below it: each row's best I_NCE estimate at the top level beside
# log(batch size), the most an I_NCE estimate can reach with that batch.

# %% tags=["remove_input"]
from vbmi.claims.sweep import sweep_table

runs_cl = sweep_table(ds)
runs_cl["task"] = [task_of(d, b) for d, b in zip(runs_cl["dataset"], runs_cl["bound"])]
runs_cl["row"] = runs_cl["bound"].map(row_name).fillna(runs_cl["bound"])
closest = (runs_cl.sort_values("err", kind="stable").drop_duplicates(["task", "row", "level"])
           .set_index(["task", "row", "level"]).sort_index())
n_runs = runs_cl.groupby(["task", "row", "level"]).size()
err_text = pd.Series([plotting.fmt_num(r.err, 2) if np.isfinite(r.err) else f"all {n_runs[i]} excluded"
                      for i, r in closest.iterrows()], index=closest.index)
err_table = err_text.unstack("level")
err_table = err_table.reindex(index=[i for i in sorted_rows(err_table.index) if i[1] in ROW_ORDER],
                              columns=levels)
err_table.columns = [f"{c:g} nats" for c in err_table.columns]
err_table.index.names = ["task", "estimator"]
paper_rows = ["I_alpha", "I_NCE", "I_JS", "I_NWJ"]
for task in ("Gaussian, unstructured", "Cubic, unstructured"):
    if task not in err_table.index.get_level_values("task"):
        continue
    near = []
    for lv in levels:
        at = closest.loc[task].xs(lv, level="level").reindex(paper_rows).dropna(subset=["err"])
        at = at[np.isfinite(at.err)]
        near.append("none" if at.empty else at.err.idxmin())
    err_table.loc[(task, "row closest to the true MI"), :] = near
err_table = err_table.reindex(sorted_rows(err_table.index))
display(Markdown("**|estimate - true MI| (nats) of each row's closest configuration**"))
display(err_table)

top = float(levels.max())
cap = []
for (task, row), sub in closest.xs(top, level="level").groupby(level=["task", "row"]):
    if row not in ("I_NCE", "I_NCE (Eq. 12)"):
        continue
    r = sub.iloc[0]
    cap.append({"task": task, "estimator": row,
                "estimate": plotting.fmt_num(r["mean"], 2) if np.isfinite(r.err) else "all excluded",
                "batch size": int(r.batch_size), "log(batch size)": f"{np.log(r.batch_size):.2f}",
                "paper": plotting.fmt_num(paper_value(r.dataset, r.bound, top), 1)})
if cap:
    display(Markdown(f"**I_NCE at {top:g} nats beside log(batch size)** (its winning configuration's batch)"))
    cap = pd.DataFrame(cap).set_index(["task", "estimator"])
    display(cap.reindex(sorted_rows(cap.index)))

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
