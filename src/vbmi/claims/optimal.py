"""Claims about Fig. 3 (bias/variance/MSE of the bounds with the optimal critic; the montecarlo cube) and
Fig. 4 (gradient MSE and the best alpha; the gradients cube). Both cubes hold per-(bound, true_mi,
batch_size) statistics and ``interpolated_*`` per (alpha, true_mi, batch_size)
(:mod:`vbmi.experiments.montecarlo`, :mod:`vbmi.experiments.gradients`). No training, so no divergence;
non-finite statistics are reported as such and fail the comparison they enter.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from ._core import FAILS, UNTESTED, claim, fmt, verdict

Z_MAX = 4.0  # |bias| / standard error beyond which "unbiased" fails (a 4-sigma event per cell is rare)
# Gradient batches per cell below which a z-test of the mean gradient says nothing (the TUBA-end gradient
# errors are heavy-tailed; the config's smallest is 32, at the largest batch size).
MIN_GRADIENT_BATCHES = 30
FAMILY_FALSE_ALARM = 0.001  # chance that an unbiased estimator fails the gradient z-test somewhere in the grid


def _need(cube, bounds=(), min_mi=1, min_k=1, interior_alpha=False):
    have = [str(b) for b in cube.bound.values]
    missing = [b for b in bounds if b not in have]
    if missing:
        return UNTESTED, {"missing_bounds": missing}, f"the cube has no {', '.join(missing)}"
    mis = cube.true_mi.values[cube.true_mi.values > 1e-9]
    if len(mis) < min_mi:
        return UNTESTED, {"true_mi": cube.true_mi.values}, f"fewer than {min_mi} MI levels above 0"
    if cube.sizes["batch_size"] < min_k:
        return UNTESTED, {"batch_size": cube.batch_size.values}, f"fewer than {min_k} batch sizes"
    if interior_alpha and not any(0 < a < 1 for a in cube.alpha.values):
        return UNTESTED, {"alpha": cube.alpha.values}, "no alpha strictly between 0 and 1"
    return None


def nwj_bias_z(cube):
    """NWJ's bias over its closed-form standard error ``sqrt(Var / R)`` per (true_mi, batch_size), NaN at
    I = 0 (every estimator is exact there). The sample standard error under-reports the heavy tail at
    high MI; the closed form does not."""
    se = np.sqrt(cube.nwj_variance_closed_form / cube.replicates)
    return (cube.bias.sel(bound="nwj") / se).where(cube.true_mi > 1e-9)


def nce_bias_slopes(cube) -> dict[int, float]:
    """Per batch size K: the least-squares slope of NCE's bias against the true MI over the MI levels past
    log K + 1 (the saturated regime), for the K with at least two such levels."""
    mis = cube.true_mi.values
    slopes = {}
    for k in cube.batch_size.values:
        sel = mis > np.log(k) + 1.0
        if sel.sum() >= 2:
            slopes[int(k)] = float(np.polyfit(mis[sel], cube.bias.sel(bound="nce", batch_size=k).values[sel], 1)[0])
    return slopes


@claim("fig3_nwj_unbiased", source="Fig. 3, Sec. 3", section="montecarlo",
       text="I_NWJ is unbiased when given the optimal critic (Fig. 3 caption; Sec. 3: 'I_NWJ is an unbiased "
            "estimator of MI').")
def fig3_nwj_unbiased(cube):
    skip = _need(cube, ("nwj",))
    if skip:
        return skip
    pos = cube.true_mi > 1e-9
    # The closed-form standard error: the sample one under-reports the heavy tail at high MI.
    z = nwj_bias_z(cube)
    zmax = float(np.nanmax(np.abs(z.values)))
    ev = {"max_abs_z": zmax, "z_limit": Z_MAX, "max_abs_bias": float(np.nanmax(np.abs(cube.bias.sel(bound="nwj")
                                                                                      .where(pos).values)))}
    return verdict(zmax <= Z_MAX), ev, (
        f"NWJ's bias is within {zmax:.1f} closed-form standard errors of 0 in every (MI, K) cell with I > 0"
        f" (limit {Z_MAX:g})")


@claim("fig3_nwj_variance_grows_exponentially", source="Fig. 3, Sec. 3", section="montecarlo",
       text="I_NWJ exhibits high variance when the MI is large and the batch size is small (its variance grows "
            "like e^{2I}/K^2, closed form).")
def fig3_nwj_variance(cube):
    skip = _need(cube, ("nwj",), min_mi=2, min_k=2)
    if skip:
        return skip
    mis = cube.true_mi.values[cube.true_mi.values > 1e-9]
    lo, top, prev = float(mis.min()), float(mis.max()), float(np.sort(mis)[-2])
    ks = cube.batch_size.values
    var = cube.variance.sel(bound="nwj")
    closed = cube.nwj_variance_closed_form.sel(batch_size=ks.min())
    slope = float(np.log(closed.sel(true_mi=top) / closed.sel(true_mi=prev)) / (top - prev))
    grows = all(float(var.sel(true_mi=top, batch_size=k)) > float(var.sel(true_mi=lo, batch_size=k)) for k in ks)
    falls_k = float(var.sel(true_mi=top, batch_size=ks.min())) > float(var.sel(true_mi=top, batch_size=ks.max()))
    ok = grows and falls_k and slope >= 1.0
    ev = {"mc_variance_at_top_mi": {int(k): float(var.sel(true_mi=top, batch_size=k)) for k in ks},
          "mc_variance_at_lowest_mi": {int(k): float(var.sel(true_mi=lo, batch_size=k)) for k in ks},
          "closed_form_log_slope_per_nat": slope, "grows_with_mi_at_every_k": grows,
          "smaller_at_largest_k": falls_k}
    return verdict(ok), ev, (
        f"Monte Carlo variance rises from {lo:g} to {top:g} nats at every K: {grows}; falls with K at {top:g} nats: "
        f"{falls_k}; the closed form's log-slope at the smallest K is {slope:.2f} per nat (exponential: >= 1)")


@claim("fig3_nce_upper_bounded_log_k", source="Fig. 3, Sec. 3", section="montecarlo",
       text="The I_NCE estimate is upper bounded by log(batch size). This results in high bias but low variance "
            "when the batch size is small and the MI is large.")
def fig3_nce_upper_bounded(cube):
    skip = _need(cube, ("nce", "nwj"))
    if skip:
        return skip
    kmin, top = int(cube.batch_size.values.min()), float(cube.true_mi.values.max())
    if top < np.log(kmin) + 1:
        return UNTESTED, {"top_mi": top, "log_kmin": float(np.log(kmin))}, "the MI grid does not pass log K + 1"
    excess = float((cube["mean"].sel(bound="nce") - cube.log_batch_size).max())
    cell = dict(true_mi=top, batch_size=kmin)
    b, v_nce, v_nwj = (float(cube.bias.sel(bound="nce", **cell)), float(cube.variance.sel(bound="nce", **cell)),
                       float(cube.variance.sel(bound="nwj", **cell)))
    ok = excess <= 1e-6 and b <= -1.0 and v_nce < v_nwj
    ev = {"max_mean_minus_log_k": excess, "top_mi": top, "k": kmin, "nce_bias": b, "nce_variance": v_nce,
          "nwj_variance": v_nwj}
    return verdict(ok), ev, (
        f"mean NCE never exceeds log K (largest excess {excess:.2g}); at {top:g} nats and K = {kmin} its bias is "
        f"{b:.2f} nats with variance {v_nce:.3g} against NWJ's {v_nwj:.3g}")


@claim("fig3_nce_bias_grows_linearly", source="Fig. 3, Sec. 3", section="montecarlo",
       text="I_NCE can exhibit large bias that grows linearly with MI: the objective saturates to a constant "
            "while the MI continues to grow linearly.")
def fig3_nce_bias_linear(cube):
    skip = _need(cube, ("nce",))
    if skip:
        return skip
    slopes = nce_bias_slopes(cube)
    if not slopes:
        return UNTESTED, {"true_mi": cube.true_mi.values}, "no batch size has two MI levels past log K + 1"
    k0 = min(slopes)
    ok = -1.15 < slopes[k0] < -0.8 and all(s < -0.5 for s in slopes.values())
    return verdict(ok), {"slope_of_bias_vs_mi": slopes}, (
        f"past log K + 1 NCE's bias falls with slope {slopes[k0]:.2f} per nat at K = {k0} "
        "(linear saturation: close to -1)")


@claim("fig3_ialpha_mse_below_nwj_and_nce", source="Fig. 3, Sec. 3", section="montecarlo",
       text="The I_alpha bounds are less biased than I_NCE and lower variance than I_NWJ, resulting in a mean squared "
            "error that can be smaller than either I_NWJ or I_NCE.")
def fig3_ialpha_mse(cube):
    skip = _need(cube, ("nwj", "nce"), interior_alpha=True)
    if skip:
        return skip
    return _ialpha_beats_both(cube, "MSE of the estimate")


def _ialpha_beats_both(cube, what):
    inner = [a for a in cube.alpha.values if 0 < a < 1]
    pos = cube.true_mi.values > 1e-9
    best = cube.interpolated_mse.sel(alpha=inner).min("alpha").values[pos]
    ends = np.minimum(cube.mse.sel(bound="nwj").values, cube.mse.sel(bound="nce").values)[pos]
    wins = best < ends * (1 - 1e-9)
    n = int(wins.sum())
    cells = [f"I={float(i):g}, K={int(k)}" for (i, k) in
             np.array(np.meshgrid(cube.true_mi.values[pos], cube.batch_size.values, indexing="ij")).reshape(2, -1).T[
                 wins.ravel()]]
    return verdict(n > 0), {"cells_where_ialpha_wins": n, "cells": int(wins.size), "examples": cells[:6]}, (
        f"in {n} of {wins.size} (MI, K) cells with I > 0 an I_alpha with 0 < alpha < 1 has a lower {what} than "
        "both NWJ and NCE")


@claim("fig3_loo_upper_bad_at_small_batch", source="Fig. 3, Sec. 3", section="montecarlo",
       text="The leave one out upper bound (Eq. 13) has large bias and variance when the batch size is too small.")
def fig3_loo_upper(cube):
    skip = _need(cube, ("loo_upper",), min_k=2)
    if skip:
        return skip
    top = float(cube.true_mi.values.max())
    ks = cube.batch_size.values
    s = {stat: {int(k): float(cube[stat].sel(bound="loo_upper", true_mi=top, batch_size=k)) for k in (ks.min(), ks.max())}
         for stat in ("bias", "variance")}
    kmin, kmax = int(ks.min()), int(ks.max())
    ok = s["bias"][kmin] >= 1.0 and s["bias"][kmin] > s["bias"][kmax] and s["variance"][kmin] > s["variance"][kmax]
    return verdict(ok), {"top_mi": top, **s, "large_bias_nats": 1.0}, (
        f"at {top:g} nats the upper bound's bias is {s['bias'][kmin]:.2f} at K = {kmin} vs {s['bias'][kmax]:.2f} at "
        f"K = {kmax}, variance {s['variance'][kmin]:.3g} vs {s['variance'][kmax]:.3g}")


@claim("fig4_best_alpha_moves_toward_zero", source="Fig. 4, Sec. 3", section="gradients",
       text="For smaller batch sizes and MIs, alpha close to 1 (I_NCE) is preferred, while for larger batch sizes "
            "and MIs, alpha closer to 0 (I_NWJ) is preferred.")
def fig4_best_alpha(cube):
    if cube.sizes["true_mi"] < 2 or cube.sizes["batch_size"] < 2 or cube.sizes["alpha"] < 2:
        return UNTESTED, {k: int(cube.sizes[k]) for k in ("true_mi", "batch_size", "alpha")}, (
            "the gradient cube needs at least two MI levels, two batch sizes and two alphas")
    best = cube.interpolated_mse.fillna(np.inf).idxmin("alpha")
    frame = best.to_dataframe(name="alpha").reset_index()[["alpha", "true_mi", "batch_size"]]
    ranks = frame.rank()  # Spearman = Pearson on ranks
    c_mi, c_k = float(ranks["alpha"].corr(ranks["true_mi"])), float(ranks["alpha"].corr(ranks["batch_size"]))
    small = float(best.isel(true_mi=0, batch_size=0))
    large = float(best.isel(true_mi=-1, batch_size=-1))
    ok = np.isfinite(c_mi) and np.isfinite(c_k) and c_mi < 0 and c_k < 0 and large < small
    ev = {"spearman_best_alpha_vs_mi": c_mi, "spearman_best_alpha_vs_batch_size": c_k,
          "best_alpha_smallest_mi_and_k": small, "best_alpha_largest_mi_and_k": large,
          "best_alpha": {f"I={float(i):g}": {int(k): float(best.sel(true_mi=i, batch_size=k))
                                             for k in cube.batch_size.values} for i in cube.true_mi.values}}
    return verdict(ok), ev, (
        f"the best alpha (lowest gradient MSE) is {small:g} at the smallest MI and K and {large:g} at the largest; "
        f"Spearman correlation with MI {fmt(c_mi)}, with K {fmt(c_k)} (both must be negative)")


@claim("fig4_ialpha_reduces_gradient_mse", source="Fig. 4, Sec. 3", section="gradients",
       text="The reduced gradient MSE of the I_alpha bounds points to their utility as an objective for training "
            "encoders in the InfoMax setting.")
def fig4_ialpha_gradient_mse(cube):
    skip = _need(cube, ("nwj", "nce"), interior_alpha=True)
    if skip:
        return skip
    return _ialpha_beats_both(cube, "gradient MSE")


def gradient_z_limit(n_tests: int) -> float:
    """The |z| an unbiased estimator exceeds somewhere among ``n_tests`` z-scores with probability
    :data:`FAMILY_FALSE_ALARM` (Bonferroni, normal z), never below :data:`Z_MAX`."""
    return max(Z_MAX, NormalDist().inv_cdf(1 - FAMILY_FALSE_ALARM / (2 * max(1, n_tests))))


@claim("fig4_nwj_gradient_unbiased", source="Sec. 2.2, Fig. 4", section="gradients",
       text="TUBA is a lower bound on MI that admits unbiased estimates and gradients; I_NWJ is TUBA with "
            "a(y) = e, so with the optimal critic its gradient with respect to the encoder is unbiased.")
def fig4_nwj_gradient_unbiased(cube):
    skip = _need(cube, ("nwj",))
    if skip:
        return skip
    if "max_abs_bias_z" not in cube or "replicates" not in cube:
        return UNTESTED, {}, "the cube has no per-coordinate bias z-scores of the gradient"
    reps = int(cube.replicates.min())
    if reps < MIN_GRADIENT_BATCHES:
        return UNTESTED, {"min_replicates": reps}, (
            f"some cell has only {reps} gradient batches (fewer than {MIN_GRADIENT_BATCHES}): too few for a z-test of "
            "a heavy-tailed mean")
    pos = cube.true_mi.values > 1e-9
    z = cube.max_abs_bias_z.sel(bound="nwj").transpose("true_mi", "batch_size").values[pos]
    d = int(cube.attrs.get("d", 20))
    limit = gradient_z_limit(z.size * d)
    zmax = float(np.max(z)) if np.all(np.isfinite(z)) else float("inf")  # non-finite: fails
    ev = {"max_abs_z": zmax, "z_limit": limit, "z_scores": int(z.size * d), "min_replicates": reps}
    if not np.isfinite(zmax):
        return FAILS, ev, "NWJ's gradient bias z-score is non-finite in some (MI, K) cell"
    return verdict(zmax <= limit), ev, (
        f"NWJ's mean gradient is within {zmax:.1f} standard errors of dI/drho in every coordinate of every "
        f"(MI, K) cell with I > 0 ({z.size * d} z-scores; limit {limit:.1f}, a {FAMILY_FALSE_ALARM:.1%} chance "
        "of a false alarm)")
