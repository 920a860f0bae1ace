"""Claims about Fig. 2 (critics trained on the Gaussian and cubic staircases), read from the
Fig. 2 cube: dims ``bound x critic x dataset x seed x step`` with ``bound_name``/``alpha`` along
``bound`` and ``diverged_step`` per run (:func:`vbmi.experiments.sweep.fig2_dataset`).

A run's value at an MI level is the mean of its estimates over the last quarter of the level's steps
(as the Fig. 2 page's table), its noise the standard deviation over the same window. Aggregates over
critics, datasets and seeds are plain means of |error| (or medians of the spread where the paper
compares variances), with excluded runs counted as infinite (see :mod:`vbmi.claims._core`).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from ._core import UNTESTED, claim, excluded, fmt, untrained, verdict

SECTION = "training"
PAPER_BOUNDS = ("nwj", "tuba", "dv", "mine", "js", "nce", "interpolated")  # SMILE is not in the paper


def parts(cube) -> list:
    """The Fig. 2 cube as a list of datasets that each have one schedule: ``cube`` itself, or the part
    datasets :func:`vbmi.claims.load_cubes` keeps apart when their ``steps_per_level`` differ."""
    return [cube] if not isinstance(cube, (list, tuple)) else list(cube)


def _part_name(ds) -> str:
    return " + ".join(f"{c}/{d}" for c in ds.critic.values for d in ds.dataset.values)


def levels_table(cube) -> pd.DataFrame:
    """One row per run and MI level: ``mean``, ``std`` over the level's last quarter, ``excluded``, and
    ``err`` = |mean - level| / ``sd`` = std, both ``inf`` for an excluded run. ``cube`` is one dataset
    or a list of part datasets (each read with its own ``steps_per_level``; the rows of all parts are
    concatenated, with ``steps_per_level`` and ``tail`` columns; ``attrs["tail"]`` is the shortest)."""
    if isinstance(cube, (list, tuple)):
        tables = [levels_table(p) for p in cube]
        df = pd.concat(tables, ignore_index=True)
        df.attrs["tail"] = min(t.attrs["tail"] for t in tables)
        return df
    spl = int(cube.attrs["steps_per_level"])
    levels = np.asarray(cube.attrs["levels"], dtype=np.float64)
    tail = max(1, spl // 4)
    dims = ("bound", "critic", "dataset", "seed")
    est = cube.estimate.transpose(*dims, "step").values.astype(np.float64)
    div = cube.diverged_step.transpose(*dims).values
    rows = []
    names, alphas = cube.bound_name.values, cube.alpha.values
    for li, lv in enumerate(levels):
        window = est[..., (li + 1) * spl - tail:(li + 1) * spl]
        with np.errstate(all="ignore"):
            mean = window.mean(-1)
            std = window.std(-1, ddof=1) if tail > 1 else np.zeros_like(mean)
        bad = excluded(mean, (div >= 0) & (div < (li + 1) * spl))
        for idx in itertools.product(*(range(cube.sizes[d]) for d in dims)):
            rows.append({"bound": str(cube.bound.values[idx[0]]), "name": str(names[idx[0]]),
                         "alpha": float(alphas[idx[0]]), "critic": str(cube.critic.values[idx[1]]),
                         "dataset": str(cube.dataset.values[idx[2]]), "seed": int(cube.seed.values[idx[3]]),
                         "level": float(lv), "mean": mean[idx], "std": std[idx], "excluded": bool(bad[idx])})
    df = pd.DataFrame(rows)
    df["err"] = np.where(df.excluded, np.inf, (df["mean"] - df["level"]).abs())
    df["sd"] = np.where(df.excluded, np.inf, df["std"])
    df["steps_per_level"] = spl
    df["tail"] = tail
    df.attrs["tail"] = tail
    return df


def _batch_size(cube) -> int:
    cube = parts(cube)[0]
    if "batch_size" in cube.attrs:
        return int(cube.attrs["batch_size"])
    return int(json.loads(cube.attrs["config_json"])["training"]["batch_size"])


def _agg(df: pd.DataFrame, col: str, how: str = "mean", **sel) -> float:
    sub = df
    for k, v in sel.items():
        sub = sub[sub[k].isin(v if isinstance(v, (list, tuple)) else [v])]
    if sub.empty:
        return float("nan")
    vals = sub[col].to_numpy(dtype=np.float64)
    return float(np.mean(vals) if how == "mean" else np.median(vals))


def _alpha_labels(df: pd.DataFrame) -> list[str]:
    sub = df[df.name == "interpolated"].drop_duplicates("bound").sort_values("alpha")
    return sub.bound.tolist()


def _n_excluded(df: pd.DataFrame, **sel) -> int:
    sub = df
    for k, v in sel.items():
        sub = sub[sub[k].isin(v if isinstance(v, (list, tuple)) else [v])]
    return int(sub.excluded.sum())


def _prepare(cube, need_bounds=(), need_datasets=(), need_critics=()):
    """(table, None) or (None, untested outcome)."""
    spl = {_part_name(p): int(p.attrs["steps_per_level"]) for p in parts(cube)}
    short = {name: n for name, n in spl.items() if untrained(n)}
    if short:
        fewest = min(short.values())
        reason = untrained(fewest)
        if len(set(spl.values())) > 1:  # parts on different schedules: say which are too short
            others = [f"{name} {n}" for name, n in short.items() if n != fewest]
            reason = (", ".join(name for name, n in short.items() if n == fewest) + ": " + reason
                      + (f"; also too few steps per level: {', '.join(others)}" if others else ""))
        ev = ({"steps_per_level": next(iter(spl.values()))} if len(spl) == 1
              else {"steps_per_level": spl, "too_short": sorted(short)})
        return None, (UNTESTED, ev, reason)
    df = levels_table(cube)
    for what, need, have in (("bound", need_bounds, set(df.name)), ("dataset", need_datasets, set(df.dataset)),
                             ("critic", need_critics, set(df.critic))):
        missing = [n for n in need if n not in have]
        if missing:
            return None, (UNTESTED, {f"missing_{what}": missing}, f"the Fig. 2 cube has no {what} {', '.join(missing)}")
    return df, None


@claim("fig2_nce_saturates_log_k", source="Sec. 3, Fig. 2", section=SECTION,
       text="The multi-sample estimates of I_NCE are low variance, but have estimates that saturate at "
            "log(batch size).")
def fig2_nce_saturates_log_k(cube):
    df, skip = _prepare(cube, need_bounds=("nce",))
    if skip:
        return skip
    k = _batch_size(cube)
    log_k, top = float(np.log(k)), float(df.level.max())
    if top < log_k + 1:
        return UNTESTED, {"log_k": log_k, "top_level": top}, (
            f"the top MI level ({top:g} nats) is not past log K + 1 = {log_k + 1:.2f}, so there is nothing to saturate")
    cells = {f"{d}/{c}": _agg(df, "mean", name="nce", dataset=d, critic=c, level=top)
             for d in sorted(set(df.dataset)) for c in sorted(set(df.critic))}
    n_ex = _n_excluded(df, name="nce", level=top)
    ok = n_ex == 0 and all(log_k - 0.5 <= v <= log_k + 0.05 for v in cells.values())
    ev = {"batch_size": k, "log_k": log_k, "top_level": top, "nce_at_top_level": cells, "excluded_runs": n_ex,
          "tolerance_below_log_k": 0.5}
    lo = min(cells.values())
    return verdict(ok), ev, (
        f"at {top:g} nats every task/critic's NCE is within 0.5 nat below log {k} = {log_k:.2f} (lowest {lo:.2f})" if ok
        else f"at {top:g} nats NCE ranges {lo:.2f}-{max(cells.values()):.2f} against log {k} = {log_k:.2f}: "
             "not every task/critic reaches the ceiling" + (f" ({n_ex} runs diverged)" if n_ex else ""))


@claim("fig2_single_sample_high_variance", source="Fig. 2", section=SECTION,
       text="The single-sample bounds (I_NWJ and I_JS) have higher variance than I_NCE and I_alpha.")
def fig2_single_sample_high_variance(cube):
    df, skip = _prepare(cube, need_bounds=("nwj", "js", "nce", "interpolated"))
    if skip:
        return skip
    if df.attrs["tail"] < 3:
        return UNTESTED, {"tail_steps": df.attrs["tail"]}, "fewer than 3 steps per level tail: no spread to measure"
    top = float(df.level.max())
    multi = ["nce", *_alpha_labels(df)]
    sd = {b: _agg(df, "sd", "median", bound=b, level=top) for b in ["nwj", "js", *multi]}
    ok = min(sd["nwj"], sd["js"]) > max(sd[b] for b in multi)
    ev = {"top_level": top, "median_std_at_top_level": sd, "excluded_runs": _n_excluded(df, level=top)}
    return verdict(ok), ev, (
        f"at {top:g} nats the median spread of NWJ ({fmt(sd['nwj'])}) and JS ({fmt(sd['js'])}) "
        + ("exceeds" if ok else "does not exceed") + f" that of every multi-sample bound (largest "
        f"{fmt(max(sd[b] for b in multi))})")


@claim("fig2_ialpha_less_biased_than_nce_less_variance_than_nwj", source="Fig. 2", section=SECTION,
       text="While I_NCE is a poor estimator of MI with the small training batch size of 64, the interpolated "
            "bounds are able to provide less biased estimates than I_NCE with less variance than I_NWJ.")
def fig2_ialpha_between(cube):
    df, skip = _prepare(cube, need_bounds=("nwj", "nce", "interpolated"), need_datasets=("gaussian",))
    if skip:
        return skip
    if df.attrs["tail"] < 3:
        return UNTESTED, {"tail_steps": df.attrs["tail"]}, "fewer than 3 steps per level tail: no spread to measure"
    top = float(df.level.max())
    g = df[(df.dataset == "gaussian") & (df.level == top)]
    err = {b: _agg(g, "err", bound=b) for b in ["nce", "nwj", *_alpha_labels(g)]}
    sd = {b: _agg(g, "sd", "median", bound=b) for b in err}
    between = [a for a in _alpha_labels(g) if err[a] < err["nce"] and sd[a] < sd["nwj"]]
    ev = {"task": "gaussian", "top_level": top, "abs_error": err, "median_std": sd, "alphas_between": between}
    return verdict(bool(between)), ev, (
        f"on the Gaussian task at {top:g} nats, " + (", ".join(between) + " beat NCE's |error| "
        f"({fmt(err['nce'])}) with less spread than NWJ ({fmt(sd['nwj'])})" if between else
        f"no I_alpha has both a smaller |error| than NCE ({fmt(err['nce'])}) and less spread than NWJ ({fmt(sd['nwj'])})"))


@claim("fig2_ialpha_best_on_cubic", source="Sec. 3, Fig. 2", section=SECTION,
       text="The interpolated bounds trade off bias for variance, and achieve the best estimates of MI for the "
            "second problem (the cubic task).")
def fig2_ialpha_best_on_cubic(cube):
    """An estimate's quality is its root-mean-square error, sqrt(bias^2 + variance), per level (the claim is
    about trading bias for variance, and Fig. 3 ranks estimators by MSE), averaged over the levels. Fig. 2
    draws each critic type as its own curves, so each is compared within itself: the claim holds when, for
    every critic type, the best I_alpha has a lower error than every other bound of the paper."""
    df, skip = _prepare(cube, need_bounds=("interpolated",), need_datasets=("cubic",))
    if skip:
        return skip
    c = df[(df.dataset == "cubic") & df.name.isin(PAPER_BOUNDS)].copy()
    c["rmse"] = np.sqrt(c["err"] ** 2 + c["sd"] ** 2)
    alphas = _alpha_labels(c)
    ev, lost = {"task": "cubic", "error": "mean over levels of sqrt(|bias|^2 + spread^2)"}, []
    for critic in sorted(set(c.critic)):
        at = c[c.critic == critic]
        rmse = {b: _agg(at, "rmse", bound=b) for b in sorted(set(at.bound))}
        others = {b: v for b, v in rmse.items() if b not in alphas}
        mine = [a for a in alphas if a in rmse]
        if not others or not mine:
            return UNTESTED, {"rmse": rmse}, (f"the {critic} critic ran no {'other bound of the paper' if mine else 'I_alpha'}"
                                              " on the cubic task")
        best_alpha = min(mine, key=lambda b: rmse[b])
        best_other = min(others, key=others.get)
        ev[critic] = {"rmse": rmse, "mean_abs_error": {b: _agg(at, "err", bound=b) for b in rmse},
                      "best_ialpha": best_alpha, "best_other": best_other, "excluded_runs": _n_excluded(at)}
        if not rmse[best_alpha] < others[best_other]:
            lost.append(critic)
    parts = [f"{k}: best I_alpha ({ev[k]['best_ialpha']}) {fmt(ev[k]['rmse'][ev[k]['best_ialpha']])} vs best "
             f"other ({ev[k]['best_other']}) {fmt(ev[k]['rmse'][ev[k]['best_other']])}"
             for k in sorted(set(c.critic))]
    return verdict(not lost), ev, (
        "root-mean-square error (bias and spread) over the cubic levels, per critic; " + "; ".join(parts)
        + (f" (I_alpha is not the best with the {', '.join(lost)} critic)" if lost else ""))


@claim("fig2_cubic_small_alpha_best", source="Fig. 2", section=SECTION,
       text="For the more challenging nonlinear relationship in the bottom set of panels, the best estimates of MI "
            "are with alpha = 0.01.")
def fig2_cubic_small_alpha_best(cube):
    df, skip = _prepare(cube, need_bounds=("interpolated",), need_datasets=("cubic",))
    if skip:
        return skip
    c = df[df.dataset == "cubic"]
    alphas = _alpha_labels(c)
    if len(alphas) < 2:
        return UNTESTED, {"alphas": alphas}, "only one alpha was trained, nothing to compare"
    err = {a: _agg(c, "err", bound=a) for a in alphas}
    best = min(alphas, key=lambda a: err[a])
    ok = best == alphas[0]
    ev = {"task": "cubic", "mean_abs_error_over_levels": err, "best": best, "smallest_alpha": alphas[0],
          "excluded_runs": _n_excluded(c, bound=alphas)}
    return verdict(ok), ev, (
        f"on the cubic task the smallest alpha ({alphas[0]}) has mean |error| {fmt(err[alphas[0]])}; "
        + ("the lowest of all alphas" if ok else f"{best} does better with {fmt(err[best])}"))


@claim("fig2_joint_beats_separable_nwj_js", source="Fig. 2, Sec. 3", section=SECTION,
       text="Using a joint critic outperforms a separable critic for I_NWJ and I_JS.")
def fig2_joint_beats_separable(cube):
    df, skip = _prepare(cube, need_bounds=("nwj", "js"), need_critics=("joint", "separable"))
    if skip:
        return skip
    err = {f"{b}/{c}": _agg(df, "err", name=b, critic=c) for b in ("nwj", "js") for c in ("joint", "separable")}
    ok = all(err[f"{b}/joint"] < err[f"{b}/separable"] for b in ("nwj", "js"))
    ev = {"mean_abs_error_over_levels_and_tasks": err, "excluded_runs": _n_excluded(df, name=["nwj", "js"])}
    return verdict(ok), ev, (
        "mean |error| over levels and tasks, joint vs separable: "
        + "; ".join(f"{b} {fmt(err[f'{b}/joint'])} vs {fmt(err[f'{b}/separable'])}" for b in ("nwj", "js")))


@claim("fig2_multisample_robust_to_critic", source="Fig. 2", section=SECTION,
       text="The multi-sample bounds (I_NCE, I_alpha) are more robust to the choice of critic architecture "
            "than I_NWJ and I_JS.")
def fig2_multisample_robust(cube):
    df, skip = _prepare(cube, need_bounds=("nwj", "js", "nce"), need_critics=("joint", "separable"))
    if skip:
        return skip

    def gap(b):
        j, s = _agg(df, "err", bound=b, critic="joint"), _agg(df, "err", bound=b, critic="separable")
        return float("inf") if not (np.isfinite(j) and np.isfinite(s)) else abs(j - s)

    multi, single = ["nce", *_alpha_labels(df)], ["nwj", "js"]
    gaps = {b: gap(b) for b in multi + single}
    m, s = float(np.median([gaps[b] for b in multi])), float(np.median([gaps[b] for b in single]))
    ev = {"abs_joint_minus_separable_error": gaps, "median_multi_sample": m, "median_single_sample": s}
    return verdict(m < s), ev, (
        f"|joint - separable| mean |error|: median {fmt(m)} for the multi-sample bounds vs {fmt(s)} for NWJ/JS")
