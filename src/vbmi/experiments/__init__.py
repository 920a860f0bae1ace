"""Experiments built on the core library: they return arrays/datasets; `vbmi.results` writes them.

Submodules are imported on first use, so :mod:`vbmi.experiments.plan` (run planning, torch-free) can be
imported without torch: ``from vbmi.experiments.plan import fig2_parts``.
"""

from __future__ import annotations

import importlib
from typing import Any

# training stage (Fig. 2, Table 3, Figs. 6-7): name -> submodule holding it
_LAZY = {
    "RunSpec": "plan",
    "fig2_specs": "plan",
    "fig2_parts": "plan",
    "sweep_specs": "plan",
    "sweep_parts": "plan",
    "StackedAdam": "training",
    "TrainResult": "training",
    "result_to_dataset": "training",
    "train_ensemble": "training",
    "train_from_config": "training",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vbmi.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
