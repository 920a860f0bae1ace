"""Bench JSONs and Snakemake ``benchmark:`` files as one ``performance`` cube: see :mod:`vbmi.performance`
(the library reads the bench's files; the bench is never imported by the library or the pipeline)."""

from vbmi.performance import performance_dataset, source_label  # noqa: F401
