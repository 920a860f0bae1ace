"""The claim registry, the verdict vocabulary and the helpers every claim module shares.

A claim is one function ``check(cube) -> (verdict, evidence, reason)`` registered with :func:`claim`;
the registry wraps it so that calling it returns a :class:`ClaimResult`, and a missing cube (``None``)
returns "not tested at this scale" with the reason "stage not run".

Divergence policy (every claim module follows it): a run counts as *excluded* at an MI level when the
cube marks it diverged by the end of that level (``diverged_step`` / ``level_diverged``), when its level
estimate is non-finite, or when its magnitude exceeds :data:`IMPLAUSIBLE_NATS` (the paper's tasks have
I <= 10 nats; -3.4e7 nats is numerical blow-up, not an estimate). An excluded run never enters a mean
as a number: it counts as infinitely wrong in comparisons (so it can only lose) and the evidence
says how many runs were excluded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

HOLDS = "holds"
FAILS = "does not hold"
UNTESTED = "not tested at this scale"
VERDICTS = (HOLDS, FAILS, UNTESTED)

# Report sections (their pages are <section>.html) and the cube group each one's claims read.
SECTIONS = ("training", "sweep_table3", "sweep_fig6_fig7", "montecarlo", "gradients", "dsprites")
SECTION_GROUP = {"training": "fig2", "sweep_table3": "sweep", "sweep_fig6_fig7": "sweep",
                 "montecarlo": "montecarlo", "gradients": "gradients", "dsprites": "dsprites"}

# Trained-critic claims need critics that were trained at all: below this many steps per MI level
# (the tiny test scale has 3; the notebook trains 4,000) the estimates are those of a near-random
# critic and say nothing about the paper's findings.
MIN_STEPS_PER_LEVEL = 20
# |estimate| beyond this many nats is a numerical blow-up on tasks whose MI is at most 10 nats.
IMPLAUSIBLE_NATS = 100.0


@dataclass(frozen=True)
class ClaimResult:
    """One of the paper's empirical claims, checked on the cubes of a run."""

    id: str  # stable slug, e.g. "fig2_nce_saturates_log_k"
    source: str  # "Fig. 2", "Table 3", "Sec. 3.1", ...
    section: str  # report section whose page shows the figure
    claim: str  # the paper's words (quote or close paraphrase)
    verdict: str  # HOLDS | FAILS | UNTESTED
    evidence: dict  # the numbers behind the verdict (JSON-serialisable)
    reason: str  # one plain sentence explaining the verdict
    figure: str  # link to the figure's page, e.g. "training.html"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    section: str
    claim: str
    group: str
    check: Callable[[Any], tuple[str, dict, str]]

    def __call__(self, cube: Any) -> ClaimResult:
        if cube is None:
            verdict, evidence, reason = UNTESTED, {}, "stage not run"
        else:
            verdict, evidence, reason = self.check(cube)
        if verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict {verdict!r} is not one of {VERDICTS}")
        return ClaimResult(id=self.id, source=self.source, section=self.section, claim=self.claim,
                           verdict=verdict, evidence=clean(evidence), reason=reason, figure=f"{self.section}.html")


CLAIMS: dict[str, Claim] = {}


def claim(id: str, *, source: str, section: str, text: str) -> Callable[[Callable], Claim]:
    """Register ``check`` as the test of one claim; the decorated name becomes a :class:`Claim`."""
    if section not in SECTION_GROUP:
        raise ValueError(f"claim {id}: unknown section {section!r}; sections: {', '.join(SECTIONS)}")

    def register(check: Callable[[Any], tuple[str, dict, str]]) -> Claim:
        if id in CLAIMS:
            raise ValueError(f"claim {id!r} registered twice")
        CLAIMS[id] = Claim(id, source, section, text, SECTION_GROUP[section], check)
        return CLAIMS[id]

    return register


def verdict(ok: bool) -> str:
    return HOLDS if bool(ok) else FAILS


def clean(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, floats rounded to 4 decimals, non-finite as
    the strings "inf"/"-inf"/"nan" (JSON has no such numbers), tuples as lists, keys as strings."""
    if isinstance(value, Mapping):
        return {_key(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return round(v, 4)
    return value if value is None or isinstance(value, str) else str(value)


def _key(k: Any) -> str:
    if isinstance(k, (float, np.floating)):
        return f"{float(k):g}"
    return str(k)


def untrained(steps_per_level: int, what: str = "critics") -> str | None:
    """The reason a trained-critic claim is not tested, or None when training is long enough."""
    if steps_per_level < MIN_STEPS_PER_LEVEL:
        return (f"{what} were trained {steps_per_level} steps per MI level here (fewer than "
                f"{MIN_STEPS_PER_LEVEL}; the paper's notebook trains 4,000), so they are untrained")
    return None


def excluded(mean: Any, diverged: Any) -> np.ndarray:
    """Runs that must not count as numbers: diverged, non-finite or implausibly large estimates."""
    mean = np.asarray(mean, dtype=np.float64)
    return np.asarray(diverged, dtype=bool) | ~np.isfinite(mean) | (np.abs(mean) > IMPLAUSIBLE_NATS)


def fmt(x: float, digits: int = 2) -> str:
    return "diverged" if not np.isfinite(x) else f"{x:.{digits}f}"
