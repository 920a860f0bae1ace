"""KSG and CCA baselines: right on Gaussians, KSG's neighbour counts match a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import digamma

from vbmi import estimate_mi
from vbmi.baselines import canonical_correlations, cca_mi, ksg_mi
from vbmi.tasks import TASKS


def _ksg_brute(x, y, k):
    n = len(x)
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    dy = np.abs(y[:, None, :] - y[None, :, :]).max(-1)
    dz = np.maximum(dx, dy)
    np.fill_diagonal(dz, np.inf)
    eps = np.sort(dz, axis=1)[:, k - 1]
    nx = (dx < eps[:, None]).sum(1) - 1
    ny = (dy < eps[:, None]).sum(1) - 1
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))


def test_ksg_equals_brute_force():
    x, y = TASKS["gauss-dense-3x3"].sample(300, seed=1)
    assert ksg_mi(x, y, k=3)[0] == pytest.approx(_ksg_brute(x, y, 3), abs=1e-12)


@pytest.mark.parametrize("name", ["gauss-1x1", "gauss-sparse-5x5"])
def test_ksg_and_cca_on_gaussians(name):
    task = TASKS[name]
    x, y = task.sample(4000, seed=0)
    v, lo, hi = cca_mi(x, y, n_boot=50)
    assert abs(v - task.mi) < 0.05 and lo < v < hi
    if task.dx == 1:  # KSG is biased low in 10 dimensions (0.70 for 1.02 here): the suite shows it
        assert abs(ksg_mi(x, y)[0] - task.mi) < 0.05


def test_canonical_correlations_handle_duplicate_and_constant_columns():
    g = np.random.default_rng(0)
    x = g.normal(size=(500, 2))
    r = canonical_correlations(np.c_[x, x[:, :1], np.ones(500)], x[:, :1] + 0.5 * g.normal(size=(500, 1)))
    assert r.shape == (1,) and 0.8 < r[0] < 0.95


def test_methods_through_estimate_mi():
    x, y = TASKS["gauss-1x1"].sample(1000, seed=2)
    for m in ("ksg", "cca"):
        r = estimate_mi(x, y, method=m)
        assert r.method == m and r.kind == "estimate" and r.interval[0] < r.value < r.interval[1]
        assert abs(r.value - TASKS["gauss-1x1"].mi) < 0.1
        assert m.upper() in str(r)
    with pytest.raises(ValueError, match="unknown method 'mine'; valid: neural, ksg, cca"):
        estimate_mi(x, y, method="mine")
