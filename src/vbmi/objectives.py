"""A bound plus whatever it learns or carries besides the critic: baseline ``q(y)``, MINE's EMA.

:class:`BoundObjective` turns a registry name into ``objective(scores, y) -> estimate`` (shape
``scores.shape[:-2]``) that a trainer maximises. It owns

* the learned baseline (``log a(y)`` for TUBA, ``log q(y)`` for I_alpha and its product variant,
  reparameterised NWJ and the variational upper bound), built from :mod:`vbmi.critics`;
* MINE's state: ``mine_log_ema``, a persistent buffer (so it is in ``state_dict`` and checkpoints)
  holding the log of the exponential moving average of the partition estimate; NaN until the first
  training batch. It is updated only in training mode, before the bound is evaluated, as in MINE.

The estimate carries the gradient of the bound's training objective (see :mod:`vbmi.bounds`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .bounds import BOUNDS, mine_ema_update
from .critics import make_baseline

__all__ = ["BoundObjective", "DEFAULT_BASELINE"]

DEFAULT_BASELINE: dict[str, str] = {
    "tuba": "mlp",
    "interpolated": "mlp",
    "interpolated_product": "mlp",
    # Eq. 14 only has to learn the marginal q(y) (App. C.1: "highly accurate as it only has to learn the
    # marginal"); a diagonal Gaussian family is that marginal's natural model where y is a Gaussian or a
    # stochastic representation. A 2 x 512 MLP q, fed the heavy-tailed gradient of E_p(y)[E_p(x) p(y|x)/q(y)],
    # drifts away from the marginal at high MI (to ~0.1 nats at 10 nats in the default sweep).
    "nwj_reparam": "gaussian",
    "variational_upper": "gaussian",  # Eq. 1 needs a normalised q(y)
}
"""Baseline each bound learns by default; the MLP is the reference notebook's 2 x 512 ReLU."""


class BoundObjective(nn.Module):
    """``forward(scores, y)``: the bound ``name`` on ``scores`` (``[..., K, K]``), its baseline fed ``y``.

    Args:
        name: a key of :data:`vbmi.bounds.BOUNDS`.
        y_dim: dimension of y (needed when the bound learns a baseline).
        alpha: for the interpolated bounds (float in [0, 1]).
        baseline: ``constant``, ``mlp`` or ``gaussian``; default per :data:`DEFAULT_BASELINE`.
        baseline_kwargs: passed to the baseline (e.g. ``hidden``, ``layers``).
        ensemble: E for batched ensembles (scores ``[E, K, K]``, y ``[E, K, dy]``). MINE's EMA has one
            entry per member, so MINE takes scores ``[K, K]`` (single) or ``[E, K, K]`` (ensemble).
        generator: initialises the baseline's weights.
        mine_decay: EMA decay for MINE (0.99 as in Belghazi et al.).
        tau: SMILE's clip.
    """

    def __init__(self, name: str, *, y_dim: int | None = None, alpha: float | None = None,
                 baseline: str | None = None, baseline_kwargs: dict | None = None, ensemble: int | None = None,
                 generator: torch.Generator | None = None, mine_decay: float = 0.99, tau: float = 5.0) -> None:
        super().__init__()
        self.bound = BOUNDS[name]  # unknown names raise ValueError listing the valid ones
        self.name = name
        if self.bound.input not in ("scores", "log_p"):
            raise ValueError(f"bound '{name}' takes {self.bound.input}, not a critic's score matrix; "
                             "call vbmi.bounds directly")
        if self.bound.takes_alpha:
            if alpha is None:
                raise ValueError(f"bound '{name}' needs alpha in [0, 1]")
            if not 0.0 <= float(alpha) <= 1.0:
                raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        elif alpha is not None:
            raise ValueError(f"bound '{name}' takes no alpha")
        self.alpha = alpha
        self.tau = tau
        self.mine_decay = mine_decay
        needs = self.bound.baseline == "required" and name != "mine"
        needs = needs or (self.bound.baseline == "optional" and alpha is not None and alpha < 1)
        self.baseline: nn.Module | None = None
        if needs:
            kind = baseline or DEFAULT_BASELINE[name]
            if y_dim is None:
                raise ValueError(f"bound '{name}' learns a baseline q(y): pass y_dim")
            self.baseline = make_baseline(kind, y_dim, ensemble=ensemble, generator=generator, **(baseline_kwargs or {}))
        elif baseline is not None:
            raise ValueError(f"bound '{name}' (alpha={alpha}) uses no baseline, got baseline={baseline!r}")
        self.register_buffer("mine_log_ema", torch.full((ensemble,) if ensemble else (), float("nan")))

    def forward(self, scores: Tensor, y: Tensor | None = None) -> Tensor:
        kw: dict = {}
        if self.baseline is not None:
            if y is None:
                raise ValueError(f"bound '{self.name}' needs y to evaluate its baseline")
            kw["log_baseline"] = self.baseline(y)  # [..., K]
        if self.bound.takes_alpha:
            kw["alpha"] = self.alpha
        if self.name == "mine":
            if scores.shape[:-2] != self.mine_log_ema.shape:
                raise ValueError(f"MINE's EMA holds shape {tuple(self.mine_log_ema.shape)} (ensemble="
                                 f"{self.mine_log_ema.numel() if self.mine_log_ema.ndim else None}); "
                                 f"got scores {tuple(scores.shape)}")
            # One partition estimate per step, no host sync: mine_ema_update starts members whose
            # EMA is still NaN from this batch and leaves the others' state alone.
            if self.training:
                new = mine_ema_update(self.mine_log_ema, scores, decay=self.mine_decay)
                self.mine_log_ema = new.to(self.mine_log_ema.dtype)
                log_a = new.to(scores.dtype)
            else:  # evaluation: the stored EMA; members never trained use this batch's estimate
                log_a = mine_ema_update(self.mine_log_ema, scores, decay=0.0).to(scores.dtype)
                log_a = torch.where(torch.isnan(self.mine_log_ema), log_a, self.mine_log_ema.to(scores.dtype))
            kw["log_baseline"] = log_a.unsqueeze(-1)  # [..., 1] broadcasts over columns
        if self.name == "smile":
            kw["tau"] = self.tau
        return self.bound(scores, **kw)
