"""vbmi.claims: every claim on small synthetic cubes where it holds, where it does not, and without its cube.

The cubes are built here with exactly the dims/variables the stages write (see vbmi.claims submodules),
with values chosen so the paper's finding is (or is not) in them; no training, no torch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from vbmi.claims import (
    CLAIMS,
    CUBE_GROUPS,
    FAILS,
    HOLDS,
    UNTESTED,
    ClaimResult,
    claims_html,
    evaluate_claims,
    section_html,
    verdict_counts,
)
from vbmi.claims._core import clean

LEVELS = [2.0, 4.0, 6.0, 8.0, 10.0]


def run(claim_id: str, cube) -> ClaimResult:
    result = CLAIMS[claim_id](cube)
    json.dumps(result.to_dict())  # always JSON-serialisable
    return result


# ---- Fig. 2 cube ------------------------------------------------------------------------------------
LOG64 = float(np.log(64))


def fig2_spec():
    """(label, critic, dataset) -> (bias as a function of the level, spread): the paper's Fig. 2 picture."""
    spec = {}
    for ds in ("gaussian", "cubic"):
        for critic in ("joint", "separable"):
            sep = critic == "separable"
            spec[("nce", critic, ds)] = (lambda lv: min(lv, LOG64 - 0.1) - lv, 0.05)
            spec[("nwj", critic, ds)] = (lambda lv, s=sep: -2.5 if s else -0.5, 1.5 if sep else 1.0)
            spec[("js", critic, ds)] = (lambda lv, s=sep: -3.0 if s else -0.7, 1.2 if sep else 0.8)
            spec[("interpolated_0.01", critic, ds)] = (lambda lv: -0.4, 0.3)
            spec[("interpolated_0.5", critic, ds)] = (lambda lv: -1.2, 0.2)
            spec[("interpolated_0.99", critic, ds)] = (lambda lv: min(lv, 5.0) - lv - 0.1, 0.1)
    return spec


def fig2_cube(spec=None, *, spl: int = 40, diverged=None) -> xr.Dataset:
    """Estimates alternate +-spread around level + bias, so a tail's mean and spread are exact."""
    spec = spec or fig2_spec()
    bounds = list(dict.fromkeys(k[0] for k in spec))
    critics, datasets = ["joint", "separable"], ["gaussian", "cubic"]
    steps = np.arange(spl * len(LEVELS))
    true_mi = np.repeat(LEVELS, spl)
    sign = np.where(steps % 2 == 0, 1.0, -1.0)
    est = np.full((len(bounds), 2, 2, 1, len(steps)), np.nan)
    for (b, c, d), (bias, sd) in spec.items():
        est[bounds.index(b), critics.index(c), datasets.index(d), 0] = [
            lv + bias(lv) + sd * s for lv, s in zip(true_mi, sign)]
    div = np.full((len(bounds), 2, 2, 1), -1)
    for (b, c, d), step in (diverged or {}).items():
        div[bounds.index(b), critics.index(c), datasets.index(d), 0] = step
    names = [b.split("_")[0] if b.startswith("interpolated") else b for b in bounds]
    alphas = [float(b.split("_")[1]) if b.startswith("interpolated") else np.nan for b in bounds]
    dims = ("bound", "critic", "dataset", "seed")
    return xr.Dataset(
        {"estimate": (dims + ("step",), est), "diverged_step": (dims, div)},
        coords={"bound": bounds, "critic": critics, "dataset": datasets, "seed": [0], "step": steps,
                "true_mi": ("step", true_mi), "bound_name": ("bound", names), "alpha": ("bound", alphas)},
        attrs={"steps_per_level": spl, "levels": LEVELS, "batch_size": 64},
    )


FIG2_CLAIMS = [c for c in CLAIMS if c.startswith("fig2_")]


@pytest.mark.parametrize("claim_id", FIG2_CLAIMS)
def test_fig2_claims_hold_on_the_papers_picture(claim_id):
    result = run(claim_id, fig2_cube())
    assert result.verdict == HOLDS, result.reason
    assert result.section == "training" and result.figure == "training.html"


def _modified(**changes):
    spec = fig2_spec()
    for key, value in changes.items():
        label, critic, ds = key.split("__")
        for c in ("joint", "separable") if critic == "any" else (critic,):
            for d in ("gaussian", "cubic") if ds == "any" else (ds,):
                spec[(label, c, d)] = value
    return spec


FIG2_FAILING = {
    # NCE learns nothing near log K
    "fig2_nce_saturates_log_k": _modified(nce__any__any=(lambda lv: -0.8 * lv, 0.05)),
    # NWJ as quiet as NCE
    "fig2_single_sample_high_variance": _modified(nwj__any__any=(lambda lv: -0.5, 0.01)),
    "fig2_ialpha_less_biased_than_nce_less_variance_than_nwj": _modified(nwj__any__gaussian=(lambda lv: -0.5, 0.01)),
    # NWJ exact and quiet on the cubic task
    "fig2_ialpha_best_on_cubic": _modified(nwj__any__cubic=(lambda lv: 0.0, 0.1)),
    "fig2_cubic_small_alpha_best": _modified(**{"interpolated_0.01__any__cubic": (lambda lv: -2.0, 0.3)}),
    "fig2_joint_beats_separable_nwj_js": _modified(nwj__joint__any=(lambda lv: -3.0, 1.0)),
    "fig2_multisample_robust_to_critic": _modified(nce__separable__any=(lambda lv: -lv + 0.5, 0.05),
                                                   **{"interpolated_0.5__separable__any": (lambda lv: -5.0, 0.2),
                                                      "interpolated_0.01__separable__any": (lambda lv: -5.0, 0.3),
                                                      "interpolated_0.99__separable__any": (lambda lv: -6.0, 0.1)}),
}


def test_every_fig2_claim_has_a_failing_case():
    assert set(FIG2_FAILING) == set(FIG2_CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(FIG2_FAILING))
def test_fig2_claims_fail_when_the_cube_disagrees(claim_id):
    result = run(claim_id, fig2_cube(FIG2_FAILING[claim_id]))
    assert result.verdict == FAILS, result.reason


def test_ialpha_on_cubic_weighs_spread_and_compares_each_critic():
    # an unbiased NWJ whose spread (1.0 nat) exceeds I_alpha's error (0.4 bias, 0.3 spread) does not beat it
    noisy = run("fig2_ialpha_best_on_cubic", fig2_cube(_modified(nwj__any__cubic=(lambda lv: 0.0, 1.0))))
    assert noisy.verdict == HOLDS, noisy.reason
    assert noisy.evidence["separable"]["rmse"]["nwj"] == pytest.approx(1.0, rel=0.1)
    # better than I_alpha with the joint critic only: the claim must hold for every critic type
    joint_only = run("fig2_ialpha_best_on_cubic", fig2_cube(_modified(nwj__joint__cubic=(lambda lv: 0.0, 0.1))))
    assert joint_only.verdict == FAILS and "joint critic" in joint_only.reason
    assert joint_only.evidence["separable"]["best_ialpha"] == "interpolated_0.01"


@pytest.mark.parametrize("claim_id", FIG2_CLAIMS)
def test_fig2_claims_untested_when_critics_are_untrained(claim_id):
    result = run(claim_id, fig2_cube(spl=3))
    assert result.verdict == UNTESTED and "trained 3 steps" in result.reason


def test_a_diverged_run_never_counts_as_a_number():
    # Joint NWJ's numbers look perfect, but the run diverged at step 1: it must count as infinitely wrong.
    spec = _modified(nwj__joint__any=(lambda lv: 0.0, 1.0))
    ok = run("fig2_joint_beats_separable_nwj_js", fig2_cube(spec))
    assert ok.verdict == HOLDS
    bad = run("fig2_joint_beats_separable_nwj_js",
              fig2_cube(spec, diverged={("nwj", "joint", "gaussian"): 1, ("nwj", "joint", "cubic"): 1}))
    assert bad.verdict == FAILS
    assert bad.evidence["mean_abs_error_over_levels_and_tasks"]["nwj/joint"] == "inf"
    assert bad.evidence["excluded_runs"] == 2 * len(LEVELS)
    assert "diverged" in bad.reason


def test_an_exploded_estimate_is_excluded_even_without_a_divergence_mark():
    spec = _modified(nwj__separable__cubic=(lambda lv: -3.4e7, 1.0))
    result = run("fig2_single_sample_high_variance", fig2_cube(spec))
    assert result.evidence["excluded_runs"] == 1  # one run at the top level
    result = run("fig2_joint_beats_separable_nwj_js", fig2_cube(spec))
    assert result.evidence["mean_abs_error_over_levels_and_tasks"]["nwj/separable"] == "inf"


def test_fig2_nce_saturation_needs_a_level_past_log_k():
    cube = fig2_cube()
    cube.attrs["batch_size"] = 16384  # log K = 9.7: 10 nats is not past log K + 1
    result = run("fig2_nce_saturates_log_k", cube)
    assert result.verdict == UNTESTED


def test_fig2_parts_are_combined():
    cube = fig2_cube()
    parts = [cube.sel(critic=[c], dataset=[d]) for c in ("joint", "separable") for d in ("gaussian", "cubic")]
    whole = {r.id: r.verdict for r in evaluate_claims({"fig2": parts}, sections=["training"])}
    assert whole == {r.id: r.verdict for r in evaluate_claims({"fig2": cube}, sections=["training"])}
    assert set(whole.values()) == {HOLDS}


def _split_schedules(spec=None, *, separable_spl=40, joint_spl=24):
    """Fig. 2 parts as the workflow writes them when joint critics train on their own schedule."""
    sep, joint = fig2_cube(spec, spl=separable_spl), fig2_cube(spec, spl=joint_spl)
    return [cube.sel(critic=[c], dataset=[d]) for c, cube in (("separable", sep), ("joint", joint))
            for d in ("gaussian", "cubic")]


def test_fig2_parts_with_different_schedules_are_read_each_with_its_own():
    from vbmi.claims import load_cubes
    from vbmi.claims.fig2 import levels_table

    parts = _split_schedules()
    loaded = load_cubes({"fig2": parts})["fig2"]
    assert isinstance(loaded, list) and len(loaded) == 4  # not combined: the step axes differ
    table = levels_table(loaded)
    assert sorted(set(table.steps_per_level)) == [24, 40]
    # Each run's level means are exactly level + bias: every part's windows sit at its own level ends.
    ref = levels_table(fig2_cube()).set_index(["bound", "critic", "dataset", "seed", "level"])
    got = table.set_index(["bound", "critic", "dataset", "seed", "level"]).loc[ref.index]
    np.testing.assert_allclose(got["mean"], ref["mean"])
    np.testing.assert_allclose(got["std"], ref["std"], rtol=0.1)  # ddof=1 over 6 or 10 tail steps
    results = evaluate_claims({"fig2": parts}, sections=["training"])
    assert {r.verdict for r in results} == {HOLDS}, [r.reason for r in results if r.verdict != HOLDS]


@pytest.mark.parametrize("claim_id", ["fig2_joint_beats_separable_nwj_js", "fig2_ialpha_best_on_cubic"])
def test_fig2_parts_with_different_schedules_can_fail(claim_id):
    results = evaluate_claims({"fig2": _split_schedules(FIG2_FAILING[claim_id])}, sections=["training"])
    assert {r.id: r.verdict for r in results}[claim_id] == FAILS


def test_fig2_untested_names_the_parts_trained_too_short():
    parts = _split_schedules(joint_spl=3)
    result = run("fig2_joint_beats_separable_nwj_js", parts)
    assert result.verdict == UNTESTED
    assert "trained 3 steps" in result.reason and "joint/gaussian" in result.reason
    assert "separable/" not in result.reason
    assert result.evidence["steps_per_level"] == {"separable/gaussian": 40, "separable/cubic": 40,
                                                  "joint/gaussian": 3, "joint/cubic": 3}


# ---- sweep cube (Table 3, Figs. 6-7) ----------------------------------------------------------------
def sweep_rows():
    """(bound, alpha, critic, dataset) -> (bias(level), spread)."""
    rows = {}
    for ds in ("gaussian", "cubic"):
        for critic in ("separable", "joint"):
            rows[("interpolated", 0.01, critic, ds)] = (lambda lv: -0.2, 0.5)
            rows[("interpolated", 0.5, critic, ds)] = (lambda lv: -0.5, 0.2)
            rows[("nce", np.nan, critic, ds)] = (lambda lv: min(lv, 5.5) - lv - 0.3, 0.05)
            rows[("js", np.nan, critic, ds)] = (lambda lv: -0.8, 0.6)
            rows[("nwj", np.nan, critic, ds)] = (lambda lv: -0.4, 1.5)
    for critic in ("separable", "joint"):
        rows[("interpolated_linear", 0.5, critic, "gaussian")] = (lambda lv: -0.8, 0.4)
        rows[("interpolated_product", 0.5, critic, "gaussian")] = (lambda lv: -0.9, 0.3)
    rows[("nwj_reparam", np.nan, "known", "gaussian")] = (lambda lv: -0.1, 0.1)
    rows[("tnce", np.nan, "known", "gaussian")] = (lambda lv: min(lv, 4.8) - lv, 0.01)
    return rows


def sweep_cube(rows=None, *, spl: int = 100, diverged=()) -> xr.Dataset:
    rows = rows or sweep_rows()
    keys = list(rows)
    mean = np.array([[lv + rows[k][0](lv) for k in keys] for lv in LEVELS])
    std = np.array([[rows[k][1](lv) if callable(rows[k][1]) else rows[k][1] for k in keys] for lv in LEVELS])
    div = np.zeros_like(mean, dtype=np.int8)
    for key, lv in diverged:
        div[LEVELS.index(lv), keys.index(key)] = 1
    cfg = [f"c{i:05d}" for i in range(len(keys))]
    return xr.Dataset(
        {"level_mean": (("level", "config"), mean), "level_std": (("level", "config"), std),
         "level_diverged": (("level", "config"), div)},
        coords={"level": LEVELS, "config": cfg, "bound": ("config", [k[0] for k in keys]),
                "alpha": ("config", [k[1] for k in keys]), "critic": ("config", [k[2] for k in keys]),
                "dataset": ("config", [k[3] for k in keys]), "batch_size": ("config", [64] * len(keys))},
        attrs={"steps_per_level": spl, "levels": LEVELS, "tail_steps": 25, "figure_levels": [2.0, 6.0, 10.0]},
    )


SWEEP_CLAIMS = [c for c in CLAIMS if CLAIMS[c].group == "sweep"]


@pytest.mark.parametrize("claim_id", SWEEP_CLAIMS)
def test_sweep_claims_hold_on_the_papers_picture(claim_id):
    result = run(claim_id, sweep_cube())
    assert result.verdict == HOLDS, result.reason


def _sweep_modified(changes):
    rows = sweep_rows()
    for (bound, alpha, critic, ds), value in changes.items():
        for c in ("separable", "joint") if critic == "any" else (critic,):
            for key in rows:
                if key[0] == bound and (alpha is None or key[1] == alpha) and key[2] == c and key[3] == ds:
                    rows[key] = value
    return rows


SWEEP_FAILING = {
    "table3_ialpha_best_gaussian": _sweep_modified({("nwj", None, "joint", "gaussian"): (lambda lv: -0.05, 1.5)}),
    "table3_ialpha_best_cubic": _sweep_modified({("js", None, "separable", "cubic"): (lambda lv: 0.1, 0.6)}),
    "table3_eq14_known_conditional_accurate": _sweep_modified(
        {("nwj_reparam", None, "known", "gaussian"): (lambda lv: -2.0, 0.1)}),
    "fig6_ialpha_interpolates_nce_nwj": _sweep_modified({("interpolated", None, "any", "gaussian"): (lambda lv: -0.5, 2.0)}),
    "fig6_js_competitive_high_rates": _sweep_modified({("js", None, "any", "gaussian"): (lambda lv: -0.1, 0.01)}),
    "fig7_ialpha_beats_linear_product": _sweep_modified(
        {("interpolated_product", None, "any", "gaussian"): (lambda lv: -0.9, 0.01)}),
}


def test_fig6_counts_only_levels_where_nce_and_nwj_trade_off():
    """NWJ less variable than NCE everywhere: there is no trade-off for I_alpha to interpolate."""
    result = run("fig6_ialpha_interpolates_nce_nwj",
                 sweep_cube(_sweep_modified({("nwj", None, "any", "gaussian"): (lambda lv: -0.4, 0.01)})))
    assert result.verdict == UNTESTED and "no trade-off" in result.reason
    held = run("fig6_ialpha_interpolates_nce_nwj", sweep_cube())  # at 2 nats NWJ is the more biased one
    assert held.verdict == HOLDS and "at 6, 10 nats" in held.reason and "at 2 nats NCE is not" in held.reason


def test_fig7_ties_within_noise_are_not_losses_but_a_win_is_needed():
    tie = {("interpolated_linear", None, "any", "gaussian"): (lambda lv: -0.5, 0.2),
           ("interpolated_product", None, "any", "gaussian"): (lambda lv: -0.49, 0.21)}
    result = run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(tie)))
    assert result.verdict == FAILS and "never better" in result.reason
    slightly = {("interpolated_product", None, "any", "gaussian"): (lambda lv: -0.49, 0.21)}
    assert run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(slightly))).verdict == FAILS
    noisy_win = {("interpolated_product", None, "any", "gaussian"): (lambda lv: -0.49 if lv < 5 else -0.9, 0.21)}
    assert run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(noisy_win))).verdict == HOLDS


def test_fig7_a_trade_off_is_not_a_loss_unless_its_total_error_is_lower():
    linear = ("interpolated_linear", None, "any", "gaussian")
    # I_alpha(0.5): |bias| 0.5, variance 0.04. Less variance for more bias, and a larger bias^2 + variance.
    traded = {linear: (lambda lv: -0.8, lambda lv: 0.1 if lv < 5 else 0.4)}
    result = run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(traded)))
    assert result.verdict == HOLDS and "trade-off" in result.reason and "linear at 2 nats" in result.reason
    everywhere = {linear: (lambda lv: -0.8, 0.1)}
    result = run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(everywhere)))
    assert result.verdict == FAILS and "never better than the linear" in result.reason
    # Less bias for more variance, with a smaller bias^2 + variance than I_alpha's: a better point.
    lower_error = {linear: (lambda lv: -0.2 if lv < 5 else -0.8, lambda lv: 0.26 if lv < 5 else 0.4)}
    result = run("fig7_ialpha_beats_linear_product", sweep_cube(_sweep_modified(lower_error)))
    assert result.verdict == FAILS and "linear at 2 nats" in result.reason


def test_fig6_js_needs_higher_bias_and_higher_variance_beyond_noise_at_the_lower_rates():
    js = ("js", None, "any", "gaussian")
    # Pooled I_alpha medians: |bias| 0.35, variance 0.145. JS: more bias, the same variance at 2 and 6 nats.
    same_variance = {js: (lambda lv: -0.8, 0.38)}
    result = run("fig6_js_competitive_high_rates", sweep_cube(_sweep_modified(same_variance)))
    assert result.verdict == FAILS and "variance is higher than I_alpha's, beyond noise, at no lower level" in result.reason
    # More bias at 2 nats, more variance at 6 nats, competitive at 10: the claim's picture over the lower rates.
    split = {js: (lambda lv: -0.8 if lv < 5 else -0.35, lambda lv: 0.38 if lv < 5 else 1.0)}
    result = run("fig6_js_competitive_high_rates", sweep_cube(_sweep_modified(split)))
    assert result.verdict == HOLDS, result.reason
    assert "at 2 nats JS |bias| 0.80" in result.reason and "variance same within noise" in result.reason
    # Lower variance than I_alpha beyond noise at a lower rate contradicts the claim, whatever else holds.
    quieter = {js: (lambda lv: -0.8 if lv < 5 else -0.35, lambda lv: 0.2 if lv < 5 else 1.0)}
    assert run("fig6_js_competitive_high_rates", sweep_cube(_sweep_modified(quieter))).verdict == FAILS


def test_every_sweep_claim_has_a_failing_case():
    assert set(SWEEP_FAILING) == set(SWEEP_CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(SWEEP_FAILING))
def test_sweep_claims_fail_when_the_cube_disagrees(claim_id):
    result = run(claim_id, sweep_cube(SWEEP_FAILING[claim_id]))
    assert result.verdict == FAILS, result.reason


@pytest.mark.parametrize("claim_id", SWEEP_CLAIMS)
def test_sweep_claims_untested_when_critics_are_untrained(claim_id):
    assert run(claim_id, sweep_cube(spl=3)).verdict == UNTESTED


def test_table3_diverged_ialpha_loses_its_cell():
    rows = sweep_rows()
    ia = [k for k in rows if k[0] == "interpolated" and k[3] == "gaussian"]
    result = run("table3_ialpha_best_gaussian", sweep_cube(rows, diverged=[(k, 10.0) for k in ia]))
    assert result.verdict == FAILS
    assert result.evidence["best_estimate"]["10"]["interpolated"] == "diverged"
    assert "10 nats" in result.reason
    # the cubic task is unaffected
    assert run("table3_ialpha_best_cubic", sweep_cube(rows, diverged=[(k, 10.0) for k in ia])).verdict == HOLDS


def test_table3_without_its_levels_is_untested():
    cube = sweep_cube().sel(level=[2.0, 4.0])
    assert run("table3_ialpha_best_gaussian", cube).verdict == UNTESTED


# ---- Monte Carlo cube (Fig. 3) and gradients cube (Fig. 4) ------------------------------------------
def mc_cube(*, nwj_bias_se=0.0, nce_slope=None, flat_nwj=False, alpha_mid_wins=True, loo_flat=False):
    mis = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    ks = np.array([16, 64])
    log_k = np.log(ks)
    I, K = np.meshgrid(mis, ks, indexing="ij")  # (true_mi, batch_size)
    reps = np.array([400, 100])
    closed = np.where(I > 0, (np.exp(2 * I) - 1) / K**2 + 20 * (1 - np.exp(-2 * I / 20)) / K, 0.0)
    nwj_var = np.full_like(closed, closed[1, 0]) if flat_nwj else closed
    nwj_bias = nwj_bias_se * np.sqrt(closed / reps)
    nce_mean = np.minimum(I, np.log(K) - 0.2) if nce_slope is None else I * (1 + nce_slope)
    stats = {"nwj": (I + nwj_bias, nwj_var), "js": (I + nwj_bias, nwj_var), "nce": (nce_mean, np.full_like(I, 0.01)),
             "loo_upper": (I + (3.0 if loo_flat else 40.0 / K), (1.0 if loo_flat else 10.0 / K) + 0 * I)}
    mean = np.stack([stats[b][0] for b in stats])
    var = np.stack([stats[b][1] for b in stats])
    bias = mean - I
    mse = bias**2 + var
    mid = 0.5 * np.minimum(mse[0], mse[2]) if alpha_mid_wins else 2 * np.maximum(mse[0], mse[2])
    interp = np.stack([mse[0], mid, mse[2]])
    d3 = ("bound", "true_mi", "batch_size")
    return xr.Dataset(
        {"mean": (d3, mean), "bias": (d3, bias), "variance": (d3, var), "mse": (d3, mse),
         "interpolated_mse": (("alpha", "true_mi", "batch_size"), interp),
         "nwj_variance_closed_form": (("true_mi", "batch_size"), closed), "replicates": ("batch_size", reps)},
        coords={"bound": list(stats), "true_mi": mis, "batch_size": ks, "alpha": [0.0, 0.5, 1.0],
                "log_batch_size": ("batch_size", log_k)},
    )


MC_FAILING = {
    "fig3_nwj_unbiased": dict(nwj_bias_se=10.0),
    "fig3_nwj_variance_grows_exponentially": dict(flat_nwj=True),
    "fig3_nce_upper_bounded_log_k": dict(nce_slope=-0.5),
    "fig3_nce_bias_grows_linearly": dict(nce_slope=-0.3),
    "fig3_ialpha_mse_below_nwj_and_nce": dict(alpha_mid_wins=False),
    "fig3_loo_upper_bad_at_small_batch": dict(loo_flat=True),
}
MC_CLAIMS = [c for c in CLAIMS if CLAIMS[c].group == "montecarlo"]


def test_every_montecarlo_claim_has_a_failing_case():
    assert set(MC_FAILING) == set(MC_CLAIMS)


@pytest.mark.parametrize("claim_id", MC_CLAIMS)
def test_montecarlo_claims_hold_and_fail(claim_id):
    good = run(claim_id, mc_cube())
    assert good.verdict == HOLDS, good.reason
    bad = run(claim_id, mc_cube(**MC_FAILING[claim_id]))
    assert bad.verdict == FAILS, bad.reason


def test_montecarlo_claims_need_enough_levels():
    small = mc_cube().sel(true_mi=[0.0, 2.0], batch_size=[64])
    for claim_id in ("fig3_nwj_variance_grows_exponentially", "fig3_nce_bias_grows_linearly",
                     "fig3_loo_upper_bad_at_small_batch", "fig3_nce_upper_bounded_log_k"):
        assert run(claim_id, small).verdict == UNTESTED, claim_id
    assert run("fig3_ialpha_mse_below_nwj_and_nce", mc_cube().sel(alpha=[0.0, 1.0])).verdict == UNTESTED


def grad_cube(*, trend: str = "paper", nwj_z: float = 2.5, replicates: int = 128):
    mis, ks, alphas = np.array([1.0, 4.0, 8.0]), np.array([16, 64, 256]), np.array([0.0, 0.5, 1.0])
    I, K = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    target = {"paper": 1 - (I + K) / 4, "flat": np.full(I.shape, 0.5), "reversed": (I + K) / 4}[trend]
    interp = np.stack([(a - target) ** 2 + 0.1 for a in alphas])
    mse = np.stack([interp[0], interp[0] * 2, interp[2]]) + 0.05
    # max over the d = 20 coordinates of |mean gradient - dI/drho| / standard error; JS and NCE are biased
    z = np.stack([np.full(I.shape, 1.5), np.full(I.shape, 30.0), np.full(I.shape, 50.0)])
    z[0, -1, 0] = nwj_z
    return xr.Dataset(
        {"mse": (("bound", "true_mi", "batch_size"), mse),
         "max_abs_bias_z": (("bound", "true_mi", "batch_size"), z),
         "interpolated_mse": (("alpha", "true_mi", "batch_size"), interp),
         "replicates": ("batch_size", replicates * ks[-1] // ks)},
        coords={"bound": ["nwj", "js", "nce"], "true_mi": mis, "batch_size": ks, "alpha": alphas},
        attrs={"d": 20},
    )


def test_fig4_best_alpha_moves_toward_zero():
    assert run("fig4_best_alpha_moves_toward_zero", grad_cube()).verdict == HOLDS
    for trend in ("flat", "reversed"):
        assert run("fig4_best_alpha_moves_toward_zero", grad_cube(trend=trend)).verdict == FAILS
    assert run("fig4_best_alpha_moves_toward_zero", grad_cube().isel(batch_size=[0])).verdict == UNTESTED


def test_fig4_ialpha_reduces_gradient_mse():
    assert run("fig4_ialpha_reduces_gradient_mse", grad_cube()).verdict == HOLDS
    worse = grad_cube()
    worse["interpolated_mse"].loc[{"alpha": 0.5}] = 100.0
    assert run("fig4_ialpha_reduces_gradient_mse", worse).verdict == FAILS


def test_fig4_nwj_gradient_unbiased():
    cid = "fig4_nwj_gradient_unbiased"
    good = run(cid, grad_cube())
    assert good.verdict == HOLDS, good.reason
    assert good.evidence["z_scores"] == 9 * 20 and 4.0 <= good.evidence["z_limit"] < 5.0
    assert run(cid, grad_cube(nwj_z=6.0)).verdict == FAILS  # one biased coordinate in one cell
    assert run(cid, grad_cube(nwj_z=np.nan)).verdict == FAILS  # non-finite fails
    few = run(cid, grad_cube(replicates=8))
    assert few.verdict == UNTESTED and "8 gradient batches" in few.reason
    assert run(cid, grad_cube().drop_vars("max_abs_bias_z")).verdict == UNTESTED
    assert run(cid, grad_cube().sel(bound=["js", "nce"])).verdict == UNTESTED


def test_gradient_z_limit_grows_with_the_number_of_tests():
    from statistics import NormalDist

    from vbmi.claims.optimal import FAMILY_FALSE_ALARM, Z_MAX, gradient_z_limit

    assert gradient_z_limit(1) == Z_MAX  # a single z-score: the per-cell limit
    big = gradient_z_limit(1200)  # the paper-scale grid: 60 cells x 20 coordinates
    assert Z_MAX < big < 5.5 and gradient_z_limit(120) < big
    # an unbiased estimator exceeds the limit somewhere with probability FAMILY_FALSE_ALARM (Bonferroni)
    assert 1200 * 2 * (1 - NormalDist().cdf(big)) == pytest.approx(FAMILY_FALSE_ALARM)


# ---- dSprites cube (Sec. 3.1, Fig. 5) ---------------------------------------------------------------
FACTORS = ["shape", "scale", "orientation", "pos_x", "pos_y"]


def dsprites_cube(*, steps=2000, orientation=0.05, pos_y_winner=1, seeds=3, mig=(0.3, 0.02)):
    trained = {"shape": 0.1, "scale": 0.4, "orientation": orientation, "pos_x": 0.6, "pos_y": 0.55}
    win = {"shape": 3, "scale": 2, "orientation": 4, "pos_x": 0, "pos_y": pos_y_winner}
    best = np.array([[[trained[f] for f in FACTORS], [0.1] * 5] for _ in range(seeds)])
    winner = np.array([[[win[f] for f in FACTORS], [0] * 5] for _ in range(seeds)])
    d = ("seed", "encoder", "factor")
    return xr.Dataset({"best_nmi": (d, best), "winner": (d, winner), "mig": (d[:2], np.tile(mig, (seeds, 1)))},
                      coords={"seed": list(range(seeds)), "encoder": ["trained", "random"], "factor": FACTORS,
                              "step": [steps // 2, steps]})


def test_fig5_position_scale_not_rotation():
    cid = "fig5_dsprites_position_scale_not_rotation"
    assert run(cid, dsprites_cube()).verdict == HOLDS
    assert run(cid, dsprites_cube(orientation=0.3)).verdict == FAILS  # rotation learned too
    assert run(cid, dsprites_cube(pos_y_winner=0)).verdict == FAILS  # x and y in one latent
    assert run(cid, dsprites_cube(mig=(0.02, 0.03))).verdict == FAILS  # no better disentangled than at random
    assert run(cid, dsprites_cube().drop_vars("mig")).verdict == UNTESTED
    result = run(cid, dsprites_cube(steps=100))
    assert result.verdict == UNTESTED and "100 steps" in result.reason


# ---- the whole page ---------------------------------------------------------------------------------
def all_cubes():
    return {"fig2": [fig2_cube()], "sweep": sweep_cube(), "montecarlo": mc_cube(), "gradients": grad_cube(),
            "dsprites": dsprites_cube()}


def test_registry_covers_the_paper():
    assert len(CLAIMS) >= 15
    assert {c.group for c in CLAIMS.values()} == set(CUBE_GROUPS)
    sources = " ".join(c.source for c in CLAIMS.values())
    for where in ("Fig. 2", "Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6", "Fig. 7", "Table 3", "Sec. 3.1"):
        assert where in sources


def test_every_claim_holds_on_the_papers_cubes():
    results = evaluate_claims(all_cubes())
    assert [r.verdict for r in results if r.verdict != HOLDS] == []
    assert len({r.id for r in results}) == len(results) == len(CLAIMS)


def test_missing_stage_means_not_tested():
    results = evaluate_claims({"montecarlo": mc_cube()})
    for r in results:
        if r.section == "montecarlo":
            assert r.verdict == HOLDS
        else:
            assert (r.verdict, r.reason) == (UNTESTED, "stage not run")
    counts = verdict_counts(results)
    assert counts[UNTESTED] == len(CLAIMS) - len(MC_CLAIMS)
    json.dumps([r.to_dict() for r in results])


def test_sections_filter_and_unknown_names():
    results = evaluate_claims(all_cubes(), sections=["gradients"])
    assert {r.section for r in results} == {"gradients"} and len(results) == 3
    with pytest.raises(ValueError, match="unknown section"):
        evaluate_claims({}, sections=["nope"])
    with pytest.raises(ValueError, match="unknown cube group"):
        evaluate_claims({"figure2": []})


def test_cube_paths_are_read(tmp_path):
    from vbmi.results import write_cube

    cube = mc_cube()
    for name in cube.data_vars:
        cube[name].attrs = {"units": "1", "long_name": name, "description": name}
    path = write_cube(cube, tmp_path / "montecarlo.nc", kind="montecarlo")
    by_path = evaluate_claims({"montecarlo": str(path)}, sections=["montecarlo"])
    assert [r.verdict for r in by_path] == [r.verdict for r in evaluate_claims({"montecarlo": mc_cube()},
                                                                               sections=["montecarlo"])]


def test_html():
    cubes = all_cubes()
    cubes["dsprites"] = dsprites_cube(orientation=0.3)
    page = claims_html(evaluate_claims(cubes))
    for cid, c in CLAIMS.items():
        assert f'id="{cid}"' in page and f'href="{c.section}.html"' in page
    assert page.count("vbmi-fails") >= 2  # the badge in the counts line and the failing row
    block = section_html("dsprites", cubes)
    assert "does not hold" in block and "claims.html" in block and "fig5_dsprites" in block
    assert "fig2_" not in block
    assert "&lt;" not in section_html("training", {})  # claims are escaped, never broken markup


def test_clean_makes_evidence_json():
    out = clean({1.5: np.float32(np.inf), "a": [np.nan, np.int64(3), (True, None)], "b": np.array([1.23456])})
    assert out == {"1.5": "inf", "a": ["nan", 3, [True, None]], "b": [1.2346]}
    json.dumps(out, allow_nan=False)


def test_section_without_claims_has_no_block():
    assert section_html("about", {}) == ""


def test_write_json_is_strict_and_atomic(tmp_path):
    from vbmi.results import write_json

    path = write_json([{"a": 1.5}], tmp_path / "sub" / "claims.json")
    assert json.loads(path.read_text()) == [{"a": 1.5}]
    with pytest.raises(ValueError):
        write_json({"x": float("nan")}, path)
    assert json.loads(path.read_text()) == [{"a": 1.5}]  # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["claims.json"]  # no temporary left behind


def test_importing_claims_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, vbmi.claims; assert 'torch' not in sys.modules, 'vbmi.claims imported torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
