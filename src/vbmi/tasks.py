"""A suite of 12 sampling tasks with exactly known mutual information (nats), for choosing and checking
estimators. The families follow the benchmark of Czyz et al. 2023 ("Beyond normal", benchmark-mi):
Gaussians (dense and sparse interactions), multivariate Student-t, and invertible transforms of them.
Every true value is exact: a log-determinant formula, plus the closed-form Student-t term below, and
any invertible map applied to X or Y separately leaves I(X; Y) unchanged.

Families
--------
* ``gauss-dense``: ``(X, Y) ~ N(0, S)`` with unit variances and every off-diagonal correlation ``rho``
  (within X, within Y and across); ``I = (log det S_xx + log det S_yy - log det S) / 2``.
* ``gauss-sparse``: unit variances; only the first ``k`` pairs ``(X_i, Y_i)`` correlate (``rho``), so
  ``I = -k/2 log(1 - rho^2)``; the other coordinates are independent noise.
* ``student``: multivariate t with ``nu`` degrees of freedom and scale matrix S: ``(X, Y) = Z / sqrt(W/nu)``,
  ``Z ~ N(0, S)``, ``W ~ chi^2_nu``. From the entropy of the multivariate t,
  ``h = 1/2 log det S + log[(nu pi)^{d/2} G(nu/2) / G((nu+d)/2)] + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)]``,
  ``I = h(X) + h(Y) - h(X, Y) = I_gauss(S) + c(nu, dx, dy)`` with
  ``c = lnG(nu/2) + lnG((nu+dx+dy)/2) - lnG((nu+dx)/2) - lnG((nu+dy)/2)
  + (nu+dx)/2 psi((nu+dx)/2) + (nu+dy)/2 psi((nu+dy)/2) - (nu+dx+dy)/2 psi((nu+dx+dy)/2) - nu/2 psi(nu/2)``
  (G: gamma function, psi: digamma). ``c > 0``: even with S = identity the shared scale W couples X and Y.
  ``tests/test_tasks.py`` checks it against a Monte Carlo average of the exact log density ratio.
* transforms (applied to X and to Y, coordinatewise unless said): ``halfcube`` ``x |x|^{1/2}``,
  ``asinh``, ``normcdf`` (``Phi(x)``: uniform marginals), and ``spiral``: X rotated in the plane of its
  first two coordinates by the angle ``speed * |x|^2`` (invertible: the norm is kept, so the angle can be
  recomputed), which no per-coordinate map undoes.

:data:`TASKS` maps a task name to a :class:`Task`; ``task.sample(n, seed)`` returns float64 arrays
``x: [n, dx]``, ``y: [n, dy]`` and ``task.mi`` is the truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import digamma, gammaln, ndtr

__all__ = ["Task", "TASKS", "get_task", "run_suite", "summarise", "suite_cube", "TOLERANCE", "gaussian_mi", "student_t_mi_correction", "dense_covariance",
           "sparse_covariance"]


def gaussian_mi(cov: np.ndarray, dx: int) -> float:
    """``I(X; Y)`` of a joint Gaussian with covariance ``cov: [dx+dy, dx+dy]`` (X first), in nats."""
    ld = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return float(0.5 * (ld(cov[:dx, :dx]) + ld(cov[dx:, dx:]) - ld(cov)))


def student_t_mi_correction(nu: float, dx: int, dy: int) -> float:
    """``c(nu, dx, dy)``: multivariate-t MI minus the Gaussian MI of its scale matrix (module docstring)."""
    a, b, ab = (nu + dx) / 2, (nu + dy) / 2, (nu + dx + dy) / 2
    return float(gammaln(nu / 2) + gammaln(ab) - gammaln(a) - gammaln(b)
                 + a * digamma(a) + b * digamma(b) - ab * digamma(ab) - nu / 2 * digamma(nu / 2))


def dense_covariance(dx: int, dy: int, rho: float) -> np.ndarray:
    d = dx + dy
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


def sparse_covariance(dx: int, dy: int, k: int, rho: float) -> np.ndarray:
    cov = np.eye(dx + dy)
    for i in range(k):
        cov[i, dx + i] = cov[dx + i, i] = rho
    return cov


def _spiral(x: np.ndarray, speed: float = 0.5) -> np.ndarray:
    theta = speed * (x**2).sum(axis=1)  # [n]
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    out[:, 0], out[:, 1] = c * x[:, 0] - s * x[:, 1], s * x[:, 0] + c * x[:, 1]
    return out


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "halfcube": lambda a: a * np.sqrt(np.abs(a)),
    "asinh": np.arcsinh,
    "normcdf": ndtr,
}


@dataclass(frozen=True)
class Task:
    """A distribution with known ``I(X; Y)``: ``cov`` (Gaussian or t scale), ``nu`` (None: Gaussian)."""

    name: str
    description: str
    dx: int
    dy: int
    cov: np.ndarray
    nu: float | None = None
    transform: str = "identity"
    spiral: bool = False

    @property
    def mi(self) -> float:
        """The exact mutual information in nats."""
        base = gaussian_mi(self.cov, self.dx)
        return base if self.nu is None else base + student_t_mi_correction(self.nu, self.dx, self.dy)

    def sample(self, n: int, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs as float64 arrays ``x: [n, dx]``, ``y: [n, dy]``; ``seed`` an int or numpy Generator."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        z = rng.multivariate_normal(np.zeros(self.dx + self.dy), self.cov, size=n, method="cholesky")
        if self.nu is not None:
            z = z / np.sqrt(rng.chisquare(self.nu, size=(n, 1)) / self.nu)
        x, y = z[:, : self.dx], z[:, self.dx:]
        if self.spiral:
            x = _spiral(x)
        f = TRANSFORMS[self.transform]
        return f(x), f(y)


def _tasks() -> dict[str, Task]:
    d3, s5 = dense_covariance(3, 3, 0.5), sparse_covariance(5, 5, 2, 0.8)
    t = [
        Task("gauss-1x1", "bivariate Gaussian, correlation 0.75", 1, 1, dense_covariance(1, 1, 0.75)),
        Task("gauss-dense-3x3", "Gaussian 3+3, all correlations 0.5", 3, 3, d3),
        Task("gauss-sparse-5x5", "Gaussian 5+5, two coupled pairs (correlation 0.8), rest noise", 5, 5, s5),
        Task("gauss-dense-25x25", "Gaussian 25+25, all correlations 0.5", 25, 25, dense_covariance(25, 25, 0.5)),
        Task("gauss-sparse-25x25", "Gaussian 25+25, three coupled pairs (correlation 0.7), rest noise", 25, 25,
             sparse_covariance(25, 25, 3, 0.7)),
        Task("student-2x2", "multivariate t, 3 dof, identity scale (dependence only through the shared scale)",
             2, 2, np.eye(4), nu=3.0),
        Task("student-5x5", "multivariate t, 3 dof, 5+5, two pairs with scale correlation 0.6", 5, 5,
             sparse_covariance(5, 5, 2, 0.6), nu=3.0),
        Task("halfcube-gauss-sparse-5x5", "x|x|^(1/2) of gauss-sparse-5x5 (heavier tails)", 5, 5, s5,
             transform="halfcube"),
        Task("asinh-student-2x2", "asinh of a 1-dof multivariate t, 2+2, identity scale", 2, 2, np.eye(4),
             nu=1.0, transform="asinh"),
        Task("normcdf-gauss-dense-3x3", "Phi(.) of gauss-dense-3x3 (uniform marginals)", 3, 3, d3,
             transform="normcdf"),
        Task("spiral-gauss-sparse-5x5", "X of gauss-sparse-5x5 spiralled (angle |x|^2 / 2)", 5, 5, s5,
             spiral=True),
        Task("spiral-gauss-dense-3x3", "X of gauss-dense-3x3 spiralled (angle |x|^2 / 2)", 3, 3, d3,
             spiral=True),
    ]
    return {task.name: task for task in t}


TASKS: dict[str, Task] = _tasks()
"""The 12 tasks by name (see the module docstring); ``python examples/task_suite.py`` lists their MI."""


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}") from None


# ----------------------------------------------------------------------------------------------- the suite
TOLERANCE = (0.1, 0.2)
"""An estimate is within tolerance when |error| <= max(0.1 nat, 20% of the truth)."""


def run_suite(methods: list[str], tasks: list[str], n: int = 5000, seeds: list[int] | tuple[int, ...] = (0, 1, 2),
              **kw) -> list[dict]:
    """Every method on every task and seed (sample seed ``1000 + seed``); ``kw`` go to the neural method.

    Returns one dict per run: task, true_mi, method, seed, n, value, lo, hi (the interval), seconds (wall),
    cpu_seconds (process CPU time: what an idle thread would take), p_value.
    """
    from .estimate import estimate_mi

    rows = []
    for name in tasks:
        task = get_task(name)
        for seed in seeds:
            x, y = task.sample(n, seed=1000 + seed)
            for method in methods:
                t0, c0 = time.perf_counter(), time.process_time()
                r = estimate_mi(x, y, method=method, seed=seed, progress=False, **(kw if method == "neural" else {}))
                rows.append({"task": name, "true_mi": task.mi, "method": method, "seed": seed, "n": n, "value": r.value,
                             "lo": r.interval[0], "hi": r.interval[1], "seconds": time.perf_counter() - t0,
                             "cpu_seconds": time.process_time() - c0,
                             "p_value": r.p_value, "best_step": r.best_step, "steps": r.steps})
    return rows


def summarise(rows: list[dict]) -> str:
    """The suite table: per task the mean estimate and interval per method; then counts, MAE, coverage, time."""
    lines, methods = [], sorted({r["method"] for r in rows}, key=["neural", "ksg", "cca"].index)
    lines.append(f"{'task':27} {'true':>6} " + " ".join(f"{m:>32}" for m in methods))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    stats = {m: {"ok": 0, "err": [], "cov": [], "sec": [], "cpu": []} for m in methods}
    for t in tasks:
        truth = next(r["true_mi"] for r in rows if r["task"] == t)
        cells = []
        for m in methods:
            rs = [r for r in rows if r["task"] == t and r["method"] == m]
            est = float(np.mean([r["value"] for r in rs]))
            lo, hi = float(np.mean([r["lo"] for r in rs])), float(np.mean([r["hi"] for r in rs]))
            ok = abs(est - truth) <= max(TOLERANCE[0], TOLERANCE[1] * truth)
            s = stats[m]
            s["ok"] += ok
            s["err"] += [abs(r["value"] - truth) for r in rs]
            s["cov"] += [r["lo"] <= truth <= r["hi"] for r in rs]
            s["sec"] += [r["seconds"] for r in rs]
            s["cpu"] += [r.get("cpu_seconds", np.nan) for r in rs]
            cells.append(f"{est:6.3f} [{lo:6.3f},{hi:6.3f}] {'ok ' if ok else 'BAD'} {np.mean([r['seconds'] for r in rs]):4.1f}s")
        lines.append(f"{t:27} {truth:6.3f} " + " ".join(f"{c:>32}" for c in cells))
    for m in methods:
        s = stats[m]
        lines.append(f"{m}: {s['ok']}/{len(tasks)} within max(0.1, 20%), MAE {np.mean(s['err']):.3f} nats, "
                     f"coverage {np.mean(s['cov']):.0%} ({sum(s['cov'])}/{len(s['cov'])}), "
                     f"{np.mean(s['sec']):.1f} s wall per run (max {np.max(s['sec']):.1f}), "
                     f"{np.mean(s['cpu']):.1f} s CPU (max {np.max(s['cpu']):.1f})")
    return "\n".join(lines)


def suite_cube(rows: list[dict]):
    """The suite's rows as an ``xarray.Dataset`` with dims ``(task, method, seed)`` for
    :func:`vbmi.results.write_cube` (kind ``estimators``); ``true_mi(task)`` is a coordinate."""
    import xarray as xr

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    seeds = sorted({int(r["seed"]) for r in rows})
    shape = (len(tasks), len(methods), len(seeds))
    fields = {
        "estimate": ("value", "estimate of I(X;Y)", "nat", "held-out value (neural) or the baseline's estimate"),
        "interval_low": ("lo", "95% interval, lower end", "nat", "see vbmi.estimate (how each interval is built)"),
        "interval_high": ("hi", "95% interval, upper end", "nat", "see vbmi.estimate (how each interval is built)"),
        "seconds": ("seconds", "wall time per estimate", "s", "one estimate_mi call, one CPU thread"),
        "cpu_seconds": ("cpu_seconds", "CPU time per estimate", "s",
                        "process CPU time of one estimate_mi call: the wall time on an idle thread"),
        "p_value": ("p_value", "independence permutation p-value", "1", "NaN where the method computes none"),
    }
    data = {k: np.full(shape, np.nan) for k in fields}
    for r in rows:
        at = (tasks.index(r["task"]), methods.index(r["method"]), seeds.index(int(r["seed"])))
        for k, (src, *_rest) in fields.items():
            v = r.get(src)
            data[k][at] = np.nan if v is None else float(v)
    ds = xr.Dataset(
        {k: (("task", "method", "seed"), data[k], {"long_name": ln, "units": u, "description": d})
         for k, (_src, ln, u, d) in fields.items()},
        coords={"task": tasks, "method": methods, "seed": seeds,
                "true_mi": ("task", [get_task(t).mi for t in tasks], {"units": "nat", "long_name": "true I(X;Y)"})},
    )
    for k in ("seconds", "cpu_seconds"):  # measurements of the machine, not results: reruns may differ
        ds[k].attrs["vbmi_timing"] = "wall-clock"
    ds.attrs["n_samples"] = int(rows[0].get("n", 0)) if rows else 0
    ds.attrs["tolerance"] = "max(0.1 nat, 20% of the truth)"
    return ds


if __name__ == "__main__":  # pragma: no cover - a quick listing
    for task in TASKS.values():
        print(f"{task.name:28} {task.dx:>2}+{task.dy:<2} I = {task.mi:.4f}  {task.description}")
