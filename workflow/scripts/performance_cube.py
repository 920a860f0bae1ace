"""Gather the bench JSONs and this run's Snakemake benchmark files into the `performance` cube."""

import sys

from _script import REPO, save_cube, setup

sys.path.insert(0, str(REPO))  # the bench package lives at the repository root, beside src/
from bench.cube import performance_dataset  # noqa: E402

setup(snakemake)  # noqa: F821 (injected by Snakemake)
ds = performance_dataset(list(snakemake.input.bench_jsons), snakemake.params.benchmarks_dir)  # noqa: F821
print(ds)
save_cube(snakemake, ds, kind="performance")  # noqa: F821
