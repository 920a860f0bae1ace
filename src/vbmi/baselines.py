"""Non-neural MI estimators beside ``estimate_mi``'s critic: KSG and the linear-Gaussian (CCA) estimator.

* :func:`ksg_mi`: Kraskov, Stoegbauer & Grassberger (2004), estimator 1:
  ``I = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >`` where, for each point, ``eps`` is the max-norm
  distance to its k-th neighbour in the joint space and ``n_x`` (``n_y``) counts the other points
  strictly closer than ``eps`` in the x (y) space. Neighbour searches use ``scipy.spatial.cKDTree``.
  Its interval is ``value +/- 1.96 * sd(per-point terms) / sqrt(N)`` (approximate: the terms are not
  independent).
* :func:`cca_mi`: ``-1/2 sum_i log(1 - r_i^2)`` over the canonical correlations ``r_i`` of x and y, the
  exact MI if (x, y) is jointly Gaussian. Its interval is a percentile bootstrap (``n_boot`` resamples).

Both take ``preprocess`` like ``estimate_mi`` (``normal``: normal scores per coordinate, which turns CCA
into the Gaussian-copula estimator; ``standardize``; ``none``). They return an :class:`vbmi.MIEstimate`
through ``estimate_mi(..., method="ksg" | "cca")``; here they return ``(value, lo, hi)``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

__all__ = ["ksg_mi", "cca_mi", "canonical_correlations"]


def ksg_mi(x: np.ndarray, y: np.ndarray, k: int = 3) -> tuple[float, float, float]:
    """KSG estimator 1 of I(X; Y) in nats for ``x: [N, dx]``, ``y: [N, dy]``; returns (value, lo, hi)."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, N) = [1, {n}), got {k}")
    xy = np.hstack([x, y])
    # k+1: the nearest "neighbour" of each point is itself (distance 0).
    eps = cKDTree(xy).query(xy, k=k + 1, p=np.inf)[0][:, -1]  # [N]
    # Strictly closer than eps: shrink the radius by one ulp; subtract the point itself.
    r = np.nextafter(eps, 0)
    nx = cKDTree(x).query_ball_point(x, r, p=np.inf, return_length=True) - 1  # [N]
    ny = cKDTree(y).query_ball_point(y, r, p=np.inf, return_length=True) - 1
    terms = digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)  # [N]
    value = float(terms.mean())
    half = 1.96 * float(terms.std(ddof=1)) / np.sqrt(n)
    return value, value - half, value + half


def canonical_correlations(x: np.ndarray, y: np.ndarray, ridge: float = 1e-9) -> np.ndarray:
    """Canonical correlations of ``x: [N, dx]`` and ``y: [N, dy]`` (descending, clipped to [0, 1 - ridge]).

    Whitens each side with the eigendecomposition of its covariance (directions with variance below
    1e-12 of the largest are dropped, so constant or duplicated columns are harmless).
    """
    xc, yc = x - x.mean(0), y - y.mean(0)

    def whitener(c: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(c)
        keep = w > max(w.max(), 0.0) * 1e-12
        return v[:, keep] / np.sqrt(w[keep])  # [d, r]

    if not xc.any() or not yc.any():
        return np.zeros(0)
    n = x.shape[0]
    wx, wy = whitener(xc.T @ xc / n), whitener(yc.T @ yc / n)
    r = np.linalg.svd(wx.T @ (xc.T @ yc / n) @ wy, compute_uv=False)
    return np.clip(r, 0.0, 1.0 - ridge)


def cca_mi(x: np.ndarray, y: np.ndarray, *, n_boot: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Linear-Gaussian MI ``-1/2 sum log(1 - r_i^2)``; returns (value, lo, hi).

    ``lo, hi``: the 95% *basic* bootstrap interval ``[2 v - q_97.5, 2 v - q_2.5]`` over ``n_boot``
    resamples of the pairs (the plug-in estimate is biased upward in high dimensions, and the basic
    interval moves against that bias where the percentile interval would move with it).
    """
    mi = lambda a, b: float(-0.5 * np.log1p(-canonical_correlations(a, b) ** 2).sum())  # noqa: E731
    value = mi(x, y)
    if not n_boot:
        return value, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    boots = [mi(x[i], y[i]) for i in (rng.integers(0, n, n) for _ in range(n_boot))]
    q_lo, q_hi = np.percentile(boots, [2.5, 97.5])
    return value, float(2 * value - q_hi), float(2 * value - q_lo)
