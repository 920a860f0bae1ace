"""How the DAG is built: config reaches jobs only through params (so a change reruns exactly the jobs
that read it), building it never imports torch, and unreadable cubes stop the run naming the fix."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re

import numpy as np
import pytest
import xarray as xr
import yaml

from vbmi.results import write_cube

from _pipeline import DEFAULT_CONFIG, REPO, SCRIPTS, TINY_CONFIG, PipelineRun, run_snakemake

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
_RULE = re.compile(r"^(\s*)rule (\w+):\s*$")


def _rules() -> dict[str, str]:
    """Rule name -> its body (the lines indented under `rule name:`), for every rule in workflow/rules/*.smk."""
    rules: dict[str, str] = {}
    for path in RULE_FILES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            match = _RULE.match(line)
            if not match:
                continue
            indent, body = len(match.group(1)), []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body.append(nxt)
            rules[match.group(2)] = "\n".join(body)
    return rules


def test_every_rule_gets_its_config_from_rule_config() -> None:
    rules = _rules()
    assert {"train_fig2", "mc_optimal_critic", "render_section", "render_index", "run_info"} <= set(rules)
    missing = [name for name, body in rules.items() if not re.search(r"^\s+config=rule_config\(", body, re.MULTILINE)]
    assert not missing, f"rules without `params: config=rule_config(...)` (common.smk): {missing}"


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.py")), ids=lambda p: p.name)
def test_scripts_never_read_snakemake_config(script: pathlib.Path) -> None:
    """A script that peeks at snakemake.config reads keys Snakemake does not know it depends on."""
    tree = ast.parse(script.read_text())
    peeks = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "config"
        and isinstance(node.value, ast.Name)
        and node.value.id in ("snakemake", "smk")
    ]
    assert not peeks, f"{script.name} reads snakemake.config at line(s) {peeks}; use setup(snakemake) (params.config)"


def test_dry_run_does_not_import_torch(tmp_path: pathlib.Path) -> None:
    """`snakemake -n` on the default config with torch made unimportable."""
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("torch imported while building the DAG")\n')
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(blocker.parent), old) if p)
    try:
        proc = run_snakemake(tmp_path / "run", "--dry-run", "--cores", "1", configfiles=(DEFAULT_CONFIG,), timeout=600)
        check = run_snakemake(tmp_path / "run", "--version", configfiles=(DEFAULT_CONFIG,))
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    assert check.returncode == 0
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "torch imported while building the DAG" not in proc.stdout
    assert re.search(r"^train_fig2\s+\d+", proc.stdout, re.MULTILINE), proc.stdout[-3000:]


def test_the_blocker_really_blocks_torch(tmp_path: pathlib.Path) -> None:
    """Guard for the test above: with the blocker first on PYTHONPATH, `import torch` fails."""
    import subprocess
    import sys

    blocker = tmp_path / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text('raise ImportError("blocked")\n')
    proc = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "blocked" in proc.stderr


# ---- unreadable cubes and failed jobs ------------------------------------------------------------


def _cube() -> xr.Dataset:
    attrs = {"units": "1", "long_name": "x", "description": "x"}
    return xr.Dataset({"x": (("step",), np.arange(2000, dtype=np.float32), attrs)}, coords={"step": np.arange(2000)})


def test_truncated_cube_stops_the_run_naming_file_and_fix(tmp_path: pathlib.Path) -> None:
    cube = write_cube(_cube(), tmp_path / "results" / "cubes" / "montecarlo.nc", kind="montecarlo")
    size = cube.stat().st_size
    with open(cube, "r+b") as handle:
        handle.truncate(size // 2)
    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "1")
    assert proc.returncode != 0
    out = proc.stdout
    assert "results/cubes/montecarlo.nc" in out and "truncated or corrupt" in out, out[-4000:]
    assert "rm results/cubes/montecarlo.nc" in out, out[-4000:]


def test_failed_job_reports_why_on_console_and_prunes_a_stale_index(tmp_path: pathlib.Path) -> None:
    """A job that fails: its reason reaches the console (not only CalledProcessError), and an index of
    an earlier run that links to a page no longer there is removed."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make device=cuda fail")
    report = tmp_path / "results" / "report"
    report.mkdir(parents=True)
    (report / "index.html").write_text('<a href="about.html">about</a><a href="montecarlo.html">mc</a>')
    (report / "about.html").write_text("about")
    (report / "manifest.json").write_text(json.dumps({"sections": [{"html": "about.html"}, {"html": "montecarlo.html"}]}))
    proc = run_snakemake(tmp_path, "--cores", "1", "--config", "device=cuda", "--", "results/cubes/run_info.nc")
    assert proc.returncode != 0
    assert "vbmi: rule run_info failed:" in proc.stdout, proc.stdout[-4000:]
    assert "torch.cuda.is_available() is False" in proc.stdout
    assert not (report / "index.html").exists(), "the index still links to montecarlo.html, which is gone"
    assert "montecarlo.html" in proc.stdout  # the message says why the index went
    assert (report / "about.html").exists()


# ---- a config change reruns exactly the jobs that read it ----------------------------------------


def _changed_outputs(workdir: pathlib.Path, layer: dict, tmp_path: pathlib.Path) -> set[str]:
    """Outputs of the jobs `snakemake -n` would rerun because their params changed, with `layer` on top
    of the config (`--list-changes params` lists every output in Snakemake 9, so read the reasons)."""
    extra = tmp_path / "change.yaml"
    extra.write_text(yaml.safe_dump(layer))
    proc = run_snakemake(workdir, "--dry-run", "--cores", "1", configfiles=(DEFAULT_CONFIG, TINY_CONFIG, extra), timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    changed: set[str] = set()
    for job in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        output = re.search(r"^\s+output: (.*)$", job, re.MULTILINE)
        reason = re.search(r"^\s+reason: (.*)$", job, re.MULTILINE)
        if output and reason and "Params have changed" in reason.group(1):
            changed |= set(output.group(1).split(", "))
    return changed


@pytest.mark.slow
def test_config_change_reruns_exactly_the_jobs_that_read_it(tiny_pipeline: PipelineRun, tmp_path: pathlib.Path) -> None:
    tiny = yaml.safe_load(TINY_CONFIG.read_text())
    lr = float({**yaml.safe_load(DEFAULT_CONFIG.read_text())["training"], **tiny.get("training", {})}["lr"])
    fig2 = {str(p.relative_to(tiny_pipeline.workdir)) for p in tiny_pipeline.cubes if p.name.startswith("fig2_")}
    assert fig2
    # nothing changed: nothing to rerun
    assert _changed_outputs(tiny_pipeline.workdir, {}, tmp_path) == set()
    # training.lr: every Fig. 2 job, and run_info (it records the whole config); not the sweep, not Fig. 3
    changed = _changed_outputs(tiny_pipeline.workdir, {"training": {"lr": lr * 2}}, tmp_path)
    assert changed == fig2 | {"results/cubes/run_info.nc"}
    # sweep.figure_levels only picks what Figs. 6-7 show: the merge reruns, no sweep job retrains
    levels = {**yaml.safe_load(DEFAULT_CONFIG.read_text())["sweep"], **tiny.get("sweep", {})}["levels"]
    changed = _changed_outputs(tiny_pipeline.workdir, {"sweep": {"figure_levels": [levels[0]]}}, tmp_path)
    assert changed == {"results/cubes/sweep.nc", "results/cubes/run_info.nc"}
    # a Monte Carlo key: that job alone
    dim = {**yaml.safe_load(DEFAULT_CONFIG.read_text())["montecarlo"], **tiny.get("montecarlo", {})}["dim"]
    changed = _changed_outputs(tiny_pipeline.workdir, {"montecarlo": {"dim": dim + 1}}, tmp_path)
    assert changed == {"results/cubes/montecarlo.nc", "results/cubes/run_info.nc"}


def _code(*folders: str) -> list[pathlib.Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py") if "__pycache__" not in p.parts)


def test_library_and_pipeline_never_import_bench_and_keep_no_runtime_asserts() -> None:
    """bench is a development tool; and ``python -O`` strips ``assert``, so none may guard library logic."""
    imports = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
               for p in _code("src", "workflow") + [REPO / "Snakefile"] + sorted((REPO / "workflow").rglob("*.smk"))
               for i, line in enumerate(p.read_text().splitlines(), 1)
               if re.match(r"\s*(import bench\b|from bench\b)", line)]
    assert not imports, imports
    asserts = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in _code("src")
               for i, line in enumerate(p.read_text().splitlines(), 1)
               if re.match(r"\s*assert\b", line) or re.match(r"\s*if True:", line)]
    assert not asserts, asserts


def test_no_issue_numbers_where_users_read() -> None:
    """'issue 4' means nothing to a reader of the workflow, its config or the README."""
    paths = [REPO / "Snakefile", REPO / "Makefile", REPO / "README.md", REPO / "config.yaml"]
    paths += sorted(p for p in (REPO / "workflow").rglob("*") if p.is_file() and p.suffix in {".smk", ".py", ".yaml", ".rst", ""})
    paths += _code("src", "bench", "reports", "examples")
    found = [
        f"{path.relative_to(REPO)}:{i}: {line.strip()}"
        for path in paths
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if re.search(r"\bissues? #?\d+", line, re.IGNORECASE)
    ]
    assert not found, found
