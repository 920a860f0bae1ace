"""``estimate_mi(method="neural")`` after its arguments are checked: split, preprocess, fit, evaluate, report."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._neural import MeanCritic, build_critic, evaluate, fit_gaussian_critic, train_critic
from ._preprocess import fit_marginals
from .bounds import Bound
from .objectives import BoundObjective
from .utils import make_generator

__all__ = ["fit_neural"]

_MAX_EVAL_K = 4096
"""Largest single evaluation batch (a [K, K] float64 score matrix: 134 MB at 4,096)."""

SATURATION_MARGIN = 0.25
"""Saturated: value >= cap - max(SATURATION_MARGIN, SATURATION_FRACTION * cap) (InfoNCE's bias grows near log K)."""
SATURATION_FRACTION = 0.2
NO_SIGNAL_P = 0.05


def _eval_k(n: int, k_train: int, one_batch: bool) -> int:
    if one_batch:
        return min(n, _MAX_EVAL_K)
    return min(k_train, n // 4) if n >= 8 else max(n, 2)


def fit_neural(xa: np.ndarray, ya: np.ndarray, b: Bound, alpha: float | None, seed: int, cfg: dict,
               sizes: tuple[int, int, int], dev: torch.device, dtype: torch.dtype, progress: bool | None):
    from .estimate import MIEstimate

    n_train, n_val, n_test = sizes
    g = make_generator(seed)  # CPU: split, init, batches, partitions, permutations
    perm = torch.randperm(xa.shape[0], generator=g).numpy()
    i_test, i_val, i_train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    tx, ty = fit_marginals(xa[i_train], cfg["preprocess"]), fit_marginals(ya[i_train], cfg["preprocess"])
    xs, ys = tx(xa), ty(ya)  # float64 [N, d], training-split maps applied to every split
    to = lambda a, i: torch.from_numpy(a[i]).to(device=dev, dtype=dtype)  # noqa: E731
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = ((to(xs, i), to(ys, i)) for i in (i_train, i_val, i_test))

    bound = b.name
    one_batch = bound == "nce" and cfg["critic"] == "separable"
    k_train = cfg["batch_size"]
    k_val, k_eval = _eval_k(n_val, k_train, one_batch), _eval_k(n_test, k_train, one_batch)
    nce = BoundObjective("nce")
    reps = cfg["eval_repeats"]

    gauss, shrinkage = None, None
    if cfg["gaussian_critic"]:
        k_g = min(max(n_val, 2), _MAX_EVAL_K)
        # Its own generator, so that how many Gaussian critics are scored leaves the network's draws alone.
        g_g = make_generator(0)
        score = lambda c: evaluate(c.to(device=dev, dtype=dtype), nce, x_va, y_va, k_g, 1, g_g).value  # noqa: E731
        gauss, shrinkage = fit_gaussian_critic(xs[i_train], ys[i_train], score)

    def member(base, objective):
        net = build_critic(cfg["critic"], xa.shape[1], ya.shape[1], cfg, base, g).to(device=dev, dtype=dtype)
        hist = train_critic(
            net, objective, (x_tr, y_tr), lambda: evaluate(net, objective, x_va, y_va, k_val, reps, g).value,
            k=k_train, max_steps=cfg["max_steps"], lr=cfg["lr"], weight_decay=cfg["weight_decay"],
            eval_every=cfg["eval_every"], patience=cfg["patience"], early_stopping=cfg["early_stopping"], g=g,
            progress=progress)
        best_val = max((v for v in hist["val"] if v is not None and math.isfinite(v)), default=-math.inf)
        return best_val, net, hist

    def candidate(base):
        objective = BoundObjective(bound, y_dim=ya.shape[1], alpha=alpha, generator=g).to(device=dev, dtype=dtype)
        # Members share the objective, so only a parameter-free one (InfoNCE's) can be shared by several.
        size = cfg["ensemble"] if not any(True for _ in objective.parameters()) else 1
        members = [member(base, objective) for _ in range(size)]
        if size == 1:
            return members[0][0], members[0][1], objective, members[0][2]
        net = MeanCritic([m[1] for m in members])
        hist = max(members, key=lambda m: m[0])[2]
        return evaluate(net, objective, x_va, y_va, k_val, reps, g).value, net, objective, hist

    # gaussian_critic="auto": with and without the Gaussian critic; the better validation value is kept.
    bases = {True: [gauss], False: [None], "auto": [gauss, None]}[cfg["gaussian_critic"]]
    runs = [candidate(base) for base in bases]
    chosen = max(range(len(runs)), key=lambda i: runs[i][0])
    _, net, objective, hist = runs[chosen]
    if bases[chosen] is None:
        shrinkage = None

    ev = evaluate(net, objective, x_te, y_te, k_eval, reps, g, n_perm=cfg["n_perm"])
    if not math.isfinite(ev.value):
        raise FloatingPointError(f"the test estimate is not finite ({ev.value}); the critic diverged")
    sub = torch.randperm(n_train, generator=g)[:n_test].to(dev)  # the test split's K where possible
    in_sample = evaluate(net, objective, x_tr[sub], y_tr[sub], min(k_eval, sub.numel()), reps, g).value
    interval = _interval(ev.value, ev.stderr, in_sample)
    # Ties count as "as large": a critic constant in x gives exactly 0 both ways, up to rounding.
    tie = 1e-9 * (1.0 + abs(ev.value))
    p = float((1 + (ev.perm_values >= ev.value - tie).sum()) / (1 + ev.perm_values.size)) if ev.perm_values.size else None
    cap = _cap(bound, alpha, ev.batch_size)
    saturated = cap is not None and ev.value >= cap - max(SATURATION_MARGIN, SATURATION_FRACTION * cap)
    no_signal = p is not None and p > NO_SIGNAL_P
    cfg = dict(cfg, val_batch_size=k_val, shrinkage=shrinkage, in_sample_value=in_sample,
               uses_gaussian_critic=bases[chosen] is not None)
    return MIEstimate(
        value=ev.value, stderr=ev.stderr, bound=bound, kind=b.kind, equation=b.equation, n_train=n_train,
        n_val=n_val, n_test=n_test, steps=hist.pop("steps"), best_step=hist.pop("best_step"),
        eval_batch_size=ev.batch_size, n_test_batches=ev.n_batches, alpha=alpha, seed=seed, critic=cfg["critic"],
        method="neural", preprocess=cfg["preprocess"], interval=interval, p_value=p, saturated=saturated,
        no_signal=no_signal, warnings=_warnings(ev.value, cap, saturated, p, no_signal, ev.batch_size, bound), config=cfg,
        history={k: tuple(v) for k, v in hist.items()}, critic_module=net, transforms=(tx, ty))


def _interval(value: float, stderr: float, in_sample: float) -> tuple[float, float]:
    """``[v - 1.96 se, max(v + 1.96 se, s + (s - v))]`` with v the held-out and s the in-sample value.

    The lower end is the held-out bound's sampling error. The upper end allows for what the held-out value
    cannot see: the gap ``s - v`` measures how much the critic fitted its training pairs (v sits about
    half of it below the best critic of its class, s about half above), and the same amount again is
    allowed for the class missing the truth. A heuristic, not a theorem: its coverage is measured on
    :mod:`vbmi.tasks` (README).
    """
    half = 1.96 * stderr if math.isfinite(stderr) else 0.0
    return value - half, max(value + half, 2.0 * in_sample - value)


def _cap(bound: str, alpha: float | None, k: int) -> float | None:
    if bound == "nce":
        return math.log(k)
    if bound in ("interpolated", "interpolated_product") and alpha:
        return 1.0 + math.log(k / alpha)
    return None


def _warnings(value: float, cap: float | None, saturated: bool, p: float | None, no_signal: bool, k: int,
              bound: str) -> tuple[str, ...]:
    out = []
    if saturated:
        out.append(f"the estimate {value:.3f} sits at the cap of the '{bound}' bound ({cap:.3f} nats at "
                   f"K = {k} test pairs per batch): the true MI may be much larger. "
                   "Give more samples or use a single-sample bound (nwj, or interpolated with small alpha).")
    if no_signal:
        out.append(f"no dependence detected: the held-out value is indistinguishable from the same critic on "
                   f"shuffled pairs (permutation p = {p:.3g}). Either X and Y are independent or the test pairs "
                   "are too few to tell; the critic learned nothing that generalises.")
    return tuple(out)
