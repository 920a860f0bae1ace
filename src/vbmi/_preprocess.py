"""Per-coordinate marginal transforms for :func:`vbmi.estimate_mi`, learned on the training split only.

Mutual information is unchanged by any invertible map of each coordinate, so ``estimate_mi`` is free to
make every marginal well-behaved before a critic sees it. ``normal`` (the default) replaces each value
by its *normal score*: ``Phi^{-1}((rank - 1/2) / n)`` among the training split's values of that column
(ties share their mean rank). A value outside the training range is clipped to the extreme score, and
one between two training values is interpolated linearly, so

* outliers, heavy tails and units cannot matter: ``x * 1e200``, ``x * 1e-300`` and ``x`` with one
  entry set to ``1e6`` give the same (or, for the outlier, nearly the same) transformed values;
* the map is monotone and learned without looking at validation or test pairs.

``standardize`` subtracts the training median and divides by the training standard deviation after
scaling each column by its largest absolute value (so ``1e200`` cannot overflow); ``none`` passes the
data through. Constant columns map to zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from statistics import NormalDist

__all__ = ["PREPROCESS", "MarginalTransform", "fit_marginals"]

PREPROCESS = ("normal", "standardize", "none")
"""Valid ``preprocess=`` names of :func:`vbmi.estimate_mi` (and the baselines)."""

_NORM = NormalDist()


def _normal_ppf(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile, elementwise (``statistics.NormalDist``: no scipy needed in the core)."""
    return np.array([_NORM.inv_cdf(float(v)) for v in p.ravel()]).reshape(p.shape)


@dataclass(frozen=True)
class MarginalTransform:
    """A fitted per-column map ``[N, d] -> [N, d]``; see the module docstring for the kinds."""

    kind: str
    knots: tuple[np.ndarray, ...] = ()
    """``normal``: per column, the sorted unique training values ..."""
    scores: tuple[np.ndarray, ...] = ()
    """... and their normal scores (the map interpolates between them and clips outside)."""
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return a.copy()
        if self.kind == "standardize":
            return (a / self.scale[0] - self.shift) / self.scale[1]
        out = np.empty_like(a)
        for c, (k, s) in enumerate(zip(self.knots, self.scores)):
            out[:, c] = s[0] if k.size == 1 else np.interp(a[:, c], k, s)  # clips outside [k[0], k[-1]]
        return out


def _normal_column(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vals, inverse, counts = np.unique(col, return_inverse=True, return_counts=True)
    if vals.size == 1:
        return vals, np.zeros(1)
    upper = np.cumsum(counts)  # last rank of each unique value (1-based)
    mean_rank = upper - (counts - 1) / 2.0  # ties share their mean rank
    return vals, _normal_ppf((mean_rank - 0.5) / col.size)


def fit_marginals(a: np.ndarray, kind: str = "normal") -> MarginalTransform:
    """Fit the per-column transform ``kind`` on training rows ``a: [n, d]`` (float64, finite)."""
    if kind not in PREPROCESS:
        raise ValueError(f"unknown preprocess {kind!r}; valid: {', '.join(PREPROCESS)}")
    if kind == "none":
        return MarginalTransform("none")
    if kind == "standardize":
        amax = np.abs(a).max(axis=0)
        amax = np.where(amax > 0, amax, 1.0)
        b = a / amax  # now |b| <= 1: no overflow in the moments below
        sd = b.std(axis=0)
        return MarginalTransform("standardize", scale=np.stack([amax, np.where(sd > 0, sd, 1.0)]),
                                 shift=np.median(b, axis=0))
    cols = [_normal_column(a[:, c]) for c in range(a.shape[1])]
    return MarginalTransform("normal", knots=tuple(k for k, _ in cols), scores=tuple(s for _, s in cols))
