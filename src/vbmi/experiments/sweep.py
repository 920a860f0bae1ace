"""Run plans and summaries for Fig. 2 and the Appendix C hyperparameter sweep (Table 3, Figs. 6-7).

Everything here is deterministic from a config mapping (the ``training:`` / ``sweep:`` sections of
config.yaml) and a seed, so the workflow can count a sweep's jobs when it builds the DAG and each job
can rebuild exactly its own share of the runs.

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

Search space: Appendix C.1 lists learning rate, separable vs joint critic, 1-3 hidden layers,
256/512/1024/2048 units, ReLU/Tanh and batch size 64/128/256/512. ``n_configs = null`` takes the full
product of the configured lists; an integer draws that many distinct points of it with
``numpy.random.default_rng(seed)`` (the same points for every bound, so bounds are compared on equal
architectures). ``joint_max_batch_size`` drops joint critics above a batch size (their cost grows as
batch^2).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..bounds import BOUNDS
from .training import RunSpec

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

GRID_KEYS = ("lr", "critic", "layers", "hidden", "activation", "batch_size")

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


def _bound_entries(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, float | None]]:
    return [(str(e["bound"]), None if e.get("alpha") is None else float(e["alpha"])) for e in entries]


def fig2_specs(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every Fig. 2 run: bounds x critics x datasets x seeds, all other settings from ``cfg``."""
    specs = []
    for dataset in cfg["datasets"]:
        for critic in cfg["critics"]:
            for s in range(cfg["seeds"]):
                for bound, alpha in _bound_entries(cfg["bounds"]):
                    specs.append(RunSpec(bound=bound, alpha=alpha, critic=critic, dataset=dataset,
                                         hidden=cfg["hidden"], layers=cfg["layers"], embed_dim=cfg["embed_dim"],
                                         activation=cfg["activation"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                                         seed=seed + s, tau=cfg["smile_tau"]))
    return specs


def fig2_parts(cfg: Mapping[str, Any], seed: int) -> dict[str, list[RunSpec]]:
    """Fig. 2 split into one job per (critic, dataset): ``{"separable_gaussian": [...], ...}``."""
    parts: dict[str, list[RunSpec]] = {}
    for spec in fig2_specs(cfg, seed):
        parts.setdefault(f"{spec.critic}_{spec.dataset}", []).append(spec)
    return parts


def _grid_points(grid: Mapping[str, Sequence], n_configs: int | None, seed: int, joint_max_batch: int) -> list[dict]:
    keys = list(GRID_KEYS)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    points = [p for p in points if not (p["critic"] == "joint" and p["batch_size"] > joint_max_batch)]
    if n_configs is not None and n_configs < len(points):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(points), size=n_configs, replace=False))
        points = [points[i] for i in idx]
    return points


def sweep_specs(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every run of the sweep, in a fixed order.

    * ``bounds`` (Table 3 rows, Fig. 6) on every dataset, and ``interpolation_bounds`` (Fig. 7) on the
      Gaussian task, each on the same sampled architecture points;
    * ``known_bounds`` (Eq. 12 / Eq. 14 rows) on the Gaussian task with the known ``log p(y|x)`` as
      critic, over the grid's learning rates and batch sizes (no critic architecture to search).
    """
    grid = cfg["grid"]
    points = _grid_points(grid, cfg["n_configs"], seed, cfg["joint_max_batch_size"])
    base = dict(embed_dim=cfg["embed_dim"])
    specs: list[RunSpec] = []
    jobs = [(b, a, ds) for ds in cfg["datasets"] for b, a in _bound_entries(cfg["bounds"])]
    jobs += [(b, a, "gaussian") for b, a in _bound_entries(cfg["interpolation_bounds"])]
    for s in range(cfg["seeds"]):
        for bound, alpha, dataset in jobs:
            for p in points:
                specs.append(RunSpec(bound=bound, alpha=alpha, dataset=dataset, seed=seed + s, **base, **p))
        for bound in cfg["known_bounds"]:
            lrs = grid["lr"][:1] if bound == "tnce" else grid["lr"]  # TNCE learns nothing: only K matters
            for lr, batch in itertools.product(lrs, grid["batch_size"]):
                specs.append(RunSpec(bound=bound, critic="known", dataset="gaussian", lr=lr, batch_size=batch,
                                     seed=seed + s))
    return specs


def _cost(spec: RunSpec) -> float:
    """Estimated CPU milliseconds per training step of one run on one thread, for balancing jobs.

    Fitted to ``time.process_time`` measurements of :func:`vbmi.experiments.training.train_ensemble`
    (torch 2.13 CPU, one thread): ~3 ms fixed, 0.35 ms per million multiply-adds of a separable critic or
    of the 2 x 512 baseline MLP, 0.1 ms per million for joint critics (one large matmul), and the float64
    bound on the K x K scores (~1e-5 ms per entry). E.g. separable 2 x 256 at K = 64: ~7 ms; at K = 512:
    ~30 ms; I_alpha's baseline at K = 512 adds ~50 ms; joint 2 x 256 at K = 64: ~30 ms.
    """
    k = spec.batch_size
    baseline = k * (20 * 512 + 512 * 512) if BOUNDS[spec.bound].baseline != "none" and spec.bound != "mine" else 0
    if spec.bound in ("interpolated", "interpolated_product") and spec.alpha == 1:
        baseline = 0
    ms = 3.0 + 0.35e-6 * baseline + 1e-5 * k * k
    if spec.critic == "known":
        return ms + 1e-6 * k * k * 20
    per_pair = 20 * spec.hidden + (spec.layers - 1) * spec.hidden**2 + spec.hidden
    if spec.critic == "joint":
        return ms + 0.1e-6 * k * k * per_pair
    return ms + 0.35e-6 * 2 * k * (per_pair + spec.hidden * spec.embed_dim)


def sweep_parts(cfg: Mapping[str, Any], seed: int) -> list[list[int]]:
    """Indices into :func:`sweep_specs` for each sweep job.

    Runs are ordered by their stacking key (so a job holds few, large groups) and cut into jobs of at
    most ``max_members_per_job`` runs, and also cut where the job's estimated cost (CPU ms per step,
    :func:`_cost`) would pass ``max_cost_per_job``, so CPU jobs are of similar length and two cores
    stay busy.
    """
    specs = sweep_specs(cfg, seed)
    order = sorted(range(len(specs)), key=lambda i: (str(specs[i].group_key()), i))
    parts: list[list[int]] = []
    cur: list[int] = []
    cost = 0.0
    for i in order:
        c = _cost(specs[i])
        if cur and (len(cur) >= cfg["max_members_per_job"] or cost + c > cfg["max_cost_per_job"]):
            parts.append(cur)
            cur, cost = [], 0.0
        cur.append(i)
        cost += c
    if cur:
        parts.append(cur)
    return parts


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
