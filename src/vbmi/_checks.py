"""Argument checks of :func:`vbmi.estimate_mi`: one clear error per bad input, raised before any work."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .bounds import BOUNDS, Bound
from .utils import resolve_device

DEFAULT_ALPHA = 0.5
"""alpha used for the interpolated bounds when the caller gives none (halfway between NCE and TUBA)."""


def _as_2d(a: Any, name: str) -> np.ndarray:
    """numpy / torch / sequence -> float64 ``[N, d]`` array; 1-D is ``[N, 1]``, trailing dims flattened."""
    if isinstance(a, Tensor):
        if a.is_complex():
            raise TypeError(f"{name} must be real-valued, got complex dtype {a.dtype}")
        a = a.detach().to("cpu", torch.float64).numpy()
    else:
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged lists etc.
            raise TypeError(f"{name} could not be converted to a numeric array: {e}") from None
        if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
        a = a.astype(np.float64)
    if a.ndim == 0:
        raise ValueError(f"{name} must have shape [N] or [N, d], got a scalar")
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    if a.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {a.shape})")
    bad = ~np.isfinite(a)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{name} contains {kind} values ({int(bad.sum())} entries in {rows.size} rows, first "
                         f"row {int(rows[0])}); remove or impute them before estimating MI")
    return a


def _check_bound(bound: str, alpha: float | None) -> tuple[Bound, float | None]:
    if not isinstance(bound, str):
        raise TypeError(f"bound must be a registry name (str), got {type(bound).__name__}")
    b = BOUNDS[bound]  # unknown names raise ValueError listing the valid ones
    if b.input != "scores":
        usable = sorted(k for k, v in BOUNDS.items() if v.input == "scores")
        raise ValueError(
            f"bound {bound!r} takes {b.input} (a known log p(y|x) or decoder), not a learned critic, so it cannot "
            f"be estimated from samples alone; use vbmi.bounds.BOUNDS[{bound!r}] with your model's "
            f"log-densities, or one of the critic bounds: {', '.join(usable)}")
    if b.takes_alpha:
        if alpha is None:
            alpha = DEFAULT_ALPHA
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        alpha = float(alpha)
    elif alpha is not None:
        takes = sorted(k for k, v in BOUNDS.items() if v.takes_alpha)
        raise ValueError(f"bound {bound!r} takes no alpha (only {', '.join(takes)} do), got alpha={alpha!r}")
    return b, alpha


def _positive_int(name: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63) (what torch.Generator accepts), got {seed}")
    return int(seed)


def _check_dtype(dtype: Any) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}: half precision (float16, "
                         "bfloat16) cannot hold the log-sum-exps of the bounds. (Inputs of any real dtype, float16 "
                         "included, are accepted: they are converted to float64 first.)")
    return dtype


def _split_sizes(n: int, val_fraction: float, test_fraction: float, early_stopping: bool) -> tuple[int, int, int]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= float(f) < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 so that pairs are left to train the critic, "
                         f"got {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}")
    if early_stopping and val_fraction <= 0:
        raise ValueError("early_stopping needs a validation split: val_fraction > 0 (or early_stopping=False)")
    if test_fraction <= 0:
        raise ValueError("test_fraction must be > 0: the reported value is computed on the test split")
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    n_train = n - n_test - n_val
    min_split = 8
    if n_test < min_split or (early_stopping and n_val < min_split) or n_train < min_split:
        smallest = min(f for f in (test_fraction, val_fraction if early_stopping else 1.0,
                                   1.0 - test_fraction - val_fraction))
        raise ValueError(
            f"too few samples to split: N = {n} gives train/val/test = {n_train}/{n_val}/{n_test} "
            f"(fractions {1 - val_fraction - test_fraction:.2f}/{val_fraction:.2f}/{test_fraction:.2f}); each split "
            f"needs at least {min_split} pairs, so N >= {math.ceil(min_split / smallest)}")
    return n_train, n_val, n_test


def _check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = _as_2d(x, "x"), _as_2d(y, "y")
    if ya.shape[0] != xa.shape[0]:
        raise ValueError(f"x and y must have the same number of samples (rows): x has {xa.shape[0]}, y has {ya.shape[0]}")
    if xa.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to estimate MI with a multi-sample critic bound, got {xa.shape[0]}")
    return xa, ya


def _device(device: str | torch.device) -> torch.device:
    try:
        return resolve_device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"device {str(device)!r} is not usable here: use 'auto', 'cpu', 'cuda' or 'cuda:N' "
                         f"({' '.join(str(e).split())})") from None
