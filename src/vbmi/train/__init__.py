"""The one training engine (:mod:`.engine`) and the one checkpoint module (:mod:`.checkpoint`).

``from vbmi.train import checkpoint`` is torch-free at import; the engine imports torch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import checkpoint

_ENGINE = ("Engine", "StackedAdam", "Checkpointing", "RunOutcome", "Hook")

__all__ = ["checkpoint", "engine", *_ENGINE]


def __getattr__(name: str) -> Any:
    if name == "engine" or name in _ENGINE:
        mod = importlib.import_module(".engine", __name__)
        value = mod if name == "engine" else getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vbmi.train' has no attribute {name!r}")
