"""vbmi: the reference implementation of *On Variational Bounds of Mutual Information*
(Poole, Ozair, van den Oord, Alemi, Tucker; ICML 2019) and a practical MI toolkit.

Score convention everywhere: ``scores[..., i, j] = f(x_i, y_j)`` (rows x, columns y, positives on the
diagonal, leading dims independent problems). See :mod:`vbmi.bounds`.
"""

from . import bounds, critics, data
from .bounds import BOUNDS, Bound, get_bound
from .critics import ConcatCritic, SeparableCritic, make_baseline, make_critic
from .utils import resolve_device
from .estimate import MIEstimate, estimate_mi  # front door (issue 2)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bounds",
    "critics",
    "data",
    "BOUNDS",
    "Bound",
    "get_bound",
    "SeparableCritic",
    "ConcatCritic",
    "make_critic",
    "make_baseline",
    "resolve_device",
    "estimate_mi",
    "MIEstimate",
]
