"""Gather the bench JSONs and this run's Snakemake benchmark files into the `performance` cube."""

from _script import save_cube, setup
from vbmi.performance import performance_dataset

setup(snakemake)  # noqa: F821 (injected by Snakemake)
ds = performance_dataset(list(snakemake.input.bench_jsons), snakemake.params.benchmarks_dir)  # noqa: F821
print(ds)
save_cube(snakemake, ds, kind="performance")  # noqa: F821
