"""Claims page: check every claim of the paper on the run's cubes and write {results_dir}/report/claims.json."""

from _script import setup
from vbmi.claims import CUBE_GROUPS, evaluate_claims, verdict_counts
from vbmi.results import write_json

setup(snakemake)  # noqa: F821 (injected by Snakemake)
# Named inputs are the cube groups of the active stages; a group without an input is "stage not run".
inputs = snakemake.input  # noqa: F821
cubes = {g: (list(getattr(inputs, g)) if g == "fig2" else str(getattr(inputs, g)))
         for g in CUBE_GROUPS if g in inputs.keys()}
results = evaluate_claims(cubes)
for r in results:
    print(f"{r.verdict:26s} {r.id}: {r.reason}")
print(verdict_counts(results))
write_json([r.to_dict() for r in results], snakemake.output.json)  # noqa: F821
