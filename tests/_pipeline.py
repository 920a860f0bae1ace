"""Helpers to run the repo's Snakemake workflow from tests (used by conftest.tiny_pipeline and tests/*)."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
DEFAULT_CONFIG = REPO / "config.yaml"
TINY_CONFIG = REPO / "workflow" / "scales" / "tiny.yaml"
PAPER_CONFIG = REPO / "workflow" / "scales" / "paper.yaml"
# Cores for the tiny run: CI has 2; VBMI_TEST_CORES overrides.
TEST_CORES = os.environ.get("VBMI_TEST_CORES", "2")


def snakemake_command(
    workdir: pathlib.Path,
    *args: str,
    configfiles: Sequence[pathlib.Path] = (DEFAULT_CONFIG, TINY_CONFIG),
) -> list[str]:
    """`snakemake` on the repo's Snakefile, running in `workdir`, with config.yaml + scale layers."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--workflow-profile",
        "none",
        "--configfile",
        *(str(c) for c in configfiles),
        *args,
    ]


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_snakemake(
    workdir: pathlib.Path,
    *args: str,
    configfiles: Sequence[pathlib.Path] = (DEFAULT_CONFIG, TINY_CONFIG),
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """Run snakemake (see snakemake_command); stdout and stderr are merged into `.stdout`."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        snakemake_command(workdir, *args, configfiles=configfiles),
        cwd=workdir,
        env=snakemake_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    workdir: pathlib.Path
    results: pathlib.Path
    manifest: dict
    cubes: list[pathlib.Path]
    output: str


SCRIPTS = REPO / "workflow" / "scripts"
_SCRIPT_DRIVER = """
import json, runpy, sys, types
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["scripts"])
def ns(d):
    return types.SimpleNamespace(**d)
smk = types.SimpleNamespace(
    input=ns(spec["input"]), output=ns(spec["output"]), params=ns(spec["params"]),
    wildcards=ns(spec["wildcards"]), log=[spec["log"]], threads=1, rule=spec["rule"],
)
runpy.run_path(spec["script"], init_globals={"snakemake": smk}, run_name="__main__")
"""


def run_workflow_script(
    script: str,
    *,
    log: pathlib.Path,
    input: dict | None = None,
    output: dict | None = None,
    params: dict | None = None,
    wildcards: dict | None = None,
    cwd: pathlib.Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run workflow/scripts/<script> in a subprocess with a stand-in `snakemake` object (named
    input/output/params/wildcards, one log file), as Snakemake's `script:` directive would; the script
    redirects its own stdout/stderr to `log`. `params` should hold `config` (common.smk: rule_config)."""
    spec = {
        "scripts": str(SCRIPTS),
        "script": str(SCRIPTS / script),
        "input": input or {},
        "output": output or {},
        "params": params or {},
        "wildcards": wildcards or {},
        "log": str(log),
        "rule": pathlib.Path(script).stem,
    }
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT_DRIVER, json.dumps(spec)],
        cwd=cwd,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
