"""How the report draws and prints estimators: one colour per estimator, whole names, fixed formats.

Every figure of the report (Figs. 2, 3, 4, 6, 7) colours an estimator through :func:`estimator_color`,
so I_NWJ is the same red on every page. Estimators are keyed as the result cubes label them: the
bound's registry name (``nwj``, ``nce``, ...; see ``vbmi.bounds.BOUNDS``), with ``_<alpha>`` appended
for bounds that take an alpha (``interpolated_0.5``, ``interpolated_linear_0.5``; the form of
``TrainSpec.label``). ``interpolated(0.5)`` is accepted too.

The mapping is categorical: each bound family has its own hue; the alpha-indexed families
(I_alpha, the linear and the product interpolation) take a shade of their hue by alpha (dark at
alpha = 0, the I_NWJ/TUBA end; light at alpha = 1, the I_NCE end), so any alpha grid gets colours
without a second mapping.

Table helpers print learning rates in scientific notation, numbers with one fixed number of decimals,
a diverged run as ``diverged at step N`` instead of its number, and summarise (never silently cut) a
table that is too long to read. :func:`mark_clipped` marks the values a plot's y-limits leave out.

Torch-free: imports numpy, pandas and (inside the drawing helpers) matplotlib only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "FAMILY_ORDER",
    "ALPHA_FAMILIES",
    "TRUE_MI_COLOR",
    "split_key",
    "estimator_key",
    "estimator_color",
    "estimator_palette",
    "estimator_name",
    "estimator_order",
    "fmt_lr",
    "fmt_num",
    "fmt_cell",
    "format_frame",
    "summarise_long",
    "mark_clipped",
    "clipped_legend_handles",
]

#: Bound families in the order figures and tables list them (the paper's order of introduction).
FAMILY_ORDER: tuple[str, ...] = (
    "ba", "tuba", "nwj", "js", "dv", "mine", "nce", "interpolated", "interpolated_linear", "interpolated_product",
    "smile", "tnce", "nwj_reparam", "loo_upper", "variational_upper", "tc_upper",
)

#: Families whose estimators are indexed by alpha (they take a shade of their hue by alpha).
ALPHA_FAMILIES: tuple[str, ...] = ("interpolated", "interpolated_linear", "interpolated_product")

#: The ground truth (true MI staircase, analytic gradients) is drawn in black in every figure.
TRUE_MI_COLOR = "#000000"

# One hue per family (matplotlib's tab10/tab20 colours; the known-p(y|x) variants take a dark shade of
# the bound they restructure: tnce of NCE's blue, nwj_reparam of NWJ's red).
_FIXED: dict[str, str] = {
    "ba": "#5254a3",
    "tuba": "#8c564b",
    "nwj": "#d62728",
    "js": "#ff7f0e",
    "dv": "#bcbd22",
    "mine": "#e377c2",
    "nce": "#1f77b4",
    "smile": "#17becf",
    "tnce": "#1b3f73",
    "nwj_reparam": "#7f1d1d",
    "loo_upper": "#7f7f7f",
    "variational_upper": "#4d4d4d",
    "tc_upper": "#a6a6a6",
}
# Alpha families: (colour at alpha = 0, colour at alpha = 1), interpolated linearly in RGB.
_RAMPS: dict[str, tuple[str, str]] = {
    "interpolated": ("#3f007d", "#b4a7e0"),  # purples
    "interpolated_linear": ("#00441b", "#8fd19e"),  # greens
    "interpolated_product": ("#5c3a00", "#e0b96a"),  # ochres
}

_NAMES: dict[str, str] = {
    "ba": "I_BA",
    "tuba": "I_TUBA",
    "nwj": "I_NWJ",
    "js": "I_JS",
    "dv": "I_DV",
    "mine": "I_MINE",
    "nce": "I_NCE",
    "interpolated": "I_α",
    "interpolated_linear": "linear interpolation",
    "interpolated_product": "product interpolation",
    "smile": "SMILE (not in the paper)",
    "tnce": "I_NCE, known p(y|x) (Eq. 12)",
    "nwj_reparam": "I_NWJ, known p(y|x) (Eq. 14)",
    "loo_upper": "upper bound (Eq. 13)",
    "variational_upper": "variational upper bound (Eq. 1)",
    "tc_upper": "TC upper bound",
}
_MATH: dict[str, str] = {
    "ba": "$I_{BA}$",
    "tuba": "$I_{TUBA}$",
    "nwj": "$I_{NWJ}$",
    "js": "$I_{JS}$",
    "dv": "$I_{DV}$",
    "mine": "$I_{MINE}$",
    "nce": "$I_{NCE}$",
    "interpolated": r"$I_{\alpha}$",
}

_PAREN = re.compile(r"^(?P<name>[a-z_]+)\((?P<alpha>[^)]+)\)$")


def _valid() -> str:
    return ", ".join(FAMILY_ORDER)


def split_key(key: str) -> tuple[str, float | None]:
    """``"interpolated_0.5"`` -> ``("interpolated", 0.5)``; ``"nce"`` -> ``("nce", None)``.

    Accepts ``name(alpha)`` too. Unknown names raise ``ValueError`` listing the valid families.
    """
    key = str(key).strip()
    m = _PAREN.match(key)
    if m:
        name, alpha = m["name"], float(m["alpha"])
    elif key in FAMILY_ORDER:
        name, alpha = key, None
    else:
        head, _, tail = key.rpartition("_")
        try:
            name, alpha = head, float(tail)
        except ValueError:
            name, alpha = key, None
    if name not in FAMILY_ORDER:
        raise ValueError(f"unknown estimator {key!r}; valid bound names: {_valid()}")
    if (alpha is not None) != (name in ALPHA_FAMILIES):
        raise ValueError(f"estimator {key!r}: {name!r} {'needs' if name in ALPHA_FAMILIES else 'takes no'} alpha")
    if alpha is not None and not (0.0 <= alpha <= 1.0):
        raise ValueError(f"estimator {key!r}: alpha must lie in [0, 1]")
    return name, alpha


def estimator_key(name: str, alpha: float | None = None) -> str:
    """The cube label of a bound and alpha: ``estimator_key("interpolated", 0.5) == "interpolated_0.5"``.

    A NaN alpha (how the cubes store "no alpha") counts as None.
    """
    if alpha is not None and isinstance(alpha, float | np.floating) and math.isnan(alpha):
        alpha = None
    key = str(name) if alpha is None else f"{name}_{float(alpha):g}"
    split_key(key)  # validates
    return key


def _mix(c0: str, c1: str, t: float) -> str:
    a = np.array([int(c0[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    b = np.array([int(c1[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    r = np.rint(a + (b - a) * t).astype(int)
    return "#" + "".join(f"{v:02x}" for v in r)


def estimator_color(key: str) -> str:
    """The one colour of an estimator (hex string), the same in every figure."""
    name, alpha = split_key(key)
    if name in _RAMPS:
        return _mix(*_RAMPS[name], float(alpha))
    return _FIXED[name]


def estimator_palette(keys: Iterable[str]) -> dict[str, str]:
    """``{key: colour}`` for seaborn's ``palette=`` (keys as they appear in the data)."""
    return {k: estimator_color(k) for k in keys}


def estimator_name(key: str, *, math: bool = False) -> str:
    """The whole, readable name: ``I_NWJ``, ``I_α (α=0.5)``, ``linear interpolation (α=0.5)``.

    ``math=True`` gives matplotlib mathtext for the paper's symbols (``$I_{NWJ}$``).
    """
    name, alpha = split_key(key)
    base = _MATH.get(name, _NAMES[name]) if math else _NAMES[name]
    return base if alpha is None else f"{base} (α={alpha:g})"


def estimator_order(keys: Iterable[str]) -> list[str]:
    """Keys sorted as figures list them: by family (:data:`FAMILY_ORDER`), then by alpha; duplicates dropped."""
    keys = list(dict.fromkeys(str(k) for k in keys))

    def rank(k: str) -> tuple[int, float]:
        name, alpha = split_key(k)
        return FAMILY_ORDER.index(name), -1.0 if alpha is None else alpha

    return sorted(keys, key=rank)


# --------------------------------------------------------------------------------------------------
# Numbers in tables
# --------------------------------------------------------------------------------------------------
def fmt_lr(lr: float) -> str:
    """A learning rate in scientific notation: ``0.001 -> "1e-3"``, ``0.0005 -> "5e-4"``, ``3.2e-4 -> "3.2e-4"``."""
    lr = float(lr)
    if not math.isfinite(lr):
        return str(lr)
    if lr == 0:
        return "0"
    mant, exp = f"{lr:.2e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def fmt_num(value: float, decimals: int = 2, *, big: float = 1e4) -> str:
    """A number with ``decimals`` fixed decimals; |value| >= ``big`` in scientific notation; NaN as ``n/a``."""
    if value is None:
        return "n/a"
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= big:
        return f"{value:.{max(decimals, 1)}e}"
    return f"{value:.{decimals}f}"


def fmt_cell(value: float, diverged_step: int | None = None, decimals: int = 2) -> str:
    """``fmt_num(value)``, or ``diverged at step N`` when the run diverged (``diverged_step >= 0``)."""
    if diverged_step is not None and not (isinstance(diverged_step, float) and math.isnan(diverged_step)):
        if int(diverged_step) >= 0:
            return f"diverged at step {int(diverged_step)}"
    return fmt_num(value, decimals)


def format_frame(df: pd.DataFrame, decimals: int = 2, *, lr_columns: Sequence[str] = ("lr",),
                 int_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with every float column as text with ``decimals`` decimals, learning rates in
    scientific notation, integer-valued columns without decimals, and the index left as it is."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if col in lr_columns:
            out[col] = [fmt_lr(v) if pd.notna(v) else "n/a" for v in s]
        elif col in int_columns or pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
            out[col] = [str(int(v)) if pd.notna(v) else "n/a" for v in s]
        elif pd.api.types.is_float_dtype(s):
            out[col] = [fmt_num(v, decimals) for v in s]
    return out


def summarise_long(df: pd.DataFrame, max_rows: int = 30, *, what: str = "rows") -> tuple[pd.DataFrame, str | None]:
    """``(df, None)`` if it has at most ``max_rows`` rows; otherwise a per-column summary (count, min,
    median, max of every numeric column) and a sentence saying that the table was summarised."""
    if len(df) <= max_rows:
        return df, None
    num = df.select_dtypes("number")
    summary = pd.DataFrame({"count": num.count(), "min": num.min(), "median": num.median(), "max": num.max()})
    note = (f"The table has {len(df)} {what}, too many to read; shown summarised column by column "
            f"(count, min, median, max). The full table is in the result cube.")
    return summary, note


# --------------------------------------------------------------------------------------------------
# Values outside a plot's range
# --------------------------------------------------------------------------------------------------
def mark_clipped(ax, x, y, *, color: str = "black", ylim: tuple[float, float] | None = None,
                 label_counts: bool = True) -> tuple[int, int]:
    """Mark the values of one series that lie outside the axes' y-limits (call after setting them).

    Draws a triangle at the top (▲) or bottom (▼) edge, at the first x where the series leaves the
    range, with the number of such points beside it, so a run that explodes is never silently cut.
    Non-finite values are not counted (a diverged run is marked where it diverged, not here).
    Returns ``(n_above, n_below)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    lo, hi = ylim if ylim is not None else ax.get_ylim()
    finite = np.isfinite(y)
    above = finite & (y > hi)
    below = finite & (y < lo)
    span = hi - lo
    for mask, edge, marker, off in ((above, hi, "^", -0.04), (below, lo, "v", 0.04)):
        n = int(mask.sum())
        if not n:
            continue
        x0 = x[np.argmax(mask)]
        ypos = edge + off * span
        ax.plot([x0], [ypos], marker=marker, color=color, markersize=7, markeredgecolor="black",
                markeredgewidth=0.5, linestyle="none", zorder=5, clip_on=False)
        if label_counts:
            ax.annotate(str(n), (x0, ypos), xytext=(5, 0), textcoords="offset points", fontsize=7, color=color,
                        va="center", ha="left", zorder=5, annotation_clip=False)
    return int(above.sum()), int(below.sum())


def clipped_legend_handles() -> list:
    """Legend entries explaining :func:`mark_clipped`'s markers (for ``fig.legend(handles=...)``)."""
    from matplotlib.lines import Line2D

    style = dict(color="grey", markeredgecolor="black", markeredgewidth=0.5, linestyle="none", markersize=7)
    return [Line2D([], [], marker="^", label="run above the plotted range (n = steps)", **style),
            Line2D([], [], marker="v", label="run below the plotted range (n = steps)", **style)]
