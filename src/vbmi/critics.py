"""Critics ``f(x, y)`` and baselines ``log a(y)`` / ``log q(y)`` as small ``nn.Module`` s.

Every critic maps ``x: [..., K, dx]`` and ``y: [..., K, dy]`` to ``scores: [..., K, K]`` with
``scores[..., i, j] = f(x_i, y_j)`` (rows x, columns y; see :mod:`vbmi.bounds`). Every baseline maps
``y: [..., K, dy]`` to ``[..., K]``.

Ensembles: pass ``ensemble=E`` to hold E independent critics as batched weights (``[E, in, out]``,
applied with ``torch.baddbmm``); inputs then carry a leading ``E`` dim (``x: [E, K, dx]``) and E
configurations train in one forward/backward. :func:`stack_modules` builds an ensemble whose member e
is exactly a given single module (same weights), which is how "ensemble == individual runs" is tested.

Weights are initialised like ``nn.Linear`` (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) from an explicit
``generator`` when one is given. No module calls ``.cuda()``: move it with ``.to(device)``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = [
    "ACTIVATIONS",
    "BatchedLinear",
    "mlp",
    "SeparableCritic",
    "JointCritic",
    "ConditionalCritic",
    "GaussianConditionalCritic",
    "ConstantBaseline",
    "MLPBaseline",
    "GaussianBaseline",
    "stack_modules",
    "unstack_module",
    "CRITICS",
    "BASELINES",
    "check_critic_name",
    "make_critic",
    "make_baseline",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except (KeyError, AttributeError):
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None


def _check_positive(**kw: int) -> None:
    for k, v in kw.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{k} must be a positive int, got {v!r}")


class BatchedLinear(nn.Module):
    """E independent linear maps: ``x: [E, N, in] -> [E, N, out]`` (``weight: [E, in, out]``)."""

    def __init__(self, ensemble: int, in_features: int, out_features: int, bias: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.ensemble, self.in_features, self.out_features = ensemble, in_features, out_features
        self.weight = nn.Parameter(torch.empty(ensemble, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble, 1, out_features)) if bias else None
        bound = 1.0 / math.sqrt(in_features)
        with torch.no_grad():
            nn.init.uniform_(self.weight, -bound, bound, generator=generator)
            if self.bias is not None:
                nn.init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape  # [E, ..., in]
        x2 = x.reshape(shape[0], -1, shape[-1])  # [E, N, in]
        out = torch.bmm(x2, self.weight) if self.bias is None else torch.baddbmm(self.bias, x2, self.weight)
        return out.reshape(shape[:-1] + (self.out_features,))

    def extra_repr(self) -> str:
        return f"ensemble={self.ensemble}, in_features={self.in_features}, out_features={self.out_features}"


def _linear(in_f: int, out_f: int, ensemble: int | None, generator: torch.Generator | None, bias: bool = True) -> nn.Module:
    if ensemble is not None:
        return BatchedLinear(ensemble, in_f, out_f, bias=bias, generator=generator)
    if generator is None:
        return nn.Linear(in_f, out_f, bias=bias)  # torch's default init (global RNG)
    # skip_init: no draw from the global RNG before the seeded re-initialisation below.
    lin = torch.nn.utils.skip_init(nn.Linear, in_f, out_f, bias=bias)
    bound = 1.0 / math.sqrt(in_f)
    with torch.no_grad():
        nn.init.uniform_(lin.weight, -bound, bound, generator=generator)
        if bias:
            nn.init.uniform_(lin.bias, -bound, bound, generator=generator)
    return lin


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, activation: str = "relu", *,
        ensemble: int | None = None, generator: torch.Generator | None = None) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` units with ``activation``, then a linear map to ``out_dim``.

    ``layers = 0`` is a single linear map. With ``ensemble=E`` every linear map is a :class:`BatchedLinear`.
    """
    _check_positive(in_dim=in_dim, hidden=hidden, out_dim=out_dim)
    if not isinstance(layers, int) or layers < 0:
        raise ValueError(f"layers must be an int >= 0, got {layers!r}")
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [_linear(d, hidden, ensemble, generator), _activation(activation)]
        d = hidden
    mods.append(_linear(d, out_dim, ensemble, generator))
    return nn.Sequential(*mods)


class _Configured(nn.Module):
    """Keeps the constructor kwargs in ``self.config`` so :func:`stack_modules` can rebuild a module."""

    config: dict

    def _remember(self, **config) -> None:
        self.config = dict(config)


class SeparableCritic(_Configured):
    """``f(x, y) = g(x)^T h(y)`` (van den Oord et al. 2018): 2K network passes per batch.

    Defaults follow the reference setting: 2 hidden layers of 256 ReLU units, embedding 32.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 256, layers: int = 2, embed_dim: int = 32,
                 activation: str = "relu", *, ensemble: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._remember(x_dim=x_dim, y_dim=y_dim, hidden=hidden, layers=layers, embed_dim=embed_dim,
                       activation=activation)
        self.ensemble = ensemble
        self.g = mlp(x_dim, hidden, layers, embed_dim, activation, ensemble=ensemble, generator=generator)
        self.h = mlp(y_dim, hidden, layers, embed_dim, activation, ensemble=ensemble, generator=generator)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gx = self.g(x)  # [..., K, embed]
        hy = self.h(y)  # [..., K, embed]
        return gx @ hy.transpose(-1, -2)  # [..., K, K]: rows x_i, columns y_j


class JointCritic(_Configured):
    """Joint critic ``f(x, y) = MLP([x, y])`` (Belghazi et al. 2018) on all K^2 pairs (the reference
    notebook's "concat" critic).

    The first layer is computed as ``W_x x_i + W_y y_j + b`` broadcast over pairs, exactly equal to the
    MLP on the concatenation but without materialising K^2 concatenated rows. Rows of the score matrix
    are evaluated in chunks of at most ``max_chunk_elements`` hidden activations; when gradients are
    needed each chunk is checkpointed (recomputed in backward), so memory stays bounded at batch 512.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 256, layers: int = 2, activation: str = "relu", *,
                 ensemble: int | None = None, generator: torch.Generator | None = None,
                 max_chunk_elements: int | None = 2**24) -> None:
        super().__init__()
        _check_positive(layers=layers)
        self._remember(x_dim=x_dim, y_dim=y_dim, hidden=hidden, layers=layers, activation=activation,
                       max_chunk_elements=max_chunk_elements)
        self.ensemble = ensemble
        self.x_dim, self.hidden = x_dim, hidden
        # First layer on the concatenation [x, y], stored as one map and split at use.
        self.first = _linear(x_dim + y_dim, hidden, ensemble, generator)
        self.act = _activation(activation)
        self.rest = mlp(hidden, hidden, layers - 1, 1, activation, ensemble=ensemble, generator=generator)
        self.max_chunk_elements = max_chunk_elements

    def _split_first(self) -> tuple[Tensor, Tensor, Tensor]:
        if self.ensemble is None:
            w = self.first.weight  # [H, dx + dy]
            return w[:, : self.x_dim].T, w[:, self.x_dim:].T, self.first.bias  # [dx, H], [dy, H], [H]
        w = self.first.weight  # [E, dx + dy, H]
        return w[:, : self.x_dim], w[:, self.x_dim:], self.first.bias  # [E, dx, H], [E, dy, H], [E, 1, H]

    def _rows(self, hx: Tensor, hy: Tensor) -> Tensor:
        pre = hx.unsqueeze(-2) + hy.unsqueeze(-3)  # [..., c, K, H]
        return self.rest(self.act(pre)).squeeze(-1)  # [..., c, K]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        wx, wy, b = self._split_first()
        if self.ensemble is not None and x.ndim > 3:  # [E, ..., K, d]: align E with dim 0
            extra = (1,) * (x.ndim - 3)
            wx, wy, b = (t.view(t.shape[:1] + extra + t.shape[1:]) for t in (wx, wy, b))
        hx = x @ wx + b  # [..., K, H] (bias folded into the x half)
        hy = y @ wy  # [..., K, H]
        k = x.shape[-2]
        lead = math.prod(x.shape[:-2])
        per_row = max(1, lead * k * self.hidden)
        chunk = k if self.max_chunk_elements is None else max(1, self.max_chunk_elements // per_row)
        if chunk >= k:
            return self._rows(hx, hy)  # [..., K, K]
        use_ckpt = torch.is_grad_enabled() and (hx.requires_grad or hy.requires_grad)
        outs = []
        for start in range(0, k, chunk):
            part = hx[..., start:start + chunk, :]
            outs.append(checkpoint(self._rows, part, hy, use_reentrant=False) if use_ckpt else self._rows(part, hy))
        return torch.cat(outs, dim=-2)  # [..., K, K]

    def pairs(self, x: Tensor, y: Tensor) -> Tensor:
        """``f(x_n, y_n)`` for aligned pairs ``x: [..., N, dx]``, ``y: [..., N, dy]`` -> ``[..., N]``,
        by running the MLP on the literal concatenation (the reference the broadcast form must equal)."""
        h = self.first(torch.cat([x, y], dim=-1))
        return self.rest(self.act(h)).squeeze(-1)


class ConditionalCritic(nn.Module):
    """Critic given by a known conditional: ``f(x_i, y_j) = log p(y_j | x_i)`` from ``log_prob(x, y)``."""

    def __init__(self, log_prob: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.log_prob = log_prob

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.log_prob(x, y)  # [..., K, K]


class GaussianConditionalCritic(ConditionalCritic):
    """Exact ``log p(y|x)`` of the correlated Gaussian (optimal InfoNCE critic; Sec. 3, Fig. 3)."""

    def __init__(self, rho: float | Tensor, *, per_dim: bool = False) -> None:
        from .data import gaussian_log_p_y_given_x

        super().__init__(lambda x, y: gaussian_log_p_y_given_x(x, y, self.rho, per_dim=per_dim))
        self.rho = rho if isinstance(rho, Tensor) else torch.as_tensor(rho, dtype=torch.float64)  # cast to x.dtype at use


class ConstantBaseline(_Configured):
    """A learned constant ``log a`` (one per ensemble member): ``[..., K]`` of the same value."""

    def __init__(self, init: float = 0.0, *, ensemble: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._remember(init=init)
        self.ensemble = ensemble
        self.log_a = nn.Parameter(torch.full((ensemble, 1) if ensemble else (), float(init)))

    def forward(self, y: Tensor) -> Tensor:
        if self.ensemble is None:
            return self.log_a.expand(y.shape[:-1])
        return self.log_a.view((self.ensemble,) + (1,) * (y.ndim - 2)).expand(y.shape[:-1])  # [E, ..., K]


class MLPBaseline(_Configured):
    """Unnormalised ``log q(y)`` (or ``log a(y)``) as an MLP of y."""

    def __init__(self, y_dim: int, hidden: int = 512, layers: int = 2, activation: str = "relu", *,
                 ensemble: int | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._remember(y_dim=y_dim, hidden=hidden, layers=layers, activation=activation)
        self.ensemble = ensemble
        self.net = mlp(y_dim, hidden, layers, 1, activation, ensemble=ensemble, generator=generator)

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y).squeeze(-1)  # [..., K]


class GaussianBaseline(_Configured):
    """Normalised diagonal-Gaussian ``log q(y)`` with learned mean and log-scale (for Eq. 1 / Eq. 14)."""

    def __init__(self, y_dim: int, *, ensemble: int | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self._remember(y_dim=y_dim)
        self.ensemble = ensemble
        shape = (ensemble, 1, y_dim) if ensemble else (y_dim,)
        self.mean = nn.Parameter(torch.zeros(shape))
        self.log_scale = nn.Parameter(torch.zeros(shape))

    def forward(self, y: Tensor) -> Tensor:
        mean, log_scale = self.mean, self.log_scale
        if self.ensemble is not None and y.ndim > 3:  # [E, ..., K, d]
            view = (self.ensemble,) + (1,) * (y.ndim - 2) + (y.shape[-1],)
            mean, log_scale = mean.view(view), log_scale.view(view)
        z = (y - mean) * torch.exp(-log_scale)
        return (-0.5 * z**2 - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)  # [..., K]


CRITICS: dict[str, type[nn.Module]] = {"separable": SeparableCritic, "joint": JointCritic}
_RENAMED_CRITICS = {"concat": "joint"}  # former name -> name, named in the error
BASELINES: dict[str, type[nn.Module]] = {"constant": ConstantBaseline, "mlp": MLPBaseline, "gaussian": GaussianBaseline}


def check_critic_name(name: str) -> None:
    """``ValueError`` unless ``name`` is a critic; a former name is answered with the current one."""
    if name in CRITICS:
        return
    hint = f" ({name!r} is now called {_RENAMED_CRITICS[name]!r})" if name in _RENAMED_CRITICS else ""
    raise ValueError(f"unknown critic {name!r}{hint}; valid: {', '.join(CRITICS)}")


def make_critic(name: str, x_dim: int, y_dim: int, **kwargs) -> nn.Module:
    """Build a critic by name (``separable`` or ``joint``); unknown names raise ``ValueError``."""
    check_critic_name(name)
    if name == "separable" or "embed_dim" not in kwargs:
        return CRITICS[name](x_dim, y_dim, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "embed_dim"}  # joint critics have no embedding
    return CRITICS[name](x_dim, y_dim, **kwargs)


def make_baseline(name: str, y_dim: int, **kwargs) -> nn.Module:
    """Build a baseline by name (``constant``, ``mlp``, ``gaussian``); unknown names raise ``ValueError``."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    if name == "constant":
        return ConstantBaseline(**{k: v for k, v in kwargs.items() if k in ("init", "ensemble", "generator")})
    if name == "gaussian":
        return GaussianBaseline(y_dim, **{k: v for k, v in kwargs.items() if k in ("ensemble", "generator")})
    return MLPBaseline(y_dim, **kwargs)


def stack_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """An ensemble module whose member e has exactly the weights of ``modules[e]``.

    All modules must be the same class with the same ``config``; single ``nn.Linear`` weights
    ``[out, in]`` become slices ``[e, in, out]`` of the batched weights.
    """
    if not modules:
        raise ValueError("stack_modules needs at least one module")
    cls, config = type(modules[0]), getattr(modules[0], "config", None)
    if config is None:
        raise TypeError(f"{cls.__name__} cannot be stacked (no .config)")
    for m in modules:
        if type(m) is not cls or m.config != config or getattr(m, "ensemble", None) is not None:
            raise ValueError("stack_modules needs single (non-ensemble) modules of one class and config")
    ref = next(modules[0].parameters())
    with torch.device("meta"):  # no throwaway initialisation (it was ~14% of a short stacked run)
        ens = cls(**config, ensemble=len(modules))
    ens = ens.to_empty(device=ref.device).to(ref.dtype)  # every parameter is overwritten below
    ens_params = dict(ens.named_parameters())
    with torch.no_grad():
        for name, p in ens_params.items():
            singles = [dict(m.named_parameters())[name] for m in modules]
            if p.ndim == 3 and singles[0].ndim == 2:  # Linear weight [out, in] -> [E, in, out]
                p.copy_(torch.stack([s.T for s in singles]))
            else:
                p.copy_(torch.stack(singles).view(p.shape))
    return ens


def unstack_module(ensemble_module: nn.Module, index: int) -> nn.Module:
    """The single module equal to member ``index`` of an ensemble built with ``ensemble=E``."""
    cls, config = type(ensemble_module), ensemble_module.config
    single = cls(**config).to(next(ensemble_module.parameters()))  # same dtype and device
    with torch.no_grad():
        ens_params = dict(ensemble_module.named_parameters())
        for name, p in single.named_parameters():
            q = ens_params[name][index]
            p.copy_(q.T if (p.ndim == 2 and q.ndim == 2 and isinstance(_owner(single, name), nn.Linear)) else q.view(p.shape))
    return single.to(next(ensemble_module.parameters()).device)


def _owner(module: nn.Module, param_name: str) -> nn.Module:
    path = param_name.rsplit(".", 1)[0] if "." in param_name else ""
    return module.get_submodule(path) if path else module
