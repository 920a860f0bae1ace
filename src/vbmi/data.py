"""Samplers with known mutual information (Appendix B and Sec. 3 of the paper).

Every sampler takes an explicit ``torch.Generator`` (or an int seed); nothing reads global RNG state.
Leading dims of ``rho`` / ``mi`` are independent problems: a ``[E]`` tensor of correlations draws
``[E, n, d]`` samples in one call.

* Correlated Gaussian (App. B): ``x ~ N(0, I_d)``, ``y = rho x + sqrt(1 - rho^2) eps``, per-dimension
  correlation rho, ``I(X; Y) = -d/2 log(1 - rho^2)``.
* Cubic variant (Sec. 3): ``y -> (W y)^3`` with ``W`` full rank, fed to the critics through ``asinh``
  (an invertible elementwise map that tames the cube's heavy tails, :class:`CubicTransform`); same MI.
* MI staircase (Fig. 2): 2, 4, 6, 8, 10 nats, a fixed number of steps per level.
* Encoder family (Sec. 3, Fig. 4): ``p_rho(y_i | x_i) = N(rho_i x_i, 1 - rho_i^2)``, one rho per dimension,
  ``I = -1/2 sum_i log(1 - rho_i^2)`` and ``dI/drho_i = rho_i / (1 - rho_i^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .utils import as_generator

__all__ = [
    "mi_to_rho",
    "rho_to_mi",
    "sample_gaussian",
    "gaussian_log_p_y_given_x",
    "gaussian_log_p_y",
    "CubicTransform",
    "mi_schedule",
    "MI_LEVELS",
    "encoder_mi",
    "encoder_mi_grad",
    "sample_encoder",
]

MI_LEVELS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
"""The paper's staircase for Fig. 2 (nats)."""


def _as_tensor(v: float | Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    return v if isinstance(v, Tensor) else torch.as_tensor(v, dtype=dtype)


def mi_to_rho(mi: float | Tensor, d: int = 20) -> Tensor:
    """Per-dimension correlation giving total MI ``mi`` (nats) in ``d`` dims: ``sqrt(1 - exp(-2 I / d))``."""
    mi = _as_tensor(mi)
    if bool(torch.any(mi < 0)):
        raise ValueError("mutual information must be >= 0")
    return torch.sqrt(-torch.expm1(-2.0 * mi / d))


def rho_to_mi(rho: float | Tensor, d: int = 20) -> Tensor:
    """Total MI (nats) of ``d`` independent dims with correlation ``rho``: ``-d/2 log(1 - rho^2)``."""
    rho = _as_tensor(rho)
    if bool(torch.any(rho.abs() >= 1)):
        raise ValueError("|rho| must be < 1")
    return -0.5 * d * torch.log1p(-rho**2)


def _rho_from(rho: float | Tensor | None, mi: float | Tensor | None, d: int, dtype: torch.dtype) -> Tensor:
    if (rho is None) == (mi is None):
        raise ValueError("give exactly one of rho or mi")
    r = mi_to_rho(mi, d) if rho is None else _as_tensor(rho)
    if bool(torch.any(r.abs() >= 1)):
        raise ValueError("|rho| must be < 1")
    return r.to(dtype)


def sample_gaussian(
    n: int,
    *,
    rho: float | Tensor | None = None,
    mi: float | Tensor | None = None,
    d: int = 20,
    generator: torch.Generator | int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` pairs from the correlated Gaussian of Appendix B.

    ``rho`` (or ``mi``) may be a tensor of shape ``[...]``; returns ``x, y`` of shape ``[..., n, d]``.
    The generator must live on ``device``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = as_generator(generator, device)
    r = _rho_from(rho, mi, d, dtype).to(device)
    shape = tuple(r.shape) + (n, d)
    x = torch.randn(shape, generator=g, dtype=dtype, device=device)
    eps = torch.randn(shape, generator=g, dtype=dtype, device=device)
    r = r.view(r.shape + (1, 1))
    y = r * x + torch.sqrt(1.0 - r**2) * eps
    return x, y


def gaussian_log_p_y_given_x(x: Tensor, y: Tensor, rho: float | Tensor, *, per_dim: bool = False) -> Tensor:
    """Exact ``log p(y_j | x_i)`` matrix ``[..., K, K]`` for the correlated Gaussian.

    ``rho``: one correlation per problem (scalar or ``[...]``), or with ``per_dim=True`` one per
    dimension, ``[..., d]`` (the encoder family of Sec. 3). This is the optimal InfoNCE critic;
    ``log p(y|x) - log p(y)`` (+1 for NWJ) is the optimal density ratio. Computed as a matrix product
    (one K x K x d pass); use float64 where the rows' squared norms are large.
    """
    rho = _as_tensor(rho, x.dtype).to(device=x.device, dtype=x.dtype)
    d = x.shape[-1]
    if not per_dim:
        rho = rho.unsqueeze(-1)  # [..., 1], same for every dim
    elif rho.shape[-1] != d:
        raise ValueError(f"per_dim rho must have last dim d = {d}, got {tuple(rho.shape)}")
    rho = rho.unsqueeze(-2)  # [..., 1, d or 1]
    var = 1.0 - rho**2
    xs = x * rho / torch.sqrt(var)  # [..., K, d]: scaled means
    ys = y / torch.sqrt(var)  # [..., K, d]
    sq = (xs**2).sum(-1).unsqueeze(-1) + (ys**2).sum(-1).unsqueeze(-2) - 2.0 * xs @ ys.transpose(-1, -2)
    log_norm = 0.5 * torch.log(2 * math.pi * var).expand(var.shape[:-1] + (d,)).sum(-1, keepdim=True)
    return -0.5 * sq.clamp_min(0.0) - log_norm  # [..., K, K]: row i = x_i, column j = y_j


def gaussian_log_p_y(y: Tensor) -> Tensor:
    """``log p(y_j)`` ``[..., K]``: the marginal of y is ``N(0, I)`` for every rho."""
    d = y.shape[-1]
    return -0.5 * (y**2).sum(-1) - 0.5 * d * math.log(2 * math.pi)


@dataclass
class CubicTransform:
    """``y -> asinh((W y)^3)`` with ``W_ij ~ N(0, weight_std^2)`` (d x d), drawn from ``seed`` and checked to
    be full rank.

    ``y -> (W y)^3`` is the task of Sec. 3 (Fig. 2 bottom); ``asinh`` is applied elementwise on top of it
    (``squash="asinh"``, the default). Both maps are invertible, so ``I(X; asinh((W Y)^3)) = I(X; Y)``
    exactly (:meth:`invert` recovers ``y``). Why the squash: with ``(W y)_k ~ N(0, 1)`` (any scale: the shape is the
    same) the cube has variance 15 and kurtosis 10395 / 15^2 = 46, so a batch of 64 x 20 entries typically holds one of
    |(W y)_k^3| ~ 35 (9 standard deviations). A ReLU critic is piecewise linear in its input, so those
    rare negatives get scores far outside those of the positives, and one such pair decides every
    ``E_q[exp f]`` term: at the notebook's settings the JS, MINE, TUBA and NWJ estimates on the raw cube
    fall to -1e3 ... -1e8 nats while max |f| reaches thousands, and rescaling W (a linear map, same
    kurtosis) or a smaller learning rate does not cure JS. ``asinh`` behaves like the cube near 0 and
    like ``3 log|z|`` in the tails (|asinh(z^3)| < 6 for |z| < 4.6; kurtosis 46 -> 4.7 at unit-variance
    z), so every bound stays finite and learns.
    ``squash="none"`` gives the raw cube.
    """

    d: int = 20
    seed: int = 0
    max_condition: float = 1e4
    # Std of W's entries: the paper's caption says 1 (the pipeline's choice); then (W y)_k ~ N(0, d) and the raw
    # cube reaches |y| ~ 3e3 at d = 20, while its asinh stays below ~10. Any nonzero std leaves I(X; Y) unchanged.
    weight_std: float = 1.0
    # Elementwise invertible map applied to the cube before the critic sees it: "asinh" or "none".
    squash: str = "asinh"

    def __post_init__(self) -> None:
        if self.squash not in ("asinh", "none"):
            raise ValueError(f"unknown squash {self.squash!r}; valid: asinh, none")
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(100):
            w = self.weight_std * torch.randn(self.d, self.d, generator=g, dtype=torch.float64)
            if torch.linalg.cond(w) < self.max_condition:
                self.weight = w
                return
        raise RuntimeError(f"no well-conditioned W found for seed {self.seed}")

    def cube(self, y: Tensor) -> Tensor:
        """The paper's ``(W y)^3`` elementwise, ``[..., K, d]``."""
        w = self.weight.to(device=y.device, dtype=y.dtype)
        return (y @ w.T) ** 3

    def __call__(self, y: Tensor) -> Tensor:
        z = self.cube(y)  # [..., K, d]
        return torch.asinh(z) if self.squash == "asinh" else z

    def invert(self, out: Tensor) -> Tensor:
        """``y`` from ``self(y)`` (float64 advised): undo the squash, the cube root, then ``W``."""
        z = torch.sinh(out) if self.squash == "asinh" else out
        wy = torch.sign(z) * z.abs() ** (1.0 / 3.0)
        w = self.weight.to(device=out.device, dtype=out.dtype)
        return torch.linalg.solve(w, wy.transpose(-1, -2)).transpose(-1, -2)


def mi_schedule(steps_per_level: int, levels: Sequence[float] = MI_LEVELS) -> Tensor:
    """True MI at every training step for the staircase (``len(levels) * steps_per_level`` steps)."""
    if steps_per_level < 1:
        raise ValueError("steps_per_level must be >= 1")
    return torch.as_tensor(list(levels), dtype=torch.float64).repeat_interleave(steps_per_level)


def encoder_mi(rho: Tensor) -> Tensor:
    """``I(X; Y) = -1/2 sum_i log(1 - rho_i^2)`` for the encoder family (rho: ``[..., d]``)."""
    return -0.5 * torch.log1p(-rho**2).sum(-1)


def encoder_mi_grad(rho: Tensor) -> Tensor:
    """Analytic ``dI/drho_i = rho_i / (1 - rho_i^2)`` (``[..., d]``)."""
    return rho / (1.0 - rho**2)


def sample_encoder(
    n: int, rho: Tensor, *, generator: torch.Generator | int
) -> tuple[Tensor, Tensor]:
    """Reparameterised draw from ``p(x) p_rho(y|x)``: ``x ~ N(0, I)``, ``y = rho x + sqrt(1 - rho^2) eps``.

    ``y`` is differentiable in ``rho`` (``[..., d]``); returns ``x, y`` of shape ``[..., n, d]``.
    """
    g = as_generator(generator, rho.device)
    shape = rho.shape[:-1] + (n, rho.shape[-1])
    x = torch.randn(shape, generator=g, dtype=rho.dtype, device=rho.device)
    eps = torch.randn(shape, generator=g, dtype=rho.dtype, device=rho.device)
    r = rho.unsqueeze(-2)
    return x, r * x + torch.sqrt(1.0 - r**2) * eps
