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
# # Figs. 6 and 7: bias vs variance across architecture settings (Appendix C.2)
#
# Every configuration of the sweep on the 20-d Gaussian task is one point per MI level: **bias** =
# the mean estimate over the last `tail_steps` steps of the level minus the true MI, **variance** = the
# variance of the estimate over those steps. Fig. 6 compares I_alpha (coloured by alpha) with I_NCE,
# I_NWJ and I_JS; Fig. 7 compares I_alpha with the linear interpolation `alpha I_NCE + (1 - alpha) I_NWJ`
# and the product interpolation (denominator `m^alpha q^(1 - alpha)`), at the same architectures.

# %% tags=["parameters"]
sweep_cube = "results/cubes/sweep.nc"

# %% tags=["remove_input"]
from IPython.display import HTML, display

from vbmi import claims

display(HTML(claims.section_html("sweep_fig6_fig7", {"sweep": sweep_cube})))

# %% tags=["remove_input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown

from vbmi import plotting
from vbmi.results import read_cube

ds = read_cube(sweep_cube, kind="sweep")
fig_levels = [float(v) for v in np.atleast_1d(ds.attrs.get("figure_levels", ds.level.values[[0, -1]]))]
fig_levels = [lv for lv in fig_levels if lv in ds.level.values]
sns.set_theme(style="whitegrid", context="paper")
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100})
pd.set_option("display.max_colwidth", None)
VAR_FLOOR = 1e-8  # log axis; a constant tail has variance 0 and is drawn at this floor
gauss = ds.where(ds.dataset == "gaussian", drop=True)
df = gauss[["level_mean", "level_std", "level_diverged"]].to_dataframe().reset_index()
n_diverged = int((df.level_diverged != 0).sum())
df = df[(df.level_diverged == 0) & np.isfinite(df.level_mean) & df.level.isin(fig_levels)
        & ~df.bound.isin(["tnce", "nwj_reparam"])].copy()  # known-p(y|x) rows have no critic architecture
df["bias"] = df["level_mean"] - df["level"]
df["variance"] = df["level_std"] ** 2
n_floor = int((df["variance"] < VAR_FLOOR).sum())
df["variance"] = df["variance"].clip(lower=VAR_FLOOR)
df["key"] = [plotting.estimator_key(b, a) for b, a in zip(df.bound, df.alpha)]
df["estimator"] = df["key"].map(plotting.estimator_name)
display(Markdown(
    f"Scale **{ds.attrs['scale']}**: {gauss.sizes['config']} Gaussian-task configurations, levels "
    f"{', '.join(f'{v:g}' for v in fig_levels)} nats, tail {int(ds.attrs['tail_steps'])} steps. Diverged runs are "
    f"left out ({n_diverged} (configuration, level) pairs diverged before the level's end). "
    + (f"{n_floor} points with zero variance over the tail are drawn at the axis floor {VAR_FLOOR:g}."
       if n_floor else "")))


def panel(data, keys, title):
    fig, axes = plt.subplots(1, len(fig_levels), figsize=(min(12.8, 3.6 * len(fig_levels) + 2.6), 3.6),
                             squeeze=False, sharey=True)
    names = [plotting.estimator_name(k) for k in keys]
    palette = {plotting.estimator_name(k): plotting.estimator_color(k) for k in keys}
    for ax, lv in zip(axes[0], fig_levels):
        sub = data[(data.level == lv) & data.key.isin(keys)]
        sns.scatterplot(data=sub, x="bias", y="variance", hue="estimator", hue_order=names, palette=palette,
                        ax=ax, s=28, edgecolor="black", linewidth=0.3, legend=ax is axes[0][-1])
        ax.set_yscale("log")
        ax.axvline(0, color="black", lw=0.7)
        ax.set_title(f"I(X;Y) = {lv:g} nats", fontsize=10)
        ax.set_xlabel("bias (nats)")
        ax.set_ylabel("variance (nats²)")
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=8, title="estimator")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


keys = plotting.estimator_order(df.key.unique())
fam = lambda k: plotting.split_key(k)[0]  # noqa: E731
alpha_keys = [k for k in keys if fam(k) == "interpolated"]
fig6 = [k for k in ["nce"] + alpha_keys + ["nwj", "js"] if k in keys]
fig7 = [k for k in keys if fam(k) in plotting.ALPHA_FAMILIES]

# %% [markdown]
# ## Fig. 6: I_alpha interpolates between I_NCE and I_NWJ

# %% tags=["remove_input"]
panel(df, fig6, "Fig. 6: bias vs variance across architectures (Gaussian)")

# %% [markdown]
# ## Fig. 7: I_alpha vs the linear and product interpolations

# %% tags=["remove_input"]
panel(df, fig7, "Fig. 7: interpolation schemes (Gaussian)")

# %% [markdown]
# ## Numbers behind the figures and the verdicts above
#
# Per estimator and level, over its configurations: the median bias of the plotted points (nats, two
# decimals); the median |bias| and median variance the verdicts compare, read from their table
# (`vbmi.claims.sweep.sweep_table`), where an *excluded* configuration (diverged before the level's end,
# non-finite or beyond 100 nats) counts as infinitely wrong (`inf` when over half are); and the lowest
# MSE (bias² + variance) of any plotted architecture. Variances and MSEs are in nats², in scientific
# notation since they span orders of magnitude.

# %% tags=["remove_input"]
from vbmi.claims.sweep import sweep_table



def sci(v: float) -> str:
    return "n/a" if np.isnan(v) else f"{v:.2e}"


claim_rows = sweep_table(ds)
claim_rows = claim_rows[(claim_rows.dataset == "gaussian") & ~claim_rows.bound.isin(["tnce", "nwj_reparam"])
                            & claim_rows.level.isin(fig_levels)].copy()
claim_rows["key"] = [plotting.estimator_key(b, a) for b, a in zip(claim_rows.bound, claim_rows.alpha)]
agg = claim_rows.groupby(["level", "key"]).agg(configs=("err", "size"), excluded=("excluded", "sum"),
                                                 median_abs_bias=("err", "median"),
                                                 median_variance=("var", "median"))
agg["median_bias"] = df.groupby(["level", "key"])["bias"].median()
agg["best_mse"] = df.assign(mse=df.bias**2 + df.variance).groupby(["level", "key"])["mse"].min()
shown = agg.reset_index()
shown = shown.assign(order=[plotting.estimator_order(shown.key).index(k) for k in shown.key])
shown = shown.sort_values(["level", "order"])
shown = pd.DataFrame({
    "true MI (nats)": [f"{v:g}" for v in shown.level], "estimator": shown.key.map(plotting.estimator_name),
    "configurations": shown.configs, "excluded": shown.excluded.astype(int),
    "median bias": [plotting.fmt_num(v, 2) for v in shown.median_bias],
    "median |bias|": [plotting.fmt_num(v, 2) for v in shown.median_abs_bias],
    "median variance": [sci(v) for v in shown.median_variance],
    "lowest MSE": [sci(v) for v in shown.best_mse]}).set_index(["true MI (nats)", "estimator"])
display(shown)

# %% [markdown]
# ## Where we differ from the paper, and why
#
# The paper's Figs. 6-7 span many more architectures and train each for 20,000 steps; below paper scale
# we have few architectures per estimator and short training, so the clouds are sparse and biases are
# larger (critics are less converged). The paper does not define its variance; we use the variance of
# the per-step estimates over the level's tail, which mixes estimator noise with critic drift.
#
# At 2 nats every bound is close to the truth and the variances are set by the batch size far more than
# by the bound: the batch-64 points sit about ten times higher than the batch-512 ones for every
# estimator. The claims above therefore count a difference only beyond the tail's sampling noise, and a
# point that buys lower variance with more bias (or the reverse) as a trade-off, not an improvement,
# unless its bias² + variance is lower too. `examples/staircase_probe.py --levels 2 --stat variance`
# retrains any of these configurations under other seeds to check a 2-nat difference.
