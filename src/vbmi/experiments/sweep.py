"""Summaries of the Fig. 2 and Appendix C sweep cubes (Table 3, Figs. 6-7).

Which runs are trained, and which job trains each, is :mod:`vbmi.experiments.plan` (torch-free, imported
by the Snakefile); its names are re-exported here.

Table 3 protocol (documented here, printed by the report)
----------------------------------------------------------
* Every configuration trains on the Fig. 2 staircase (``steps_per_level`` steps at each of 2..10 nats).
* A configuration's estimate at an MI level is the mean of its estimates over the last ``tail_steps``
  steps of that level; its spread is their standard deviation. (The paper does not state its
  protocol; the mean over the end of a level removes most minibatch noise without mixing levels.)
* The winner of a cell (bound, dataset, MI level) is the configuration whose level estimate is closest
  to the true MI (smallest |bias|); configurations that diverged before the end of the level are
  excluded. Each cell may have a different winner; the report lists every winner.
* Fig. 6 / Fig. 7: per configuration and level, bias = level mean - true MI and variance = the variance
  of the estimates over the level's tail (the noise of the estimator at a converged critic).
"""

from __future__ import annotations

import math

import numpy as np

# Run planning lives in the torch-free .plan; re-exported here for existing imports.
from .plan import GRID_KEYS, RunSpec, fig2_parts, fig2_specs, sweep_parts, sweep_specs  # noqa: F401

__all__ = [
    "GRID_KEYS",
    "fig2_specs",
    "fig2_parts",
    "sweep_specs",
    "sweep_parts",
    "level_summary",
    "fig2_dataset",
    "best_per_cell",
    "PAPER_TABLE3",
]

# Table 3 of the paper (Appendix C.1), rows x MI levels 2, 4, 6, 8, 10 nats.
PAPER_TABLE3: dict[tuple[str, str], list[float]] = {
    ("gaussian", "interpolated"): [1.9, 3.8, 5.7, 7.4, 8.9],
    ("gaussian", "nce"): [1.9, 3.6, 4.9, 5.7, 6.0],
    ("gaussian", "js"): [1.2, 3.0, 4.8, 6.5, 8.1],
    ("gaussian", "nwj"): [1.6, 3.5, 5.2, 6.7, 8.0],
    ("cubic", "interpolated"): [1.7, 3.6, 5.4, 6.9, 8.2],
    ("cubic", "nce"): [1.7, 3.2, 4.1, 4.6, 4.8],
    ("cubic", "js"): [1.0, 2.8, 4.5, 6.1, 7.6],
    ("cubic", "nwj"): [1.5, 3.2, 4.7, 5.9, 6.9],
    ("gaussian", "tnce"): [1.9, 3.3, 4.2, 4.6, 4.8],
    ("gaussian", "nwj_reparam"): [2.0, 4.0, 6.0, 8.0, 10.0],
}


# ---------------------------------------------------------------------------------------------------
# Summaries on the cubes (xarray), used by the merge step and the report notebooks
# ---------------------------------------------------------------------------------------------------
def level_summary(ds, tail_steps: int):
    """Per run and MI level: mean and standard deviation of the estimate over the level's last
    ``tail_steps`` steps (``level_mean``, ``level_std``), and ``level_diverged`` (the run diverged
    before the end of the level). Adds a ``level`` dim with the true MI as its coordinate."""
    import xarray as xr

    spl = int(ds.attrs["steps_per_level"])
    levels = np.asarray(ds.attrs["levels"], dtype=np.float64)
    tail = max(1, min(int(tail_steps), spl))
    means, stds, div = [], [], []
    for li in range(len(levels)):
        window = ds.estimate.isel(step=slice((li + 1) * spl - tail, (li + 1) * spl))
        means.append(window.mean("step", skipna=False))
        stds.append(window.std("step", skipna=False, ddof=1 if tail > 1 else 0))
        div.append((ds.diverged_step >= 0) & (ds.diverged_step < (li + 1) * spl))
    level = xr.DataArray(levels, dims="level", attrs={"units": "nat", "long_name": "true MI of the level"})
    out = xr.Dataset({
        "level_mean": xr.concat(means, "level").assign_attrs(
            units="nat", long_name="level estimate",
            description=f"mean estimate over the last {tail} steps of each MI level (Table 3 protocol)"),
        "level_std": xr.concat(stds, "level").assign_attrs(
            units="nat", long_name="level spread",
            description=f"standard deviation of the estimate over the last {tail} steps of each MI level"),
        "level_diverged": xr.concat(div, "level").astype(np.int8).assign_attrs(
            units="1", long_name="diverged by level end",
            description="1 if the run diverged before the end of the level (excluded from winners)"),
    }).assign_coords(level=level)
    out.attrs["tail_steps"] = tail
    return out


def fig2_dataset(ds):
    """A ``config x step`` training dataset reshaped to Fig. 2's dims ``bound x critic x dataset x seed x step``.

    ``bound`` holds the labels (``nce``, ``interpolated_0.01``, ...); ``bound_name`` and ``alpha`` are
    coordinates along it. Cells without a run are NaN (-1 / 0 for the integer variables).
    """
    import xarray as xr

    def uniq(name):
        return list(dict.fromkeys(ds[name].values.tolist()))

    axes = {"bound": uniq("bound_label"), "critic": uniq("critic"), "dataset": uniq("dataset"), "seed": uniq("seed")}
    shape = tuple(len(v) for v in axes.values())
    n_steps = ds.sizes["step"]
    est = np.full(shape + (n_steps,), np.nan)
    mx = np.full(shape + (n_steps,), np.nan, dtype=np.float32)
    div = np.full(shape, -1, dtype=np.int64)
    ovf = np.zeros(shape, dtype=np.int64)
    names, alphas = {}, {}
    for c in range(ds.sizes["config"]):
        row = ds.isel(config=c)
        label = str(row.bound_label.values)
        idx = (axes["bound"].index(label), axes["critic"].index(str(row.critic.values)),
               axes["dataset"].index(str(row.dataset.values)), axes["seed"].index(int(row.seed.values)))
        est[idx] = row.estimate.values
        mx[idx] = row.max_abs_score.values
        div[idx] = int(row.diverged_step.values)
        ovf[idx] = int(row.overflow_steps.values)
        names[label], alphas[label] = str(row.bound.values), float(row.alpha.values)
    dims = tuple(axes)
    out = xr.Dataset(
        {
            "estimate": (dims + ("step",), est, ds.estimate.attrs),
            "max_abs_score": (dims + ("step",), mx, ds.max_abs_score.attrs),
            "diverged_step": (dims, div, ds.diverged_step.attrs),
            "overflow_steps": (dims, ovf, ds.overflow_steps.attrs),
        },
        coords={**axes, "step": ds.step.values, "true_mi": ds.true_mi, "mi_level": ds.mi_level,
                "bound_name": ("bound", [names[b] for b in axes["bound"]]),
                "alpha": ("bound", np.asarray([alphas[b] for b in axes["bound"]], dtype=np.float64))},
    )
    out.attrs = dict(ds.attrs)
    return out


def best_per_cell(summary, exclude_diverged: bool = True):
    """The winning configuration of every (bound_label, dataset, level) cell: smallest |level_mean - true|.

    ``summary`` is a ``config``-dim dataset with ``level_mean``/``level_diverged`` and the spec
    coordinates. Returns a :class:`pandas.DataFrame` with one row per cell.
    """
    import pandas as pd

    df = summary[["level_mean", "level_std", "level_diverged"]].to_dataframe().reset_index()
    df["abs_err"] = (df["level_mean"] - df["level"]).abs()
    if exclude_diverged:
        df = df[df["level_diverged"] == 0]
    df = df[np.isfinite(df["level_mean"])]
    idx = df.groupby(["bound_label", "dataset", "level"])["abs_err"].idxmin()
    cols = ["bound_label", "dataset", "level", "level_mean", "level_std", "config", *GRID_KEYS]
    return df.loc[idx, [c for c in cols if c in df.columns]].reset_index(drop=True)


def paper_value(dataset: str, bound: str, level: float) -> float:
    """Table 3's value for a row and MI level (NaN where the paper has none)."""
    row = PAPER_TABLE3.get((dataset, bound))
    if row is None:
        return math.nan
    return row[[2.0, 4.0, 6.0, 8.0, 10.0].index(float(level))] if float(level) in (2.0, 4.0, 6.0, 8.0, 10.0) else math.nan
