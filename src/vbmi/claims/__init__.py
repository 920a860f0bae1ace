"""The paper's empirical claims, each checked on the cubes of a run (the report's claims page).

Every claim of Poole et al. (2019) about Figs. 2-7, Table 3 and Sec. 3.1 that the pipeline's cubes can
speak to is one registered function (``fig2``, ``sweep``, ``optimal``, ``dsprites`` submodules) that
returns a :class:`ClaimResult`: the paper's words and where they are, a computed verdict ("holds",
"does not hold", "not tested at this scale"), the numbers behind it and a one-sentence reason.

    results = evaluate_claims({"fig2": [...paths...], "sweep": "results/cubes/sweep.nc", ...})
    html = claims_html(results)

A cube group left out of ``cubes`` (its stage was not run) makes its claims "not tested at this scale"
with the reason "stage not run". The thresholds that decide "not tested" (too few training steps, MI
levels, batch sizes) and the divergence policy are in :mod:`vbmi.claims._core` and each submodule.
Its modules import numpy, pandas, xarray and vbmi.results only, never torch.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import dsprites, fig2, optimal, sweep  # noqa: F401  (registers the claims)
from ._core import CLAIMS, FAILS, HOLDS, SECTIONS, UNTESTED, VERDICTS, ClaimResult

__all__ = ["CLAIMS", "CUBE_GROUPS", "ClaimResult", "HOLDS", "FAILS", "UNTESTED", "VERDICTS", "claims_html",
           "evaluate_claims", "load_cubes", "section_html", "verdict_counts"]

CUBE_GROUPS = ("fig2", "sweep", "montecarlo", "gradients", "dsprites")
_KIND = {"fig2": "training", "sweep": "sweep", "montecarlo": "montecarlo", "gradients": "gradients",
         "dsprites": "dsprites"}


def _load(group: str, value: Any):
    import xarray as xr

    from ..results import read_cube

    if value is None:
        return None
    if group == "fig2":
        if isinstance(value, xr.Dataset):
            return value
        parts = [v if isinstance(v, xr.Dataset) else read_cube(v, kind=_KIND[group]) for v in value]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        # Joint critics may train on their own schedule (``training.joint_steps_per_level``): parts of
        # different lengths cannot share a step axis, so they stay separate (a list) and every consumer
        # reads each part with its own ``steps_per_level``.
        if len({int(p.attrs["steps_per_level"]) for p in parts}) > 1:
            return parts
        out = xr.combine_by_coords(parts, combine_attrs="drop")
        out.attrs = dict(parts[0].attrs)
        return out
    return value if isinstance(value, xr.Dataset) else read_cube(value, kind=_KIND[group])


def load_cubes(cubes: Mapping[str, Any]) -> dict[str, Any]:
    """``cubes`` with every path read (:func:`vbmi.results.read_cube`) and the Fig. 2 parts combined (kept
    as a list of part datasets when their ``steps_per_level`` differ)."""
    unknown = sorted(set(cubes) - set(CUBE_GROUPS))
    if unknown:
        raise ValueError(f"unknown cube group(s) {', '.join(unknown)}; groups: {', '.join(CUBE_GROUPS)}")
    return {g: _load(g, cubes.get(g)) for g in CUBE_GROUPS}


def evaluate_claims(cubes: Mapping[str, Any], *, sections: Iterable[str] | None = None) -> list[ClaimResult]:
    """Check every registered claim (or those of ``sections``) on ``cubes``, in the report's section order.

    ``cubes`` maps a group of :data:`CUBE_GROUPS` to an :class:`xarray.Dataset` or a cube path (``fig2``:
    a list of the Fig. 2 part cubes, or one combined dataset). A missing group gives its claims the verdict
    "not tested at this scale" with the reason "stage not run".
    """
    wanted = None if sections is None else list(sections)
    if wanted is not None:
        bad = [s for s in wanted if s not in SECTIONS]
        if bad:
            raise ValueError(f"unknown section(s) {', '.join(bad)}; sections: {', '.join(SECTIONS)}")
    claims = [c for c in CLAIMS.values() if wanted is None or c.section in wanted]
    claims.sort(key=lambda c: SECTIONS.index(c.section))  # the report's order; stable within a section
    needed = {c.group for c in claims}
    loaded = load_cubes({g: v for g, v in cubes.items() if g in needed or g not in CUBE_GROUPS})
    return [c(loaded[c.group]) for c in claims]


def verdict_counts(results: Sequence[ClaimResult]) -> dict[str, int]:
    counts = Counter(r.verdict for r in results)
    return {v: counts.get(v, 0) for v in VERDICTS}


_STYLE = """<style>
.vbmi-claims{border-collapse:collapse;font-size:0.92em;margin:0.5em 0 1em 0}
.vbmi-claims th,.vbmi-claims td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left !important}
.vbmi-claims th{background:#f3f3f3}
.vbmi-verdict{font-weight:bold;white-space:nowrap;padding:1px 6px;border-radius:3px}
.vbmi-holds{background:#d8f0d8;color:#145214}
.vbmi-fails{background:#f8d7d7;color:#7a1010}
.vbmi-untested{background:#e8e8e8;color:#444}
.vbmi-claims details{font-size:0.85em}
</style>"""
_CLASS = {HOLDS: "vbmi-holds", FAILS: "vbmi-fails", UNTESTED: "vbmi-untested"}


def _badge(verdict: str) -> str:
    return f'<span class="vbmi-verdict {_CLASS[verdict]}">{html.escape(verdict)}</span>'


def _table(results: Sequence[ClaimResult], *, link: bool, evidence: bool) -> str:
    head = "<tr><th>verdict</th><th>source</th><th>the paper's claim</th><th>why, with the numbers</th></tr>"
    rows = []
    for r in results:
        claim = html.escape(r.claim)
        if link:
            claim = f'<a href="{html.escape(r.figure)}">{claim}</a>'
        why = html.escape(r.reason)
        if evidence and r.evidence:
            why += (f"<details><summary>evidence</summary><pre>{html.escape(json.dumps(r.evidence, indent=1))}"
                    "</pre></details>")
        rows.append(f'<tr id="{html.escape(r.id)}"><td>{_badge(r.verdict)}</td><td>{html.escape(r.source)}</td>'
                    f"<td>{claim}<br><code>{html.escape(r.id)}</code></td><td>{why}</td></tr>")
    return f'<table class="vbmi-claims">{head}{"".join(rows)}</table>'


def _counts_line(results: Sequence[ClaimResult]) -> str:
    counts = verdict_counts(results)
    return " &middot; ".join(f"{_badge(v)} {counts[v]}" for v in VERDICTS)


def section_html(section: str, cubes: Mapping[str, Any]) -> str:
    """The verdicts of one report section's claims, as an HTML block for the top of its page ("" for a
    section without claims, e.g. about)."""
    if section not in SECTIONS:
        return ""
    results = evaluate_claims(cubes, sections=[section])
    if not results:
        return ""
    return (f"{_STYLE}<div class=\"vbmi-claims-block\"><p><b>The paper's claims on this page</b> "
            f"({_counts_line(results)}; all claims: <a href=\"claims.html\">claims page</a>)</p>"
            f"{_table(results, link=False, evidence=False)}</div>")


def claims_html(results: Sequence[ClaimResult]) -> str:
    """The full claims table (verdict counts first; each claim linked to its figure's page)."""
    return f"{_STYLE}<p>{_counts_line(results)}</p>{_table(results, link=True, evidence=True)}"
