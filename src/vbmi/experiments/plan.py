"""Run planning for Fig. 2 and the Appendix C hyperparameter sweep: which runs, and which job trains each.

Torch-free on purpose (plain Python, math and numpy only): the Snakefile imports this module while it
builds the DAG (``snakemake -n``), so counting jobs never pays torch's import and works where torch is
not installed. Training (:mod:`vbmi.experiments.training`) and the summaries (:mod:`vbmi.experiments.sweep`)
import it; nothing here knows about tensors.

Everything is deterministic from a config mapping (the ``training:`` / ``sweep:`` sections of
config.yaml) and a seed, so the workflow can count a sweep's jobs when it builds the DAG and each job
can rebuild exactly its own share of the runs.

Search space of the sweep: Appendix C.1 lists learning rate, separable vs joint critic, 1-3 hidden
layers, 256/512/1024/2048 units, ReLU/Tanh and batch size 64/128/256/512. ``n_configs = null`` takes
the full product of the configured lists; an integer draws that many distinct points of it with
``numpy.random.default_rng(seed)`` (the same points for every bound, so bounds are compared on equal
architectures). ``joint_max_batch_size`` drops joint critics above a batch size (their cost grows as
batch^2).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = [
    "RunSpec",
    "BoundTraits",
    "TRAINABLE_BOUNDS",
    "DATASETS",
    "CRITIC_TYPES",
    "GRID_KEYS",
    "fig2_specs",
    "fig2_parts",
    "fig2_steps_per_level",
    "fig2_part_config",
    "sweep_specs",
    "sweep_parts",
    "run_cost_ms",
]

DATASETS = ("gaussian", "cubic")
CRITIC_TYPES = ("separable", "joint", "known")
GRID_KEYS = ("lr", "critic", "layers", "hidden", "activation", "batch_size")


class BoundTraits(NamedTuple):
    """What planning needs to know of a bound, without importing :mod:`vbmi.bounds` (which needs torch).

    Mirrors the fields of :class:`vbmi.bounds.Bound` of the same names; a test checks that every entry
    agrees with the ``BOUNDS`` registry.
    """

    input: str  # 'scores' (a learned critic) or 'log_p' (the known conditional of the Gaussian task)
    baseline: str  # 'none', 'required' or 'optional'
    takes_alpha: bool


# The bounds that can be trained on the MI staircase (critic scores or the known log p(y|x)).
TRAINABLE_BOUNDS: dict[str, BoundTraits] = {
    "nwj": BoundTraits("scores", "none", False),
    "dv": BoundTraits("scores", "none", False),
    "tuba": BoundTraits("scores", "required", False),
    "mine": BoundTraits("scores", "required", False),
    "nce": BoundTraits("scores", "none", False),
    "js": BoundTraits("scores", "none", False),
    "interpolated": BoundTraits("scores", "optional", True),
    "interpolated_linear": BoundTraits("scores", "none", True),
    "interpolated_product": BoundTraits("scores", "optional", True),
    "smile": BoundTraits("scores", "none", False),
    "tnce": BoundTraits("log_p", "none", False),
    "loo_upper": BoundTraits("log_p", "none", False),
    "variational_upper": BoundTraits("log_p", "required", False),
    "nwj_reparam": BoundTraits("log_p", "required", False),
}


def _traits(name: str) -> BoundTraits:
    try:
        return TRAINABLE_BOUNDS[name]
    except KeyError:
        raise ValueError(
            f"unknown bound {name!r} for staircase training; valid: {', '.join(sorted(TRAINABLE_BOUNDS))}"
        ) from None


@dataclass(frozen=True)
class RunSpec:
    """One training run. Defaults are the paper's Fig. 2 setting (App. B and the reference notebook).

    ``critic``: ``separable`` (``g(x)^T h(y)``), ``joint`` (MLP on ``[x, y]``, all K^2 pairs) or
    ``known`` (``f = log p(y|x)`` of the Gaussian task, for the Eq. 12 / Eq. 14 rows of Table 3; only a
    baseline ``q(y)`` is learned, if the bound has one). ``seed`` alone determines the run's
    initialisation and data stream, whatever ensemble it is trained in.
    """

    bound: str = "nce"
    alpha: float | None = None
    critic: str = "separable"
    hidden: int = 256  # units per hidden layer
    layers: int = 2  # hidden layers
    embed_dim: int = 32  # separable critics only
    activation: str = "relu"
    batch_size: int = 64
    lr: float = 5e-4
    dataset: str = "gaussian"
    seed: int = 0
    tau: float = 5.0  # SMILE's clip (Song & Ermon 2020)

    def __post_init__(self) -> None:
        traits = _traits(self.bound)
        if self.critic not in CRITIC_TYPES:
            raise ValueError(f"unknown critic {self.critic!r}; valid: {', '.join(CRITIC_TYPES)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASETS)}")
        if self.critic == "known" and self.dataset != "gaussian":
            raise ValueError("critic='known' (log p(y|x)) is only available on the gaussian task")
        if traits.input == "log_p" and self.critic != "known":
            raise ValueError(f"bound {self.bound!r} takes log p(y|x): use critic='known'")
        if self.batch_size < 2 or self.lr <= 0 or self.hidden < 1 or self.layers < 1:
            raise ValueError(f"invalid run: {self}")
        if traits.takes_alpha != (self.alpha is not None):
            raise ValueError(f"bound {self.bound!r} {'needs' if traits.takes_alpha else 'takes no'} alpha")

    @property
    def label(self) -> str:
        """The bound as shown in figures: ``nce``, ``interpolated_0.01``, ..."""
        return self.bound if self.alpha is None else f"{self.bound}_{self.alpha:g}"

    @property
    def learns_baseline(self) -> bool:
        """Whether the run learns a baseline MLP ``log q(y)`` (MINE's EMA is not an MLP)."""
        base = TRAINABLE_BOUNDS[self.bound].baseline
        if self.bound == "mine":
            return False
        return base == "required" or (base == "optional" and self.alpha is not None and self.alpha < 1)

    def group_key(self) -> tuple:
        """Runs with equal keys can be stacked into one batched model (same critic shape and batch)."""
        if self.critic == "known":
            return ("known", self.batch_size)
        shape = (self.critic, self.batch_size, self.hidden, self.layers, self.activation.lower())
        return shape + ((self.embed_dim,) if self.critic == "separable" else ())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _bound_entries(entries: Sequence[Mapping[str, Any]], dataset: str,
                   stage_datasets: Sequence[str]) -> list[tuple[str, float | None]]:
    """``(bound, alpha)`` of each entry that trains on ``dataset``: an entry's optional ``datasets``
    (a non-empty subset of the stage's ``stage_datasets``) restricts it; absent, it trains on all."""
    out = []
    for e in entries:
        only = e.get("datasets")
        if only is not None and (not only or set(only) - set(stage_datasets)):
            raise ValueError(f"bound entry {dict(e)}: datasets {list(only)} must be a non-empty subset of "
                             f"the stage's datasets {list(stage_datasets)}")
        if only is None or dataset in only:
            out.append((str(e["bound"]), None if e.get("alpha") is None else float(e["alpha"])))
    return out


# ---------------------------------------------------------------------------------------------------
# Fig. 2
# ---------------------------------------------------------------------------------------------------
def fig2_specs(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every Fig. 2 run: bounds x critics x datasets x seeds, all other settings from ``cfg``."""
    specs = []
    for dataset in cfg["datasets"]:
        for critic in cfg["critics"]:
            for s in range(cfg["seeds"]):
                for bound, alpha in _bound_entries(cfg["bounds"], dataset, cfg["datasets"]):
                    specs.append(RunSpec(bound=bound, alpha=alpha, critic=critic, dataset=dataset,
                                         hidden=cfg["hidden"], layers=cfg["layers"], embed_dim=cfg["embed_dim"],
                                         activation=cfg["activation"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                                         seed=seed + s, tau=cfg["smile_tau"]))
    return specs


def fig2_parts(cfg: Mapping[str, Any], seed: int) -> dict[str, list[RunSpec]]:
    """Fig. 2 split into one job per (critic, dataset): ``{"separable_gaussian": [...], ...}``."""
    parts: dict[str, list[RunSpec]] = {}
    for spec in fig2_specs(cfg, seed):
        parts.setdefault(f"{spec.critic}_{spec.dataset}", []).append(spec)
    return parts


def fig2_steps_per_level(cfg: Mapping[str, Any], critic: str) -> int:
    """Steps per MI level of a Fig. 2 job: ``joint_steps_per_level`` for joint critics (their step costs
    ~K^2 pair evaluations, so the default scale gives them what fits), ``steps_per_level`` otherwise."""
    joint = cfg.get("joint_steps_per_level")
    return int(joint) if critic == "joint" and joint is not None else int(cfg["steps_per_level"])


def fig2_part_config(cfg: Mapping[str, Any], part: str) -> dict[str, Any]:
    """The ``training`` section as one Fig. 2 job (``part`` = ``<critic>_<dataset>``) trains it: a copy
    with ``steps_per_level`` set by :func:`fig2_steps_per_level`."""
    critic = part.split("_", 1)[0]
    if critic not in CRITIC_TYPES:
        raise ValueError(f"unknown Fig. 2 part {part!r}; expected <critic>_<dataset>")
    return {**cfg, "steps_per_level": fig2_steps_per_level(cfg, critic)}


# ---------------------------------------------------------------------------------------------------
# Sweep design (Table 3, Figs. 6-7): which configurations are trained
# ---------------------------------------------------------------------------------------------------
def _grid_points(grid: Mapping[str, Sequence], n_configs: int | None, seed: int, joint_max_batch: int) -> list[dict]:
    keys = list(GRID_KEYS)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    points = [p for p in points if not (p["critic"] == "joint" and p["batch_size"] > joint_max_batch)]
    if n_configs is not None and n_configs < len(points):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(points), size=n_configs, replace=False))
        points = [points[i] for i in idx]
    return points


def _with_overrides(points: list[dict], override: Mapping[str, Sequence] | None, joint_max_batch: int) -> list[dict]:
    """``points`` with the grid keys named in ``override`` (e.g. ``batch_size``, ``lr``) replaced by each
    combination of its lists (``None`` or empty: unchanged); joint critics above ``joint_max_batch``
    dropped, duplicates dropped, order kept."""
    override = {k: list(v) for k, v in (override or {}).items() if v is not None}
    if not override:
        return points
    unknown = set(override) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"grid_by_bound: unknown grid keys {sorted(unknown)}; valid: {', '.join(GRID_KEYS)}")
    keys = list(override)
    out: list[dict] = []
    for p in points:
        for combo in itertools.product(*(override[k] for k in keys)):
            q = {**p, **dict(zip(keys, combo))}
            if not (q["critic"] == "joint" and q["batch_size"] > joint_max_batch) and q not in out:
                out.append(q)
    return out


def sweep_specs(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every run of the sweep, in a fixed order.

    * ``bounds`` (Table 3 rows, Fig. 6) on every dataset (or the entry's ``datasets``), and
      ``interpolation_bounds`` (Fig. 7) on the Gaussian task, each on the same sampled architecture points;
    * ``known_bounds`` (Eq. 12 / Eq. 14 rows) on the Gaussian task with the known ``log p(y|x)`` as
      critic, over the grid's learning rates and batch sizes (no critic architecture to search).

    ``grid_by_bound`` (optional; bound name -> ``{grid key: values}``) replaces those grid keys for the
    bound it names, so a focused design trains each bound at the settings that decide its Table 3 cells
    (NCE saturates at log K, so its high-MI cells need K = 512; I_alpha's mixture term gains from a larger
    K; NWJ is steadier at a smaller learning rate) instead of every bound at every setting. Empty, absent
    or null entries: every bound on the same points (the paper-scale random search).
    """
    grid = cfg["grid"]
    jmax = cfg["joint_max_batch_size"]
    points = _grid_points(grid, cfg["n_configs"], seed, jmax)
    by_bound = {b: o for b, o in (cfg.get("grid_by_bound") or {}).items() if o}
    base = dict(embed_dim=cfg["embed_dim"])
    specs: list[RunSpec] = []
    jobs = [(b, a, ds) for ds in cfg["datasets"] for b, a in _bound_entries(cfg["bounds"], ds, cfg["datasets"])]
    jobs += [(b, a, "gaussian") for b, a in _bound_entries(cfg["interpolation_bounds"], "gaussian", ["gaussian"])]
    for s in range(cfg["seeds"]):
        for bound, alpha, dataset in jobs:
            for p in _with_overrides(points, by_bound.get(bound), jmax):
                specs.append(RunSpec(bound=bound, alpha=alpha, dataset=dataset, seed=seed + s, **base, **p))
        for bound in cfg["known_bounds"]:
            over = {k: v for k, v in (by_bound.get(bound) or {}).items() if v is not None}
            lrs = over.get("lr", grid["lr"][:1] if bound == "tnce" else grid["lr"])  # TNCE learns nothing: only K
            for lr, batch in itertools.product(lrs, over.get("batch_size", grid["batch_size"])):
                specs.append(RunSpec(bound=bound, critic="known", dataset="gaussian", lr=lr, batch_size=batch,
                                     seed=seed + s))
    return specs


# ---------------------------------------------------------------------------------------------------
# Sweep jobs: how the runs are cut into pipeline jobs
# ---------------------------------------------------------------------------------------------------
def run_cost_ms(spec: RunSpec) -> float:
    """Estimated CPU milliseconds per training step of one run on one thread, for balancing jobs.

    Fitted to ``time.process_time`` measurements of :func:`vbmi.experiments.training.train_ensemble`
    (torch 2.13 CPU, one thread): ~3 ms fixed, 0.35 ms per million multiply-adds of a separable critic or
    of the 2 x 512 baseline MLP, 0.1 ms per million for joint critics (one large matmul), and the float64
    bound on the K x K scores (~1e-5 ms per entry). E.g. separable 2 x 256 at K = 64: ~7 ms; at K = 512:
    ~30 ms; I_alpha's baseline at K = 512 adds ~50 ms; joint 2 x 256 at K = 64: ~30 ms.
    """
    k = spec.batch_size
    baseline = k * (20 * 512 + 512 * 512) if spec.learns_baseline else 0
    ms = 3.0 + 0.35e-6 * baseline + 1e-5 * k * k
    if spec.critic == "known":
        return ms + 1e-6 * k * k * 20
    per_pair = 20 * spec.hidden + (spec.layers - 1) * spec.hidden**2 + spec.hidden
    if spec.critic == "joint":
        return ms + 0.1e-6 * k * k * per_pair
    return ms + 0.35e-6 * 2 * k * (per_pair + spec.hidden * spec.embed_dim)


def sweep_parts(cfg: Mapping[str, Any], seed: int) -> list[list[int]]:
    """Indices into :func:`sweep_specs` for each sweep job.

    Runs are ordered by their stacking key (so a job holds few, large groups) and cut into jobs of at
    most ``max_members_per_job`` runs, and also cut where the job's estimated cost (CPU ms per step,
    :func:`run_cost_ms`) would pass ``max_cost_per_job``, so CPU jobs are of similar length and two cores
    stay busy.
    """
    specs = sweep_specs(cfg, seed)
    order = sorted(range(len(specs)), key=lambda i: (str(specs[i].group_key()), i))
    parts: list[list[int]] = []
    cur: list[int] = []
    cost = 0.0
    for i in order:
        c = run_cost_ms(specs[i])
        if cur and (len(cur) >= cfg["max_members_per_job"] or cost + c > cfg["max_cost_per_job"]):
            parts.append(cur)
            cur, cost = [], 0.0
        cur.append(i)
        cost += c
    if cur:
        parts.append(cur)
    return parts
