"""vbmi.plotting: one estimator -> colour mapping, whole names, table formats, clipped-value markers."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vbmi import plotting  # noqa: E402
from vbmi.bounds import BOUNDS  # noqa: E402


def _keys_of_registry() -> list[str]:
    return [plotting.estimator_key(n, 0.5 if b.takes_alpha else None) for n, b in BOUNDS.items()]


def test_every_registered_bound_has_a_colour_a_name_and_a_place_in_the_order() -> None:
    keys = _keys_of_registry()
    assert set(plotting.FAMILY_ORDER) >= set(BOUNDS), set(BOUNDS) - set(plotting.FAMILY_ORDER)
    for k in keys:
        assert plotting.estimator_color(k).startswith("#") and len(plotting.estimator_color(k)) == 7
        assert plotting.estimator_name(k)
    assert plotting.estimator_order(keys[::-1]) == plotting.estimator_order(keys)


def test_families_get_distinct_colours() -> None:
    colours = [plotting.estimator_color(k) for k in _keys_of_registry()]
    assert len(set(colours)) == len(colours)


def test_alpha_shades_are_distinct_and_stay_in_their_family() -> None:
    alphas = [0.0, 0.01, 0.1, 0.5, 0.99, 1.0]
    for fam in plotting.ALPHA_FAMILIES:
        cols = [plotting.estimator_color(plotting.estimator_key(fam, a)) for a in alphas]
        assert len(set(cols)) == len(cols), (fam, cols)
    # same alpha, different family: different colours
    same = {plotting.estimator_color(plotting.estimator_key(f, 0.5)) for f in plotting.ALPHA_FAMILIES}
    assert len(same) == len(plotting.ALPHA_FAMILIES)


def test_the_mapping_is_the_same_whatever_else_is_plotted() -> None:
    a = plotting.estimator_palette(["nwj", "nce"])
    b = plotting.estimator_palette(["interpolated_0.5", "nce", "js", "nwj"])
    assert a["nwj"] == b["nwj"] and a["nce"] == b["nce"]


@pytest.mark.parametrize(
    "key, expected",
    [
        ("nce", ("nce", None)),
        ("interpolated_0.5", ("interpolated", 0.5)),
        ("interpolated(0.01)", ("interpolated", 0.01)),
        ("interpolated_linear_0.99", ("interpolated_linear", 0.99)),
        ("interpolated_product_1", ("interpolated_product", 1.0)),
        ("nwj_reparam", ("nwj_reparam", None)),
    ],
)
def test_split_key(key: str, expected: tuple) -> None:
    assert plotting.split_key(key) == expected


@pytest.mark.parametrize("bad", ["separ", "interpolated", "nce_0.5", "interpolated_1.5", "interp"])
def test_bad_keys_raise_with_the_valid_names(bad: str) -> None:
    with pytest.raises(ValueError, match="alpha|valid bound names"):
        plotting.split_key(bad)


def test_estimator_key_matches_the_cube_labels_and_treats_nan_alpha_as_none() -> None:
    assert plotting.estimator_key("interpolated", 0.01) == "interpolated_0.01"
    assert plotting.estimator_key("nce", float("nan")) == "nce"
    assert plotting.estimator_key("nce", np.float64("nan")) == "nce"


def test_names_are_whole() -> None:
    assert plotting.estimator_name("interpolated_linear_0.5") == "linear interpolation (α=0.5)"
    assert plotting.estimator_name("interpolated_0.01", math=True) == r"$I_{\alpha}$ (α=0.01)"
    assert "not in the paper" in plotting.estimator_name("smile")


def test_estimator_order_follows_the_family_order_then_alpha() -> None:
    keys = ["smile", "interpolated_0.99", "nce", "interpolated_0.01", "nwj", "tuba"]
    assert plotting.estimator_order(keys) == ["tuba", "nwj", "nce", "interpolated_0.01", "interpolated_0.99", "smile"]


@pytest.mark.parametrize("lr, text", [(1e-3, "1e-3"), (5e-4, "5e-4"), (3.2e-4, "3.2e-4"), (0.01, "1e-2"), (1.0, "1e0")])
def test_learning_rates_in_scientific_notation(lr: float, text: str) -> None:
    assert plotting.fmt_lr(lr) == text


def test_numbers_keep_their_decimals_and_huge_values_are_not_disguised() -> None:
    assert plotting.fmt_num(2.0) == "2.00"
    assert plotting.fmt_num(2.345, 1) == "2.3"
    assert plotting.fmt_num(float("nan")) == "n/a"
    assert plotting.fmt_num(-3.4e7) == "-3.40e+07"


def test_diverged_cells_say_so() -> None:
    assert plotting.fmt_cell(1.234, -1) == "1.23"
    assert plotting.fmt_cell(1.234, 17) == "diverged at step 17"
    assert plotting.fmt_cell(-3.4e7, 0) == "diverged at step 0"
    assert plotting.fmt_cell(1.0, None) == "1.00"


def test_format_frame() -> None:
    df = pd.DataFrame({"lr": [1e-3, 5e-4], "mean": [1.0, 2.345], "batch_size": [64, 128]})
    out = plotting.format_frame(df, 2)
    assert out["lr"].tolist() == ["1e-3", "5e-4"]
    assert out["mean"].tolist() == ["1.00", "2.35"]
    assert out["batch_size"].tolist() == ["64", "128"]


def test_long_tables_are_summarised_and_say_so() -> None:
    short = pd.DataFrame({"a": range(5)})
    same, note = plotting.summarise_long(short, 10)
    assert note is None and same is short
    long = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) * 2, "name": ["x"] * 100})
    summary, note = plotting.summarise_long(long, 10)
    assert "100 rows" in note and "summarised" in note
    assert summary.loc["a", "max"] == 99 and summary.loc["b", "median"] == pytest.approx(99.0)
    assert len(summary) == 2


def test_mark_clipped_counts_and_draws_at_the_edges() -> None:
    fig, ax = plt.subplots()
    x = np.arange(10.0)
    y = np.array([1, 2, 50, 60, 3, -40, np.nan, 4, 5, 6], dtype=float)
    ax.plot(x, y)
    ax.set_ylim(-1, 12)
    n_lines = len(ax.lines)
    above, below = plotting.mark_clipped(ax, x, y, color="#ff0000")
    assert (above, below) == (2, 1)
    markers = ax.lines[n_lines:]
    assert [m.get_marker() for m in markers] == ["^", "v"]
    assert markers[0].get_xdata()[0] == 2 and markers[1].get_xdata()[0] == 5
    assert [t.get_text() for t in ax.texts] == ["2", "1"]
    assert plotting.mark_clipped(ax, x, np.clip(np.nan_to_num(y), 0, 10)) == (0, 0)
    assert len(plotting.clipped_legend_handles()) == 2
    plt.close(fig)


def test_plotting_does_not_import_torch() -> None:
    code = "import sys, vbmi.plotting; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
