"""The peer programs vbmi is timed against: plain PyTorch written the way the reference notebook works.

google-research ``vbmi/vbmi_demo.ipynb`` trains one critic at a time: one model, one Adam, a Python
loop over steps, the joint ("concat") critic evaluated on K^2 tiled-and-concatenated pairs. These are
PyTorch transcriptions of that style (rows x, columns y, as everywhere in vbmi), deliberately not
using vbmi's modules, so a comparison measures vbmi against what a user would write by hand. The
Monte Carlo peer evaluates the optimal-critic bounds one batch at a time in a Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor


def plain_mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, out_dim))


class PlainSeparable(nn.Module):
    """Notebook ``SeparableCritic``: ``g(x) @ h(y).T`` (rows x)."""

    def __init__(self, dim: int, hidden: int, layers: int, embed: int) -> None:
        super().__init__()
        self.g = plain_mlp(dim, hidden, layers, embed)
        self.h = plain_mlp(dim, hidden, layers, embed)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T  # [K, K]


class PlainConcat(nn.Module):
    """Notebook ``ConcatCritic``: tile x and y, concatenate all K^2 pairs, one MLP (rows x)."""

    def __init__(self, dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.f = plain_mlp(2 * dim, hidden, layers, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        k = x.shape[0]
        x_tiled = x[:, None, :].expand(k, k, -1)  # [K, K, d]: x_i along rows
        y_tiled = y[None, :, :].expand(k, k, -1)  # [K, K, d]: y_j along columns
        pairs = torch.cat([x_tiled, y_tiled], dim=-1).reshape(k * k, -1)  # [K^2, 2d]
        return self.f(pairs).reshape(k, k)


def plain_critic(kind: str, dim: int, hidden: int, layers: int, embed: int) -> nn.Module:
    if kind == "separable":
        return PlainSeparable(dim, hidden, layers, embed)
    if kind == "joint":
        return PlainConcat(dim, hidden, layers)
    raise ValueError(f"unknown critic {kind!r}; valid: separable, joint")


def load_from_vbmi(plain: nn.Module, critic: nn.Module) -> nn.Module:
    """Copy a single (non-ensemble) vbmi critic's weights into the plain critic of the same shape."""
    state = critic.state_dict()
    if isinstance(plain, PlainConcat):  # vbmi: first + rest; plain: one Sequential f
        n_rest = len([k for k in state if k.startswith("rest.") and k.endswith(".weight")])
        mapped = {"f.0.weight": state["first.weight"], "f.0.bias": state["first.bias"]}
        for i in range(n_rest):
            mapped[f"f.{2 * (i + 1)}.weight"] = state[f"rest.{2 * i}.weight"]
            mapped[f"f.{2 * (i + 1)}.bias"] = state[f"rest.{2 * i}.bias"]
        state = mapped
    plain.load_state_dict(state)
    return plain


def plain_nce(scores: Tensor) -> Tensor:
    """InfoNCE written out: ``mean_j [f(x_j, y_j) - logsumexp_i f(x_i, y_j)] + log K`` (rows x)."""
    k = scores.shape[0]
    return (torch.diagonal(scores) - torch.logsumexp(scores, dim=0)).mean() + math.log(k)


def plain_train(critic: nn.Module, xs: Tensor, ys: Tensor, *, lr: float) -> Tensor:
    """Train one critic on batches ``xs[s], ys[s]`` (``[S, K, d]``) as the notebook does; returns the S estimates."""
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    estimates = []
    for x, y in zip(xs, ys):
        mi = plain_nce(critic(x, y))
        loss = -mi
        opt.zero_grad()
        loss.backward()
        opt.step()
        estimates.append(mi.detach())
    return torch.stack(estimates)


def plain_train_each(critics: list[nn.Module], xs: Tensor, ys: Tensor, *, lr: float) -> Tensor:
    """Train E critics one after another (``xs: [E, S, K, d]``); returns ``[E, S]`` estimates."""
    return torch.stack([plain_train(c, x, y, lr=lr) for c, x, y in zip(critics, xs, ys)])


# --------------------------------------------------------------------------------------------------
# Optimal-critic Monte Carlo, one batch at a time
# --------------------------------------------------------------------------------------------------
def _lme_offdiag(s: Tensor) -> Tensor:
    k = s.shape[0]
    off = s[~torch.eye(k, dtype=torch.bool, device=s.device)]
    return torch.logsumexp(off, 0) - math.log(k * (k - 1))


def plain_four_bounds(log_p: Tensor, log_py: Tensor, alpha: float) -> Tensor:
    """NWJ, NCE, I_alpha, JS(-critic NWJ) of one batch with the optimal critics, written out plainly.

    ``log_p[i, j] = log p(y_j | x_i)``, ``log_py[j] = log p(y_j)``. Optimal critics: NWJ ``1 + log p/p(y)``,
    NCE ``log p``, I_alpha ``log p`` with ``q = p(y)``; the JS value is NWJ on ``1 + V`` with the optimal
    discriminator ``V = log p/p(y)`` (so equal to NWJ here; it is computed anyway, as the MC does).
    I_alpha's leave-one-out mixture is formed explicitly for every held-out k (O(K^3), the obvious loop).
    """
    k = log_p.shape[0]
    ratio = log_p - log_py[None, :]
    nwj = torch.diagonal(1 + ratio).mean() - torch.exp(_lme_offdiag(1 + ratio) - 1)
    js = torch.diagonal(1 + ratio).mean() - torch.exp(_lme_offdiag(1 + ratio) - 1)
    nce = (torch.diagonal(log_p) - torch.logsumexp(log_p, 0)).mean() + math.log(k)
    # log m(y_j; x_{-k}) for each held-out k: logsumexp over i != k down column j.
    eye = torch.eye(k, dtype=torch.bool, device=log_p.device)
    loo = torch.stack([torch.logsumexp(log_p[~eye[kk]], 0) for kk in range(k)]) - math.log(k - 1)  # [K(k), K(j)]
    log_den = torch.logaddexp(math.log(alpha) + loo, math.log1p(-alpha) + log_py[None, :])
    joint = torch.diagonal(log_p).mean() - log_den[~eye].mean()
    marginal = torch.exp(_lme_offdiag(log_p - torch.diagonal(log_den)[None, :]))
    interp = 1 + joint - marginal
    return torch.stack([nwj, nce, interp, js])
