"""The neural path of :func:`vbmi.estimate_mi`: a Gaussian critic fitted in closed form, a learned residual,
training with early stopping, and held-out evaluation with an interval and a permutation test.

The critic is ``f(x, y) = f_G(x, y) + r(x, y)``. ``f_G = log N(y; B x, S) - log N(y; 0, S_yy)`` is the
exact log density ratio of the Gaussian with the training split's (shrunk, possibly reduced-rank)
covariance; after the default normal-score preprocessing it is the *Gaussian-copula* critic, optimal
whenever the data are an invertible per-coordinate transform of a Gaussian. Keeping only the leading
canonical directions removes the noise of the many near-zero sample canonical correlations when the
dependence is low-rank (sparse couplings, or one shared factor), which the validation split decides.

The residual ``r`` (a separable or joint network whose output layer starts at zero, by default on the
squares of its inputs as well: :class:`SquareFeatures`) is trained on the training split to capture
what the Gaussian copula misses; several can be averaged (:class:`MeanCritic`); early stopping on the
validation split (which also scores the Gaussian critic alone, at step 0) keeps it only where it helps
on data it was not fitted to.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .critics import make_critic
from .objectives import BoundObjective

__all__ = ["GaussianCritic", "ResidualCritic", "SquareFeatures", "MeanCritic", "FEATURES", "fit_gaussian_critic",
           "train_critic", "evaluate", "Evaluation"]

FEATURES = ("square", "none")
"""What the residual network sees: ``square`` = ``[z, z * z - 1]`` per side, ``none`` = ``z``."""

SHRINKAGE = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Covariance shrinkage towards the diagonal tried for the Gaussian critic (chosen on validation)."""
RANKS = (1, 2, 4, 8)
"""Canonical directions kept by the reduced-rank Gaussian critics tried (besides the full rank)."""


class GaussianCritic(nn.Module):
    """``f_G(x_i, y_j) = log N(y_j; B x_i, S) - log N(y_j; 0, S_yy)`` from a joint covariance (fixed buffers)."""

    def __init__(self, cov: np.ndarray, dx: int, jitter: float = 1e-6) -> None:
        super().__init__()
        cxx, cxy, cyy = cov[:dx, :dx], cov[:dx, dx:], cov[dx:, dx:]
        b = np.linalg.solve(cxx + jitter * np.eye(dx), cxy).T  # [dy, dx]: E[y|x] = B x
        s = cyy - b @ cxy + jitter * np.eye(cyy.shape[0])  # conditional covariance [dy, dy]
        s = 0.5 * (s + s.T)
        ls = np.linalg.cholesky(np.linalg.inv(s))  # S^{-1} = L L^T
        cyy_j = cyy + jitter * np.eye(cyy.shape[0])
        const = 0.5 * (np.linalg.slogdet(cyy_j)[1] - np.linalg.slogdet(s)[1])
        t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        self.register_buffer("bt", t(b.T))  # [dx, dy]
        self.register_buffer("l", t(ls))  # [dy, dy]
        self.register_buffer("q", t(np.linalg.inv(cyy_j)))  # [dy, dy]
        self.register_buffer("const", t(const))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a = y @ self.l  # [..., K, dy]: whitened y
        b = (x @ self.bt) @ self.l  # [..., K, dy]: whitened conditional mean of y given x_i
        cross = b @ a.transpose(-1, -2)  # [..., K, K]: rows x_i, columns y_j
        col = -0.5 * (a * a).sum(-1) + 0.5 * ((y @ self.q) * y).sum(-1)  # [..., K] terms in y_j only
        row = -0.5 * (b * b).sum(-1)  # [..., K] terms in x_i only
        return cross + row.unsqueeze(-1) + col.unsqueeze(-2) + self.const  # [..., K, K]


class ResidualCritic(nn.Module):
    """``gauss(x, y) + net(x, y)``; ``net``'s output layer starts at zero, so training starts at ``gauss``."""

    def __init__(self, gauss: GaussianCritic | None, net: nn.Module) -> None:
        super().__init__()
        self.gauss, self.net = gauss, net
        inner = net.net if isinstance(net, SquareFeatures) else net
        last = inner.g[-1] if hasattr(inner, "g") else inner.rest[-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out = self.net(x, y)  # [..., K, K]
        return out if self.gauss is None else out + self.gauss(x, y)


class SquareFeatures(nn.Module):
    """``net([x, x*x - 1], [y, y*y - 1])``. After normal scores a dependence through a shared scale (the
    multivariate t) or through the radius (a rotation by an angle that depends on ``|x|``) is a smooth
    function of the squares, which a small network fitted to a few thousand pairs finds far sooner than
    from ``z`` alone; ``z`` is kept, so nothing the plain network could express is lost."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @staticmethod
    def lift(a: Tensor) -> Tensor:
        return torch.cat([a, a * a - 1.0], dim=-1)  # [..., K, 2 d]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.net(self.lift(x), self.lift(y))


class MeanCritic(nn.Module):
    """The mean of several critics' scores: a fixed function like any other, so the held-out bound holds."""

    def __init__(self, critics: list[nn.Module]) -> None:
        super().__init__()
        self.critics = nn.ModuleList(critics)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.stack([c(x, y) for c in self.critics]).mean(0)


def _shrink(cov: np.ndarray, lam: float) -> np.ndarray:
    return (1 - lam) * cov + lam * np.diag(np.diag(cov))


def _sqrt_psd(m: np.ndarray, inverse: bool = False) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    w = np.clip(w, 1e-12, None)
    return (v * (w ** (-0.5 if inverse else 0.5))) @ v.T


def _low_rank(cov: np.ndarray, dx: int, rank: int) -> np.ndarray:
    """``cov`` with its cross block cut to the ``rank`` largest canonical correlations (reduced-rank CCA):
    the exact joint covariance of a Gaussian whose dependence lives in ``rank`` directions."""
    cxx, cyy = cov[:dx, :dx], cov[dx:, dx:]
    ax, ay = _sqrt_psd(cxx, inverse=True), _sqrt_psd(cyy, inverse=True)
    u, r, vt = np.linalg.svd(ax @ cov[:dx, dx:] @ ay)
    cxy = _sqrt_psd(cxx) @ (u[:, :rank] * r[:rank]) @ vt[:rank] @ _sqrt_psd(cyy)
    out = cov.copy()
    out[:dx, dx:], out[dx:, :dx] = cxy, cxy.T
    return out


def fit_gaussian_critic(x_tr: np.ndarray, y_tr: np.ndarray, score) -> tuple[GaussianCritic, float]:
    """Gaussian critic from the training split; the shrinkage of :data:`SHRINKAGE` and the number of
    canonical directions kept (:data:`RANKS` below the full rank) maximising ``score`` (a function
    critic -> validation value) are kept. Returns (critic, shrinkage)."""
    dx = x_tr.shape[1]
    z = np.hstack([x_tr, y_tr])
    cov = np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])
    full = min(dx, y_tr.shape[1])
    best = None
    for lam in SHRINKAGE:
        for rank in [r for r in RANKS if r < full] + [full]:
            shrunk = _shrink(cov, lam)
            c = GaussianCritic(shrunk if rank == full else _low_rank(shrunk, dx, rank), dx)
            v = score(c)
            if best is None or v > best[0]:
                best = (v, lam, c)
    return best[2], best[1]


# ----------------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Evaluation:
    """Held-out values of one fixed critic on one split."""

    value: float
    stderr: float
    batch_size: int
    n_batches: int
    perm_values: np.ndarray  # the same statistic with y permuted (independence baseline)


def _scores(critic: nn.Module, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
    with torch.no_grad():
        return critic(x[idx], y[idx])  # [c, k, k]


def evaluate(critic: nn.Module, objective: BoundObjective, x: Tensor, y: Tensor, k: int, repeats: int,
             g: torch.Generator, n_perm: int = 0) -> Evaluation:
    """The bound on disjoint batches of size ``k`` (``repeats`` random partitions; ``k = n``: one batch).

    For InfoNCE the value is the mean of the per-column terms ``f_jj - log 1/K sum_i exp f_ij`` over all
    batches and partitions, and ``stderr`` their standard deviation over ``sqrt(#columns per partition)``.
    Other bounds: mean over batches, stderr = batch sd / sqrt(batches per partition). ``n_perm``
    permutations of y inside each batch of the first partition give the independence baseline.
    """
    n = x.shape[0]
    nb = n // k
    reps = 1 if nb == 1 else repeats
    perms = torch.stack([torch.randperm(n, generator=g)[: nb * k] for _ in range(reps)]).view(reps * nb, k)
    critic.eval()
    objective.eval()
    try:
        scores = [_scores(critic, x, y, chunk.to(x.device)) for chunk in perms.split(16)]
        s = torch.cat(scores).double()  # [reps*nb, k, k]
        if objective.name == "nce":
            terms = torch.diagonal(s, dim1=-2, dim2=-1) - torch.logsumexp(s, dim=-2) + math.log(k)  # [B, k]
            value, sd = float(terms.mean()), float(terms[:nb].std())
            stderr = sd / math.sqrt(nb * k)
        else:
            with torch.no_grad():
                yb = y[perms.to(y.device)]
                vals = torch.stack([objective(si.to(x.dtype), yi).double() for si, yi in zip(s, yb)])  # [B]
            vals = vals.view(reps, nb)
            value = float(vals.mean())
            stderr = float(vals.var(dim=1, unbiased=True).mean().sqrt()) / math.sqrt(nb) if nb > 1 else float("nan")
        perm_vals = _permutation_values(s[:nb], objective, y, perms[:nb], k, n_perm, g)
    finally:
        critic.train()
        objective.train()
    return Evaluation(value, stderr, k, nb, perm_vals)


def _permutation_values(s: Tensor, objective: BoundObjective, y: Tensor, idx: Tensor, k: int, n_perm: int,
                        g: torch.Generator) -> np.ndarray:
    """The statistic with the columns (y) of every batch permuted: pairs (x_i, y_pi(i)) as 'positives'."""
    if n_perm <= 0:
        return np.zeros(0)
    out = []
    if objective.name == "nce":  # column normalisers do not change under a column permutation
        lse = torch.logsumexp(s, dim=-2)  # [nb, k]
        base = float(lse.mean()) - math.log(k)
        for _ in range(n_perm):
            p = torch.randperm(k, generator=g)
            out.append(float(s[:, torch.arange(k), p].mean()) - base)
        return np.asarray(out)
    with torch.no_grad():
        for _ in range(n_perm):
            p = torch.randperm(k, generator=g)
            vals = [objective(si[:, p].to(y.dtype), y[ii[p].to(y.device)]) for si, ii in zip(s, idx)]
            out.append(float(torch.stack(vals).double().mean()))
    return np.asarray(out)


# ------------------------------------------------------------------------------------------------- training
def build_critic(kind: str, dx: int, dy: int, cfg: dict, gauss: GaussianCritic | None, g: torch.Generator) -> nn.Module:
    ckw = {"hidden": cfg["hidden"], "layers": cfg["layers"], "generator": g,
           "activation": cfg.get("activation", "relu")}
    if kind == "separable":
        ckw["embed_dim"] = cfg["embed_dim"]
    elif cfg["layers"] < 1:
        raise ValueError("the joint critic needs layers >= 1")
    if cfg.get("features", "none") == "square":
        return ResidualCritic(gauss, SquareFeatures(make_critic(kind, 2 * dx, 2 * dy, **ckw)))
    return ResidualCritic(gauss, make_critic(kind, dx, dy, **ckw))


def train_critic(net: nn.Module, objective: BoundObjective, train: tuple[Tensor, Tensor], val_score, *, k: int,
                 max_steps: int, lr: float, weight_decay: float, eval_every: int, patience: int,
                 early_stopping: bool, g: torch.Generator, progress: bool | None) -> dict:
    """Maximise ``objective`` with :class:`vbmi.train.Engine` (one member, AdamW). Every ``eval_every``
    steps a hook records ``val_score()`` (higher is better), keeps the best state (the initial critic,
    step 0, included) and ends training after ``patience`` evaluations without improvement; the best
    state is restored. Returns the history (``step``, ``train``, ``val``, ``steps``, ``best_step``)."""
    from .train import Engine

    x_tr, y_tr = train
    n = x_tr.shape[0]
    params = [p for p in list(net.parameters()) + list(objective.parameters()) if p.requires_grad]
    engine = Engine([], members=1, optimizer=torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay))
    hist: dict[str, list] = {"step": [0], "train": [None], "val": [val_score() if early_stopping else None]}
    st = {"best": (hist["val"][0], 0, _snapshot(net, objective)), "since": 0, "run": [],
          "order": torch.randperm(n, generator=g), "pos": 0, "steps": 0}

    def step_fn(step: int) -> Tensor:
        if st["pos"] + k > n:  # new epoch: reshuffle
            st["order"], st["pos"] = torch.randperm(n, generator=g), 0
        idx = st["order"][st["pos"]:st["pos"] + k].to(x_tr.device)
        st["pos"] += k
        return objective(net(x_tr[idx], y_tr[idx]), y_tr[idx]).reshape(1)  # [E = 1]

    def validate(_engine, step: int, value: Tensor) -> bool:
        step += 1  # steps taken so far
        st["run"].append(float(value[0]))
        st["steps"] = step
        if step % eval_every and step != max_steps:
            return False
        train_mean, st["run"] = sum(st["run"]) / len(st["run"]), []
        val = val_score() if early_stopping else float("nan")
        for key, v in (("step", step), ("train", train_mean), ("val", val)):
            hist[key].append(v)
        if early_stopping and val > st["best"][0]:
            st["best"], st["since"] = (val, step, _snapshot(net, objective)), 0
        elif early_stopping:
            st["since"] += 1
        return early_stopping and st["since"] >= patience

    engine.hooks.append(validate)
    out = engine.run(step_fn, stop=max_steps, progress=_show(progress), desc=f"vbmi {objective.name}")
    if out.reason == "all_frozen":
        raise FloatingPointError(f"training diverged at step {int(engine.diverged_step[0]) + 1} (non-finite "
                                 "objective); try a smaller lr or another bound")
    if early_stopping:
        net.load_state_dict(st["best"][2][0])
        objective.load_state_dict(st["best"][2][1])
    hist["steps"], hist["best_step"] = st["steps"], st["best"][1] if early_stopping else st["steps"]
    return hist


def _snapshot(net: nn.Module, objective: nn.Module) -> tuple[dict, dict]:
    return copy.deepcopy(net.state_dict()), copy.deepcopy(objective.state_dict())


def _show(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)
