"""vbmi: the reference implementation of *On Variational Bounds of Mutual Information*
(Poole, Ozair, van den Oord, Alemi, Tucker; ICML 2019) and a practical MI toolkit.

Score convention everywhere: ``scores[..., i, j] = f(x_i, y_j)`` (rows x, columns y, positives on the
diagonal, leading dims independent problems). See :mod:`vbmi.bounds`.

The public names below are loaded on first use (PEP 562), so importing a torch-free submodule such as
:mod:`vbmi.experiments.plan` (the Snakefile does, to build the DAG) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (submodule, attribute or None for the submodule itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "bounds": ("bounds", None),
    "critics": ("critics", None),
    "data": ("data", None),
    "BOUNDS": ("bounds", "BOUNDS"),
    "Bound": ("bounds", "Bound"),
    "get_bound": ("bounds", "get_bound"),
    "SeparableCritic": ("critics", "SeparableCritic"),
    "JointCritic": ("critics", "JointCritic"),
    "make_critic": ("critics", "make_critic"),
    "make_baseline": ("critics", "make_baseline"),
    "resolve_device": ("utils", "resolve_device"),
    "estimate_mi": ("estimate", "estimate_mi"),  # the front door
    "MIEstimate": ("estimate", "MIEstimate"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'vbmi' has no attribute {name!r}") from None
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from . import bounds, critics, data  # noqa: F401
    from .bounds import BOUNDS, Bound, get_bound  # noqa: F401
    from .critics import JointCritic, SeparableCritic, make_baseline, make_critic  # noqa: F401
    from .estimate import MIEstimate, estimate_mi  # noqa: F401
    from .utils import resolve_device  # noqa: F401
