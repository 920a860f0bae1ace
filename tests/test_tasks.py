"""vbmi.tasks: the true MI of every task is right (closed forms checked against Monte Carlo) and samples
have the documented shapes and transforms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, multivariate_t

from vbmi.tasks import TASKS, gaussian_mi, get_task, student_t_mi_correction, summarise


def test_twelve_tasks_with_positive_mi():
    assert len(TASKS) == 12
    for t in TASKS.values():
        assert 0.05 < t.mi < 2.0, t.name
        x, y = t.sample(50, seed=0)
        assert x.shape == (50, t.dx) and y.shape == (50, t.dy) and np.isfinite(x).all() and np.isfinite(y).all()


def test_gaussian_closed_forms():
    assert TASKS["gauss-1x1"].mi == pytest.approx(-0.5 * np.log(1 - 0.75**2))
    assert TASKS["gauss-sparse-5x5"].mi == pytest.approx(-np.log(1 - 0.8**2))  # two pairs, -1/2 log each
    # dense 25+25 at 0.5: det(a I + b 11^T) = a^(d-1) (a + d b)
    ld = lambda d: (d - 1) * np.log(0.5) + np.log(0.5 + 0.5 * d)  # noqa: E731
    assert TASKS["gauss-dense-25x25"].mi == pytest.approx(0.5 * (2 * ld(25) - ld(50)))


def _mc_mi(task, n=200_000, seed=0):
    """Monte Carlo of E[log p(x,y) - log p(x) - log p(y)] with the exact densities (before transforms)."""
    rng = np.random.default_rng(seed)
    d = task.dx + task.dy
    z = rng.multivariate_normal(np.zeros(d), task.cov, size=n)
    if task.nu is None:
        dist = lambda c: multivariate_normal(np.zeros(len(c)), c)  # noqa: E731
    else:
        z = z / np.sqrt(rng.chisquare(task.nu, size=(n, 1)) / task.nu)
        dist = lambda c: multivariate_t(np.zeros(len(c)), c, df=task.nu)  # noqa: E731
    c, dx = task.cov, task.dx
    r = dist(c).logpdf(z) - dist(c[:dx, :dx]).logpdf(z[:, :dx]) - dist(c[dx:, dx:]).logpdf(z[:, dx:])
    return r.mean(), r.std() / np.sqrt(n)


@pytest.mark.parametrize("name", ["student-2x2", "student-5x5", "asinh-student-2x2", "gauss-dense-3x3"])
def test_true_mi_matches_monte_carlo_of_log_density_ratio(name):
    task = TASKS[name]
    mc, se = _mc_mi(task)
    assert abs(mc - task.mi) < 4 * se + 1e-3, (mc, se, task.mi)


def test_student_correction_limits():
    assert student_t_mi_correction(3.0, 2, 2) > 0
    assert student_t_mi_correction(1e6, 2, 2) == pytest.approx(0.0, abs=1e-5)  # nu -> inf: Gaussian
    assert gaussian_mi(np.eye(4), 2) == pytest.approx(0.0)


def test_transforms_are_the_documented_maps():
    x0, y0 = get_task("gauss-sparse-5x5").sample(100, seed=3)
    x1, y1 = get_task("halfcube-gauss-sparse-5x5").sample(100, seed=3)
    np.testing.assert_allclose(x1, x0 * np.sqrt(np.abs(x0)))
    x2, y2 = get_task("spiral-gauss-sparse-5x5").sample(100, seed=3)
    np.testing.assert_allclose(np.linalg.norm(x2, axis=1), np.linalg.norm(x0, axis=1))  # a rotation
    np.testing.assert_allclose(x2[:, 2:], x0[:, 2:]) and np.testing.assert_allclose(y2, y0)
    assert not np.allclose(x2[:, :2], x0[:, :2])
    xc, _ = get_task("normcdf-gauss-dense-3x3").sample(100, seed=3)
    assert 0 < xc.min() and xc.max() < 1


def test_unknown_task_lists_names():
    with pytest.raises(ValueError, match="unknown task 'nope'; valid: gauss-1x1"):
        get_task("nope")


def test_summarise_counts_tolerance():
    rows = [{"task": "a", "true_mi": 1.0, "method": "cca", "seed": 0, "value": v, "lo": v - 0.2, "hi": v + 0.1,
             "seconds": 0.1} for v in (1.15,)] + [
            {"task": "b", "true_mi": 0.3, "method": "cca", "seed": 0, "value": 0.15, "lo": 0.1, "hi": 0.2, "seconds": 0.1}]
    text = summarise(rows)
    assert "cca: 1/2 within" in text and "coverage 50% (1/2)" in text and "MAE 0.150" in text
