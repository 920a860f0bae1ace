"""Run plans and summaries of the sweep (Table 3 protocol, job split, Fig. 2 reshape)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vbmi.experiments.sweep import (
    PAPER_TABLE3,
    best_per_cell,
    fig2_dataset,
    fig2_parts,
    level_summary,
    sweep_parts,
    sweep_specs,
)
from vbmi.experiments.training import RunSpec, TrainResult, result_to_dataset

SWEEP = dict(
    bounds=[{"bound": "interpolated", "alpha": 0.5}, {"bound": "nce"}],
    interpolation_bounds=[{"bound": "interpolated_linear", "alpha": 0.5}],
    known_bounds=["tnce", "nwj_reparam"], datasets=["gaussian", "cubic"],
    grid=dict(lr=[1e-3, 1e-4], critic=["separable", "joint"], layers=[1, 2], hidden=[16], activation=["relu"],
              batch_size=[8, 64]),
    n_configs=None, joint_max_batch_size=8, embed_dim=4, seeds=1, max_members_per_job=7, max_cost_per_job=1e9,
)


def test_sweep_plan_is_deterministic_and_parts_partition_it():
    specs = sweep_specs(SWEEP, 0)
    # 3 points x (2 lr x 2 layers) ... : separable 2 x 2 x 2 = 8, joint (batch 8 only) 2 x 2 = 4 -> 12 points
    assert len(specs) == (2 * 2 + 1) * 12 + (1 * 2 + 2 * 2)
    assert not any(s.critic == "joint" and s.batch_size > 8 for s in specs)
    parts = sweep_parts(SWEEP, 0)
    flat = sorted(i for p in parts for i in p)
    assert flat == list(range(len(specs)))
    assert max(len(p) for p in parts) <= 7
    assert sweep_specs(SWEEP, 0) == specs and sweep_parts(SWEEP, 0) == parts


def test_random_search_draws_the_same_points_for_every_bound():
    cfg = dict(SWEEP, n_configs=5)
    specs = [s for s in sweep_specs(cfg, 3) if s.critic != "known"]
    by_bound = {}
    for s in specs:
        by_bound.setdefault((s.bound, s.dataset), []).append((s.lr, s.critic, s.layers, s.batch_size))
    assert all(len(v) == 5 for v in by_bound.values())
    assert len({tuple(v) for v in by_bound.values()}) == 1
    assert sweep_specs(dict(SWEEP, n_configs=5), 4) != sweep_specs(cfg, 3)


def _fake_result(estimates: np.ndarray, specs: list[RunSpec], spl: int) -> TrainResult:
    e, s = estimates.shape
    return TrainResult(specs=specs, true_mi=np.repeat([2.0, 4.0], spl), estimate=estimates,
                       max_abs_score=np.zeros((e, s), np.float32), diverged_step=np.full(e, -1),
                       overflow_steps=np.zeros(e, int), steps_per_level=spl, levels=(2.0, 4.0), device="cpu")


def test_level_summary_and_winner_protocol():
    spl = 4
    specs = [RunSpec(bound="nce", lr=lr) for lr in (1e-3, 1e-4, 5e-4)]
    est = np.array([[0, 0, 1.8, 1.8, 0, 0, 3.0, 3.0],   # closest at 2 nats
                    [0, 0, 1.0, 1.2, 0, 0, 3.9, 4.3],   # closest at 4 nats (mean 4.1 vs 3.0)
                    [9, 9, 9.0, 9.0, 9, 9, 9.0, 9.0]])  # diverges in level 2 -> excluded there
    result = _fake_result(est.astype(float), specs, spl)
    result.diverged_step[2] = 5
    ds = result_to_dataset(result)
    summ = level_summary(ds, tail_steps=2)
    np.testing.assert_allclose(summ.level_mean.sel(level=4.0).values, [3.0, 4.1, 9.0])
    np.testing.assert_allclose(summ.level_std.sel(level=2.0).values[1], np.std([1.0, 1.2], ddof=1))
    assert summ.level_diverged.sel(level=4.0).values.tolist() == [0, 0, 1]
    best = best_per_cell(ds.merge(summ))
    assert best.set_index("level")["lr"].to_dict() == {2.0: 1e-3, 4.0: 1e-4}


def test_fig2_dataset_reshapes_to_paper_dims():
    cfg = dict(bounds=[{"bound": "nce"}, {"bound": "interpolated", "alpha": 0.01}], critics=["separable", "joint"],
               datasets=["gaussian"], seeds=2, batch_size=8, hidden=8, layers=1, embed_dim=4, activation="relu",
               lr=1e-3, smile_tau=5.0)
    parts = fig2_parts(cfg, 0)
    assert set(parts) == {"separable_gaussian", "joint_gaussian"}
    specs = parts["joint_gaussian"]
    est = np.arange(len(specs) * 8, dtype=float).reshape(len(specs), 8)
    cube = fig2_dataset(result_to_dataset(_fake_result(est, specs, 4)))
    assert dict(cube.sizes) == {"bound": 2, "critic": 1, "dataset": 1, "seed": 2, "step": 8}
    i = next(k for k, s in enumerate(specs) if s.alpha == 0.01 and s.seed == 1)
    np.testing.assert_array_equal(cube.estimate.sel(bound="interpolated_0.01", critic="joint", seed=1).squeeze(), est[i])
    assert cube.alpha.sel(bound="interpolated_0.01").item() == 0.01
    assert cube.bound_name.sel(bound="interpolated_0.01").item() == "interpolated"
    assert isinstance(cube, xr.Dataset)


def test_paper_table3_transcription():
    # Spot checks against the paper's Table 3 text; NCE's best exceeds log 64 (hence larger batches).
    assert PAPER_TABLE3[("gaussian", "nce")][-1] == 6.0 > np.log(64)
    assert PAPER_TABLE3[("gaussian", "nwj_reparam")] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert PAPER_TABLE3[("cubic", "interpolated")] == pytest.approx([1.7, 3.6, 5.4, 6.9, 8.2])


# --------------------------------------------------------------------------------------------------
# The default scale's focused design (config.yaml) and the per-bound batch sizes behind it
# --------------------------------------------------------------------------------------------------
def _scale(name: str | None) -> dict:
    """config.yaml with a scale file layered on top (nested mappings merged, as Snakemake does)."""
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parents[2]

    def merge(a: dict, b: dict) -> dict:
        for k, v in b.items():
            a[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    cfg = yaml.safe_load((root / "config.yaml").read_text())
    return merge(cfg, yaml.safe_load((root / "workflow" / "scales" / f"{name}.yaml").read_text())) if name else cfg


def test_default_sweep_trains_the_configurations_that_decide_table3():
    from vbmi.experiments.plan import sweep_specs as plan_specs

    specs = plan_specs(_scale(None)["sweep"], 0)
    batches: dict[tuple, set] = {}
    for s in specs:
        batches.setdefault((s.label, s.dataset, s.critic), set()).add(s.batch_size)
    learned = [s for s in specs if s.critic != "known"]
    # the notebook's separable 2 x 256 critic, embedding 32, Adam 5e-4 (NWJ 1e-4), with Tanh for every bound
    assert {(s.critic, s.layers, s.hidden, s.activation, s.embed_dim) for s in learned} == {
        ("separable", 2, 256, "tanh", 32)}
    assert {s.lr for s in learned if s.bound != "nwj"} == {5e-4}
    for ds in ("gaussian", "cubic"):
        assert batches[("nce", ds, "separable")] == {64, 512}  # log 512 = 6.2: NCE's 10-nat cell
        assert batches[("interpolated_0.01", ds, "separable")] == {64, 512}  # the high-MI winner
        assert batches[("js", ds, "separable")] == {64, 512}
        assert batches[("nwj", ds, "separable")] == {64, 512}
        assert {s.lr for s in specs if s.bound == "nwj" and s.dataset == ds} == {1e-4}
    # Fig. 7: I_alpha(0.5) and the other interpolations on its points, Gaussian only
    for label in ("interpolated_0.5", "interpolated_linear_0.5", "interpolated_product_0.5"):
        assert batches[(label, "gaussian", "separable")] == {64, 512}
        assert (label, "cubic", "separable") not in batches
    assert batches[("tnce", "gaussian", "known")] == {64, 128}  # the paper's TNCE row matches K = 128
    assert batches[("nwj_reparam", "gaussian", "known")] == {64}
    assert len(specs) == 25 and len(set(specs)) == 25


def test_a_bound_entry_can_name_its_datasets():
    from vbmi.experiments.plan import fig2_specs, sweep_specs as plan_specs

    cfg = _scale(None)["sweep"]
    one = {**cfg, "bounds": [{"bound": "nce"}, {"bound": "interpolated", "alpha": 0.5, "datasets": ["cubic"]}]}
    got = {(s.bound, s.dataset) for s in plan_specs(one, 0) if s.critic != "known"}
    assert ("interpolated", "cubic") in got and ("interpolated", "gaussian") not in got
    assert {("nce", "gaussian"), ("nce", "cubic")} <= got
    stray = {**cfg, "datasets": ["gaussian"], "bounds": [{"bound": "nce", "datasets": ["cubic"]}]}
    with pytest.raises(ValueError, match="subset of the stage's datasets"):
        plan_specs(stray, 0)
    fig2 = {**_scale(None)["training"], "bounds": [{"bound": "js", "datasets": ["gaussian"]}]}
    assert {s.dataset for s in fig2_specs(fig2, 0)} == {"gaussian"}


def test_grid_by_bound_null_or_absent_keeps_the_grid():
    from vbmi.experiments.plan import sweep_specs as plan_specs

    nulls = {b: None for b in ("nce", "interpolated", "js", "nwj", "interpolated_linear", "interpolated_product",
                               "tnce", "nwj_reparam")}
    assert plan_specs(dict(SWEEP, grid_by_bound=nulls), 0) == plan_specs(SWEEP, 0)
    cfg = dict(SWEEP, n_configs=5, grid_by_bound=nulls)
    assert plan_specs(cfg, 3) == plan_specs(dict(SWEEP, n_configs=5), 3)  # the paper's random search unchanged


def test_grid_by_bound_replaces_grid_keys_and_drops_large_joint():
    from vbmi.experiments.plan import sweep_specs as plan_specs

    cfg = dict(SWEEP, grid_by_bound={"nce": {"batch_size": [8, 16]}, "tnce": {"batch_size": [32]},
                                     "nwj_reparam": {"lr": [0.5]}, "interpolated_linear": {"lr": [0.25]}})
    specs = plan_specs(cfg, 0)
    nce = [s for s in specs if s.bound == "nce" and s.dataset == "gaussian"]
    assert {s.batch_size for s in nce if s.critic == "separable"} == {8, 16}
    assert {s.batch_size for s in nce if s.critic == "joint"} == {8}  # joint_max_batch_size = 8
    assert len(nce) == len(set(nce)) == 2 * 2 * 2 + 2 * 2  # separable: lr x layers x K; joint: lr x layers
    assert {s.batch_size for s in specs if s.bound == "tnce"} == {32}
    assert {(s.lr, s.batch_size) for s in specs if s.bound == "nwj_reparam"} == {(0.5, 8), (0.5, 64)}
    lin = [s for s in specs if s.bound == "interpolated_linear"]
    assert {s.lr for s in lin} == {0.25} and len(lin) == 2 * 2 + 2  # lr collapses to one value
    with pytest.raises(ValueError, match="unknown grid keys"):
        plan_specs(dict(SWEEP, grid_by_bound={"nce": {"width": [3]}}), 0)
    # bounds not named keep the grid's batch sizes
    base = [s for s in plan_specs(SWEEP, 0) if s.bound == "interpolated"]
    assert [s for s in specs if s.bound == "interpolated"] == base


def test_fig2_joint_critics_get_their_own_schedule():
    from vbmi.experiments.plan import fig2_part_config, fig2_parts, fig2_steps_per_level

    cfg = _scale(None)["training"]
    assert cfg["steps_per_level"] == 4000  # separable critics: the notebook's full schedule
    assert fig2_part_config(cfg, "separable_cubic")["steps_per_level"] == 4000
    assert fig2_part_config(cfg, "joint_gaussian")["steps_per_level"] == cfg["joint_steps_per_level"] < 4000
    assert fig2_steps_per_level(dict(cfg, joint_steps_per_level=None), "joint") == 4000
    assert set(fig2_parts(cfg, 0)) == {f"{c}_{d}" for c in ("separable", "joint") for d in ("gaussian", "cubic")}
    with pytest.raises(ValueError, match="part"):
        fig2_part_config(cfg, "concat_cubic")
    paper = _scale("paper")
    assert fig2_part_config(paper["training"], "joint_cubic")["steps_per_level"] == 4000


def test_tiny_scale_stays_tiny_and_paper_search_is_unchanged():
    from vbmi.experiments.plan import fig2_part_config, fig2_specs, run_cost_ms, sweep_specs as plan_specs

    tiny = _scale("tiny")
    fig2 = sum(run_cost_ms(s) * 5 * fig2_part_config(tiny["training"], f"{s.critic}_{s.dataset}")["steps_per_level"]
               for s in fig2_specs(tiny["training"], 0))
    sweep = plan_specs(tiny["sweep"], 0)
    cost_s = (fig2 + sum(run_cost_ms(s) for s in sweep) * 5 * tiny["sweep"]["steps_per_level"]) / 1000
    assert cost_s < 10  # estimated CPU seconds for all of tiny's training
    assert max(s.batch_size for s in sweep) == 16 and {s.batch_size for s in sweep if s.bound == "nce"} == {8, 16}
    assert {s.lr for s in sweep if s.bound == "nwj"} == {0.001, 0.0005}
    paper = _scale("paper")["sweep"]
    assert all(v is None for v in paper["grid_by_bound"].values())
    specs = plan_specs(paper, 0)
    assert len(specs) == 32 * 14 + 4 + 12  # 32 random points x 14 bound/task rows + TNCE 4 K + Eq. 14 3 lr x 4 K
