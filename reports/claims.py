# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Claims of the paper: which hold at this scale
#
# Every empirical claim that Poole et al. (2019) make about Figs. 2-7, Table 3 and Sec. 3.1, in the
# paper's words and with its location, checked on this run's cubes by one function each
# (`vbmi.claims`). The verdict is computed, never written by hand:
#
# * **holds**: the cubes show what the paper says, by the rule given in the row's reason;
# * **does not hold**: they do not, at this scale, and the reason gives the numbers;
# * **not tested at this scale**: the run cannot speak to it (its stage was switched off, critics were
#   trained too briefly to mean anything, or the grid lacks the MI levels, batch sizes or alphas the claim
#   needs); the reason says which.
#
# A run that diverged (marked in its cube, non-finite, or beyond 100 nats in magnitude on tasks whose MI
# is at most 10 nats) never enters a verdict as a number: it counts as infinitely wrong, and the
# evidence says how many runs were excluded. Each claim links to the page with its figure, whose top
# repeats that page's verdicts.

# %% tags=["parameters"]
claims_json = "results/report/claims.json"
fig2_cubes = []
sweep_cubes = []
montecarlo_cubes = []
gradients_cubes = []
dsprites_cubes = []

# %% tags=["remove_input"]
import json
import pathlib

import pandas as pd
from IPython.display import HTML, Markdown, display

from vbmi.claims import FAILS, HOLDS, UNTESTED, VERDICTS, ClaimResult, claims_html, verdict_counts

results = [ClaimResult(**entry) for entry in json.loads(pathlib.Path(claims_json).read_text())]
counts = verdict_counts(results)
display(Markdown(
    f"**{len(results)} claims: {counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[UNTESTED]} are not "
    "tested at this scale.**"))

# %% [markdown]
# ## Verdicts by figure

# %% tags=["remove_input"]
by_source = pd.DataFrame([{"page": r.figure, "verdict": r.verdict} for r in results])
table = by_source.pivot_table(index="page", columns="verdict", aggfunc="size", fill_value=0, sort=False)
table = table.reindex(columns=[v for v in VERDICTS if v in table.columns])
display(table)

# %% [markdown]
# ## Claims that do not hold here

# %% tags=["remove_input"]
failing = [r for r in results if r.verdict == FAILS]
display(Markdown("\n".join(f"- **{r.source}** ([page]({r.figure})): *{r.claim}* Here {r.reason}." for r in failing)
                 if failing else "None: every claim tested at this scale holds."))

# %% [markdown]
# ## Every claim
#
# In the order of the report's pages. Open "evidence" for the numbers the verdict was computed from.

# %% tags=["remove_input"]
display(HTML(claims_html(results)))

# %% [markdown]
# ## Cubes the verdicts were computed from

# %% tags=["remove_input"]
inputs = {"Fig. 2 (training)": fig2_cubes, "Table 3, Figs. 6-7 (sweep)": sweep_cubes,
          "Fig. 3 (montecarlo)": montecarlo_cubes, "Fig. 4 (gradients)": gradients_cubes,
          "Sec. 3.1, Fig. 5 (dsprites)": dsprites_cubes}
display(Markdown("\n".join(
    f"- {name}: " + (", ".join(f"`{pathlib.Path(p).name}`" for p in paths) if paths else "stage not run")
    for name, paths in inputs.items())))
