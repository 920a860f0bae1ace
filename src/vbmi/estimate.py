"""The front door: :func:`estimate_mi` estimates I(X; Y) in nats from paired samples, with an interval,
an independence test and a plain statement of what the number is.

What the default does (``method="neural"``)
-------------------------------------------
1. **Split** the N pairs (seeded) 60/20/20 into train / validation / test.
2. **Preprocess** (``preprocess="normal"``): every coordinate of x and of y is replaced by its normal
   score among the *training* split's values (held-out values are interpolated between and clipped to
   the training values; see :mod:`vbmi._preprocess`). MI is invariant to invertible per-coordinate maps,
   so this changes nothing about the quantity, and it makes the estimate immune to units (``x * 1e200``),
   outliers (one ``1e6``) and heavy tails. ``preprocess="standardize"`` (robust scaling) or ``"none"``
   turn it off.
3. **Critic** ``f = f_G + r``: ``f_G`` is the exact log density ratio of a Gaussian fitted to the training
   split (the Gaussian-copula critic; covariance shrinkage and the number of canonical directions kept,
   i.e. reduced-rank CCA, chosen on validation); ``r`` is a small network (``critic="separable"`` or
   ``"joint"``, ``activation="tanh"``) whose output starts at zero, trained with Adam on the chosen
   ``bound`` (InfoNCE by default). With ``features="square"`` (default) the network sees
   ``[z, z * z - 1]`` of each side, so a dependence through a shared scale (multivariate t) or through
   the radius is a smooth function of its inputs. ``ensemble=E`` trains E networks from different
   initialisations and averages their scores (default 1). Early stopping on the validation split, which
   also scores ``f_G`` alone, keeps the state that does best on pairs it was not fitted to. With the
   default ``gaussian_critic="auto"`` the network is also trained without ``f_G`` and the critic with the
   better validation value is kept. On the suite (12 tasks x 3 seeds, ``examples/task_suite.py --methods
   neural --kw ...``) the mean absolute error is 0.075 nats with ``{"features": "none", "activation":
   "relu"}`` (the reduced-rank ``f_G`` alone), 0.060 with ``{"activation": "relu"}`` and 0.049 with the
   defaults.
4. **Evaluate** once on the test split, which played no part in fitting or selection. For InfoNCE the
   test split is one batch (K = n_test, capped at 4,096), so the cap ``log K`` is as high as the data
   allow. Because the critic is fixed before the test pairs are seen, the expected test value of a lower
   bound is a lower bound on I(X; Y): a poor critic gives a loose value, never an inflated one.

What comes back (:class:`MIEstimate`)
-------------------------------------
* ``value`` (nats) and ``stderr``: for InfoNCE the mean and standard error of the per-pair terms
  ``f(x_j, y_j) - log 1/K sum_i exp f(x_i, y_j)`` on the test split.
* ``interval``: lower end ``value - 1.96 stderr``; upper end ``max(value + 1.96 stderr, 2 s - value)``
  with ``s`` the same critic's value on training pairs (``config['in_sample_value']``): the fitted critic
  is optimistic on the pairs it was fitted to, and the gap ``s - value`` is allowed once more above ``s``
  for what the critic's class misses. A heuristic whose coverage of the true MI is measured on
  :mod:`vbmi.tasks` by ``examples/task_suite.py`` (README).
* ``p_value``: permutation test of independence: the same fixed critic scored on the test pairs with y
  shuffled (``n_perm`` times). A large p-value with a small N means "too little data to tell", not "no
  dependence"; ``no_signal`` is True when p > 0.05.
* ``saturated``: the value is within ``max(0.25, 0.2 cap)`` nats of the bound's cap (InfoNCE: ``log K``),
  where the bound's own bias grows, so the truth may be far larger; give more samples or use a
  single-sample bound.
* ``warnings``: the sentences that say so (also printed by the CLI and ``str(result)``).

Baselines: ``method="ksg"`` (Kraskov et al. estimator 1 on a k-d tree, ``k`` neighbours) and
``method="cca"`` (linear-Gaussian; with the default preprocessing the Gaussian-copula estimator) use all
N pairs and report ``kind="estimate"`` (neither is a bound); see :mod:`vbmi.baselines`.

Accuracy on the 12 known-MI tasks of :mod:`vbmi.tasks` (5,000 samples, 3 seeds; command
``python examples/task_suite.py``) is quoted in the README section on ``estimate_mi``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ._checks import (DEFAULT_ALPHA, _check_bound, _check_dtype, _check_seed, _check_xy, _device, _positive_int,
                      _split_sizes)
from ._neural import FEATURES
from ._preprocess import PREPROCESS, MarginalTransform, fit_marginals
from .critics import ACTIVATIONS, check_critic_name

__all__ = ["MIEstimate", "estimate_mi", "default_config", "DEFAULT_ALPHA", "METHODS"]

METHODS = ("neural", "ksg", "cca")
"""``estimate_mi(method=...)``: the trained critic (default) or one of the baselines of :mod:`vbmi.baselines`."""

_CAP_NOTE = {"nce": "InfoNCE", "interpolated": "I_alpha", "interpolated_product": "I_alpha (product)"}


@dataclass(frozen=True)
class MIEstimate:
    """Result of :func:`estimate_mi`. ``value``, ``stderr`` and ``interval`` are in nats."""

    value: float
    """Held-out estimate (mean of the bound on the test split; baselines: on all pairs)."""
    stderr: float
    """Standard error of ``value`` (nats)."""
    bound: str
    """Registry name of the bound (:data:`vbmi.bounds.BOUNDS`); ``ksg``/``cca`` for the baselines."""
    kind: str
    """'lower', 'upper' or 'estimate' (from the registry; baselines: 'estimate')."""
    equation: str
    """Where the bound is defined in the paper (e.g. 'Eq. 10'); the reference for the baselines."""
    n_train: int
    n_val: int
    n_test: int
    steps: int
    """Training steps taken (early stopping may end before ``max_steps``)."""
    best_step: int
    """Step whose critic state was kept (0: the Gaussian critic alone did best on validation)."""
    eval_batch_size: int
    """K of the test batches; multi-sample bounds depend on it (InfoNCE <= log K)."""
    n_test_batches: int
    """Disjoint batches per test partition."""
    alpha: float | None
    seed: int
    critic: str
    method: str = "neural"
    preprocess: str = "normal"
    interval: tuple[float, float] = (float("nan"), float("nan"))
    """Approximate 95% interval for I(X; Y) (how it is built: module docstring)."""
    p_value: float | None = None
    """Permutation p-value of independence (None where not computed)."""
    saturated: bool = False
    no_signal: bool = False
    warnings: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    """Every setting used (sizes from the data-sizing rule included), for reproducing the run."""
    history: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)
    """``step``, ``train`` (mean training objective since the previous evaluation), ``val``."""
    critic_module: nn.Module | None = field(default=None, repr=False, compare=False)
    """The trained critic (best validation state), on preprocessed inputs (``transforms``)."""
    transforms: tuple[MarginalTransform, MarginalTransform] | None = field(default=None, repr=False, compare=False)
    """The fitted per-coordinate maps for x and y (apply them before calling ``critic_module``)."""

    @property
    def n(self) -> int:
        return self.n_train + self.n_val + self.n_test

    @property
    def log_k_cap(self) -> float | None:
        """``log K_eval`` for InfoNCE (its ceiling); ``1 + log(K/alpha)`` for I_alpha; else None."""
        if self.method != "neural":
            return None
        if self.bound == "nce":
            return math.log(self.eval_batch_size)
        if self.bound in ("interpolated", "interpolated_product") and self.alpha:
            return 1.0 + math.log(self.eval_batch_size / self.alpha)
        return None

    def to_dict(self, history: bool = False) -> dict[str, Any]:
        """JSON-ready summary (what ``python -m vbmi estimate`` prints)."""
        out: dict[str, Any] = {
            "value": self.value, "stderr": self.stderr, "interval": list(self.interval), "units": "nat",
            "method": self.method, "bound": self.bound, "kind": self.kind, "equation": self.equation,
            "alpha": self.alpha, "log_k_cap": self.log_k_cap, "saturated": self.saturated,
            "p_value": self.p_value, "no_signal": self.no_signal, "warnings": list(self.warnings),
            "critic": self.critic, "preprocess": self.preprocess, "n": self.n, "n_train": self.n_train,
            "n_val": self.n_val, "n_test": self.n_test, "steps": self.steps, "best_step": self.best_step,
            "eval_batch_size": self.eval_batch_size, "n_test_batches": self.n_test_batches, "seed": self.seed,
            "config": dict(self.config),
        }
        if history:
            out["history"] = {k: list(v) for k, v in self.history.items()}
        return out

    def __str__(self) -> str:
        what = {"lower": "a lower bound on I(X;Y)", "upper": "an upper bound on I(X;Y)",
                "estimate": "an estimate (not a bound) of I(X;Y)"}[self.kind]
        rel = {"lower": ">=", "upper": "<="}.get(self.kind, "~")
        lo, hi = self.interval
        s = f"I(X;Y) {rel} {self.value:.4f} +/- {self.stderr:.4f} nats (95% interval {lo:.4f} to {hi:.4f}): {what}"
        if self.method == "neural":
            s += (f" from the '{self.bound}' bound ({self.equation}), estimated on {self.n_test} held-out test pairs "
                  f"({self.n_test_batches} batches of {self.eval_batch_size}) with a {self.critic} critic trained on "
                  f"{self.n_train} pairs (best validation state at step {self.best_step} of {self.steps})")
        else:
            s += f" by the {self.method.upper()} baseline ({self.equation}) on {self.n} pairs"
        if self.p_value is not None:
            s += f"; independence permutation p = {self.p_value:.3g}"
        cap = self.log_k_cap
        if cap is not None:
            s += f"; {_CAP_NOTE[self.bound]} cannot exceed {cap:.3f} nats at this batch size"
        return s + "." + "".join(f"\nWARNING: {w}" for w in self.warnings)


# --------------------------------------------------------------------------------------------------
# Sizing rule
# --------------------------------------------------------------------------------------------------
def default_config(n_train: int, x_dim: int, y_dim: int) -> dict[str, int]:
    """The data-sizing rule: critic width, embedding and batch size from the training-split size and dims.

    ``hidden = clip(16 * round(sqrt(n_train) / 8), 32, 256)`` (n_train = 1,500 -> 80; 6,000 -> 160;
    >= 16,000 -> 256), ``embed_dim = clip(4 * max(dx, dy), 16, 64)``, ``batch_size = min(256, n_train // 4)``.
    """
    hidden = int(min(256, max(32, 16 * round(math.sqrt(n_train) / 8))))
    embed = int(min(64, max(16, 4 * max(x_dim, y_dim))))
    batch = int(min(256, max(2, n_train // 4)))
    return {"hidden": hidden, "layers": 2, "embed_dim": embed, "batch_size": batch}


# --------------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------------
def estimate_mi(
    x: Any,
    y: Any,
    *,
    method: str = "neural",
    bound: str = "nce",
    critic: str = "separable",
    alpha: float | None = None,
    seed: int = 0,
    preprocess: str = "normal",
    gaussian_critic: bool | str = "auto",
    features: str = "square",
    activation: str = "tanh",
    ensemble: int = 1,
    max_steps: int = 4000,
    batch_size: int | None = None,
    hidden: int | None = None,
    layers: int | None = None,
    embed_dim: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    early_stopping: bool = True,
    eval_every: int = 25,
    patience: int = 20,
    eval_repeats: int = 8,
    n_perm: int = 200,
    k: int = 3,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    progress: bool | None = None,
) -> MIEstimate:
    """Estimate I(X; Y) in nats from paired samples, with an interval and an independence test.

    Args:
        x, y: paired samples, numpy arrays or torch tensors of shape ``[N, dx]`` and ``[N, dy]`` (1-D
            arrays are ``[N, 1]``; trailing dims beyond the second are flattened; any real dtype). Row n
            of x pairs with row n of y. Must be finite.
        method: ``neural`` (default: trained critic, held-out value), ``ksg`` or ``cca`` (baselines).
        bound: a critic bound of :data:`vbmi.bounds.BOUNDS` (``nce`` default; ``nwj``, ``js``, ``tuba``,
            ``mine``, ``dv``, ``smile``, ``interpolated``, ...). Structured bounds are refused.
        critic: the residual network, ``separable`` (``g(x)^T h(y)``, default) or ``joint``
            (an MLP on each pair, K/2 times the compute).
        alpha: for the interpolated bounds, in [0, 1] (default :data:`DEFAULT_ALPHA`).
        seed: int in [0, 2**63): the split, weights, batches, partitions and permutations.
        preprocess: ``normal`` (default: per-coordinate normal scores learned on the training split),
            ``standardize`` (robust centring and scaling) or ``none``. See the module docstring.
        gaussian_critic: ``"auto"`` (default) trains the network with and without the closed-form
            Gaussian(-copula) critic added and keeps the better on validation (twice the training);
            ``True`` / ``False`` train only one.
        features: what the network sees of each (preprocessed) side: ``square`` (default,
            ``[z, z * z - 1]``) or ``none`` (``z``).
        activation: the network's nonlinearity, ``tanh`` (default: smooth critics) or ``relu``.
        ensemble: networks per candidate, trained from different initialisations and averaged (scores
            are averaged, so the result is one fixed critic; bounds with trainable parts use one).
        max_steps, batch_size, hidden, layers, embed_dim, lr, weight_decay: training; sizes default to
            :func:`default_config`.
        val_fraction, test_fraction: split sizes (their sum must be < 1).
        early_stopping, eval_every, patience: validate every ``eval_every`` steps, stop after ``patience``
            evaluations without improvement, restore the best state (step 0 included).
        eval_repeats: random partitions averaged when a split is cut into several batches.
        n_perm: permutations for the independence p-value (0: skip).
        k: neighbours for ``method="ksg"``.
        device: ``"auto"`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
        dtype: ``torch.float32`` (default) or ``torch.float64`` for the critic.
        progress: tqdm bar on stderr; default on when stderr is a terminal.

    Returns:
        :class:`MIEstimate` (``value``, ``stderr``, ``interval``, ``p_value``, ``saturated``,
        ``no_signal``, ``warnings``, sizes, settings).

    Raises:
        ValueError: shape mismatch, NaN/inf, too few samples, bad fractions/sizes/seed/dtype/device,
            unknown method/bound/critic/preprocess (the message lists valid names).
        TypeError: non-numeric input, non-int seed.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if preprocess not in PREPROCESS:
        raise ValueError(f"unknown preprocess {preprocess!r}; valid: {', '.join(PREPROCESS)}")
    seed = _check_seed(seed)
    if method != "neural":
        return _baseline(method, *_check_xy(x, y), preprocess=preprocess, seed=seed, k=k)
    b, alpha = _check_bound(bound, alpha)
    check_critic_name(critic)
    if gaussian_critic not in (True, False, "auto"):
        raise ValueError(f"gaussian_critic must be True, False or 'auto', got {gaussian_critic!r}")
    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}; valid: {', '.join(FEATURES)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    dtype = _check_dtype(dtype)
    dev = _device(device)
    xa, ya = _check_xy(x, y)
    n_train, n_val, n_test = _split_sizes(xa.shape[0], val_fraction, test_fraction, early_stopping)
    ints = {name: _positive_int(name, v) for name, v in
            (("max_steps", max_steps), ("eval_every", eval_every), ("patience", patience),
             ("eval_repeats", eval_repeats), ("ensemble", ensemble))}
    n_perm = _positive_int("n_perm", n_perm, minimum=0)
    if not lr > 0 or not weight_decay >= 0:
        raise ValueError(f"need lr > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
    cfg = default_config(n_train, xa.shape[1], ya.shape[1])
    for name, v in (("batch_size", batch_size), ("hidden", hidden), ("layers", layers), ("embed_dim", embed_dim)):
        if v is not None:
            cfg[name] = _positive_int(name, v, minimum=2 if name == "batch_size" else (0 if name == "layers" else 1))
    if cfg["batch_size"] > n_train:
        raise ValueError(f"batch_size {cfg['batch_size']} exceeds the training split ({n_train} pairs)")
    cfg.update(ints, critic=critic, lr=lr, weight_decay=weight_decay, val_fraction=val_fraction,
               test_fraction=test_fraction, preprocess=preprocess, gaussian_critic=gaussian_critic, features=features,
               activation=activation,
               early_stopping=early_stopping, n_perm=n_perm, device=str(dev), dtype=str(dtype).replace("torch.", ""),
               x_dim=xa.shape[1], y_dim=ya.shape[1])
    from ._fit import fit_neural

    return fit_neural(xa, ya, b, alpha, seed, cfg, (n_train, n_val, n_test), dev, dtype, progress)


def _baseline(method: str, xa: np.ndarray, ya: np.ndarray, *, preprocess: str, seed: int, k: int) -> MIEstimate:
    from .baselines import cca_mi, ksg_mi

    tx, ty = fit_marginals(xa, preprocess), fit_marginals(ya, preprocess)
    xp, yp = tx(xa), ty(ya)
    if method == "ksg":
        value, lo, hi = ksg_mi(xp, yp, k=_positive_int("k", k))
        eq = f"Kraskov et al. 2004, estimator 1, k = {k}"
    else:
        value, lo, hi = cca_mi(xp, yp, seed=seed)
        eq = "-1/2 sum log(1 - r_i^2) over canonical correlations"
    n = xa.shape[0]
    return MIEstimate(value=value, stderr=(hi - lo) / (2 * 1.96), bound=method, kind="estimate", equation=eq,
                      n_train=0, n_val=0, n_test=n, steps=0, best_step=0, eval_batch_size=n, n_test_batches=1,
                      alpha=None, seed=seed, critic="none", method=method, preprocess=preprocess,
                      interval=(lo, hi), config={"k": k} if method == "ksg" else {}, transforms=(tx, ty))
