"""Shared fixtures. `tiny_pipeline` runs the whole workflow once per test session on the tiny scale.

Reuse it (e.g. tests/cluster compares its own cubes with these):

    def test_x(tiny_pipeline):
        tiny_pipeline.workdir    # tmp dir the pipeline ran in (--directory)
        tiny_pipeline.results    # <workdir>/results
        tiny_pipeline.manifest   # parsed results/report/manifest.json (sections, their cubes)
        tiny_pipeline.cubes      # every cube file the run wrote (results/cubes/**/*.nc), sorted
        tiny_pipeline.output     # snakemake's stdout+stderr

and run snakemake the same way with `from _pipeline import run_snakemake, snakemake_command` (tests/_pipeline.py).
"""

from __future__ import annotations

import json

import pytest
from _pipeline import TEST_CORES, PipelineRun, run_snakemake


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """The full pipeline (rule all) on config.yaml + workflow/scales/tiny.yaml, in a temporary directory."""
    workdir = tmp_path_factory.mktemp("tiny_pipeline")
    proc = run_snakemake(workdir, "--cores", TEST_CORES, "--show-failed-logs")
    if proc.returncode != 0:
        pytest.fail(f"tiny pipeline failed (exit {proc.returncode}):\n{proc.stdout[-8000:]}", pytrace=False)
    results = workdir / "results"
    manifest = json.loads((results / "report" / "manifest.json").read_text())
    return PipelineRun(
        workdir=workdir,
        results=results,
        manifest=manifest,
        cubes=sorted((results / "cubes").rglob("*.nc")),
        output=proc.stdout,
    )
