"""The Snakemake workflow: lint, format, DAGs of every scale, config errors, and the tiny run end to end."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml

from vbmi.results import (
    KIND_ATTR,
    PROVENANCE_ATTRS,
    REQUIRED_VARIABLE_ATTRS,
    cube_config,
    drop_timings,
    read_cube,
)

from _pipeline import DEFAULT_CONFIG, PAPER_CONFIG, REPO, TEST_CORES, TINY_CONFIG, PipelineRun, run_snakemake

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
# Which rule file implements each activate key (for "every enabled stage has a section").
STAGE_RULE_FILE = {
    "training": "training",
    "sweep": "training",
    "montecarlo": "montecarlo",
    "gradients": "montecarlo",
    "dsprites": "dsprites",
    "estimators": "estimators",
}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from snakemake's 'Job stats' table."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _stage_implemented(stage: str) -> bool:
    text = (REPO / "workflow" / "rules" / f"{STAGE_RULE_FILE[stage]}.smk").read_text()
    return re.search(r"^\s*register_section\(", text, re.MULTILINE) is not None


# ---- static checks -------------------------------------------------------------------------------


def test_lint_is_clean(tmp_path: pathlib.Path) -> None:
    proc = run_snakemake(tmp_path, "--lint", configfiles=(DEFAULT_CONFIG,), timeout=600)
    assert proc.returncode == 0, proc.stdout
    assert "Lints for" not in proc.stdout, proc.stdout


def test_snakefmt_check_passes() -> None:
    proc = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "snakefmt"), "--check", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Snakefile" in proc.stdout + proc.stderr or "file(s) would be left unchanged" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "configfiles",
    [(DEFAULT_CONFIG,), (DEFAULT_CONFIG, TINY_CONFIG), (DEFAULT_CONFIG, PAPER_CONFIG)],
    ids=["default", "tiny", "paper"],
)
def test_dry_run_resolves_the_whole_dag(tmp_path: pathlib.Path, configfiles: tuple[pathlib.Path, ...]) -> None:
    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "2", configfiles=configfiles, timeout=600)
    assert proc.returncode == 0, proc.stdout
    counts = _job_counts(proc.stdout)
    assert counts["render_index"] == 1 and counts["run_info"] == 1 and counts["all"] == 1
    active = [s for s, on in yaml.safe_load(DEFAULT_CONFIG.read_text())["activate"].items() if on]
    implemented = [s for s in active if _stage_implemented(s)]
    # one about page plus at least one page per implemented, active stage
    assert counts["render_section"] >= 1 + len(implemented)
    if implemented:
        assert set(counts) & _stage_rules(), "stages are active but none of their rules is in the DAG"
    assert not (tmp_path / "results").exists()


def _stage_rules() -> set[str]:
    return {
        name
        for stem in set(STAGE_RULE_FILE.values())
        for name in re.findall(r"^\s*rule (\w+):", (REPO / "workflow" / "rules" / f"{stem}.smk").read_text(), re.MULTILINE)
    }


def test_switched_off_stages_leave_the_dag(tmp_path: pathlib.Path) -> None:
    off = tmp_path / "off.yaml"
    off.write_text(yaml.safe_dump({"activate": {k: False for k in STAGE_RULE_FILE}}))
    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "1", configfiles=(DEFAULT_CONFIG, TINY_CONFIG, off))
    assert proc.returncode == 0, proc.stdout
    counts = _job_counts(proc.stdout)
    assert not set(counts) & _stage_rules(), f"stage rules ran with every stage off: {counts}"
    assert counts["render_index"] == 1 and counts["run_info"] == 1
    assert counts["render_section"] >= 1  # about (and the other built-in sections)


# ---- bad configs fail before any job, naming the key ---------------------------------------------


def _walk(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for key, sub in schema.get("properties", {}).items():
        yield (*path, key), sub
        yield from _walk(sub, (*path, key))


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


def _find_key(predicate) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    return next(((p, s) for p, s in _walk(SCHEMA) if predicate(p, s)), None)


def _bad_steps() -> tuple[str, Any] | None:
    found = _find_key(
        lambda p, s: "steps" in p[-1]
        and (s.get("type") == "integer" or s.get("items", {}).get("type") == "integer")
    )
    if found is None:
        return None
    path, sub = found
    return ".".join(path), _nest(path, [-5] if sub.get("type") == "array" else -5)


def _bad_alpha() -> tuple[str, Any] | None:
    found = _find_key(lambda p, s: p[-1].startswith("alpha") and s.get("type") in ("number", "array"))
    if found is None:
        return None
    path, sub = found
    return ".".join(path), _nest(path, [0.5, 1.5] if sub.get("type") == "array" else 1.5)


BAD_CONFIGS = {
    "unknown_top_level_key": ("colour", {"colour": "blue"}),
    "unknown_nested_key": ("report.titel", {"report": {"titel": "x"}}),
    "wrong_type": ("threads_per_job", {"threads_per_job": "two"}),
}
# Checked together in one run (each parse of the workflow costs seconds): every key is named.
MORE_BAD_CONFIGS = {
    "activate.plots": {"activate": {"plots": True}},
    "activate.dsprites": {"activate": {"dsprites": "yes"}},
    "seed": {"seed": -1},
    "device": {"device": "tpu"},
    "report.cell_timeout_s": {"report": {"cell_timeout_s": 0}},
}


def _fails_before_any_job(tmp_path: pathlib.Path, override: dict[str, Any], keys: list[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    workdir = tmp_path / "run"
    proc = run_snakemake(workdir, "--cores", "1", configfiles=(DEFAULT_CONFIG, TINY_CONFIG, bad), timeout=600)
    assert proc.returncode != 0
    assert "invalid configuration" in proc.stdout, proc.stdout
    for key in keys:  # an array item is named with its index: montecarlo.alphas[1]
        assert re.search(rf"config key '{re.escape(key)}(\[\d+\])?'", proc.stdout), (key, proc.stdout)
    assert not (workdir / "results").exists(), "a job ran despite the bad config"


@pytest.mark.parametrize("case", [*BAD_CONFIGS, "negative_steps", "alpha_outside_unit_interval"])
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path: pathlib.Path, case: str) -> None:
    if case == "negative_steps":
        found = _bad_steps()
    elif case == "alpha_outside_unit_interval":
        found = _bad_alpha()
    else:
        found = BAD_CONFIGS[case]
    if found is None:
        pytest.skip(f"{case}: no such key in the schema yet (its stage has not declared it)")
    key, override = found
    _fails_before_any_job(tmp_path, override, [key])


def test_every_bad_key_is_named_at_once(tmp_path: pathlib.Path) -> None:
    merged: dict[str, Any] = {}
    for override in MORE_BAD_CONFIGS.values():
        for section, value in override.items():
            if isinstance(value, dict):
                merged.setdefault(section, {}).update(value)
            else:
                merged[section] = value
    _fails_before_any_job(tmp_path, merged, list(MORE_BAD_CONFIGS))


# Gaps JSON Schema alone leaves open (NaN passes minimum/maximum, a path is only a string): each is named.
CONFIG_GAPS = {
    "montecarlo.alphas[1]": {"montecarlo": {"alphas": [0.5, float("nan")]}},
    "training.lr": {"training": {"lr": float("inf")}},
    "training.bounds[0]": {"training": {"bounds": [{"bound": "interpolated"}, {"bound": "nce", "alpha": 0.5}]}},
    "training.bounds[1].alpha": {},  # same override as the line above
    "dsprites.npz": {"activate": {"dsprites": True}, "dsprites": {"npz": "no/such/dsprites.npz"}},
}
CONFIG_GAP_WORDS = {
    "montecarlo.alphas[1]": "not a finite number",
    "training.lr": "not a finite number",
    "training.bounds[0]": "bound 'interpolated' needs an alpha",
    "training.bounds[1].alpha": "bound 'nce' takes no alpha",
    "dsprites.npz": "no such file",
}


def test_config_gaps_are_named_before_any_job(tmp_path: pathlib.Path) -> None:
    merged: dict[str, Any] = {}
    for override in CONFIG_GAPS.values():
        for section, value in override.items():
            merged.setdefault(section, {}).update(value)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(merged))
    workdir = tmp_path / "run"
    proc = run_snakemake(workdir, "--cores", "1", configfiles=(DEFAULT_CONFIG, TINY_CONFIG, bad), timeout=600)
    assert proc.returncode != 0
    assert "invalid configuration" in proc.stdout, proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("- config key")]
    for key, words in CONFIG_GAP_WORDS.items():
        assert any(f"config key '{key}'" in line and words in line for line in lines), (key, lines)
    assert len(lines) == len(CONFIG_GAP_WORDS), lines  # one message each, no duplicates
    assert "Traceback" not in proc.stdout.split("invalid configuration")[1]
    assert not (workdir / "results").exists(), "a job ran despite the bad config"


def test_failed_job_leaves_no_cube_and_logs_why(tmp_path: pathlib.Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to make device=cuda fail")
    proc = run_snakemake(tmp_path, "--cores", "1", "--config", "device=cuda", "--", "results/cubes/run_info.nc")
    assert proc.returncode != 0
    assert not (tmp_path / "results" / "cubes" / "run_info.nc").exists()
    assert not list((tmp_path / "results").rglob("*.tmp")), "a temporary cube was left behind"
    log = (tmp_path / "results" / "logs" / "run_info.log").read_text()
    assert "torch.cuda.is_available() is False" in log, log


# ---- the tiny pipeline end to end ----------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


@pytest.mark.slow
def test_tiny_pipeline_writes_every_cube(tiny_pipeline: PipelineRun) -> None:
    listed = {pathlib.Path(p) for s in tiny_pipeline.manifest["sections"] for v in s["cubes"].values() for p in (v if isinstance(v, list) else [v])}
    for path in listed:
        assert (tiny_pipeline.workdir / path).is_file(), f"manifest cube {path} missing"
    assert tiny_pipeline.results / "cubes" / "run_info.nc" in tiny_pipeline.cubes
    # (the claims section also lists claims.json, which is not a cube)
    assert {tiny_pipeline.workdir / p for p in listed if p.suffix == ".nc"} <= set(tiny_pipeline.cubes)
    for path in tiny_pipeline.cubes:
        cube = read_cube(path)
        for attr in PROVENANCE_ATTRS:
            assert isinstance(cube.attrs.get(attr), str) and cube.attrs[attr], f"{path.name}: {attr}"
        assert SNAKE_CASE.match(cube.attrs[KIND_ATTR])
        assert cube.attrs["scale"] == "tiny", path
        assert cube.attrs["device"] in ("cpu", "cuda"), path
        assert cube_config(cube)["scale"] == "tiny"
        for dim in cube.dims:
            assert SNAKE_CASE.match(str(dim)) and dim in cube.coords, f"{path.name}: dim {dim}"
        for name, var in cube.data_vars.items():
            for attr in REQUIRED_VARIABLE_ATTRS:
                assert var.attrs.get(attr), f"{path.name}: {name} lacks {attr}"
            if np.issubdtype(var.dtype, np.floating):
                assert var.dtype == np.float32, f"{path.name}: {name} is {var.dtype}"
    info = read_cube(tiny_pipeline.results / "cubes" / "run_info.nc", kind="run_info")
    assert info["active"].sel(stage="training").dtype == bool


@pytest.mark.slow
def test_tiny_index_links_every_active_section(tiny_pipeline: PipelineRun) -> None:
    report = tiny_pipeline.results / "report"
    parser = _Links()
    parser.feed((report / "index.html").read_text())
    sections = tiny_pipeline.manifest["sections"]
    assert tiny_pipeline.manifest["scale"] == "tiny"
    names = [s["name"] for s in sections]
    # the claims page first when registered, then about; the engineering appendix (performance) last
    assert names[: 2 if "claims" in names else 1] == (["claims", "about"] if "claims" in names else ["about"])
    groups = [s["group"] for s in sections]
    assert groups == sorted(groups, key=lambda g: g == "appendix"), groups
    assert [s["name"] for s in sections if s["group"] == "appendix"] == ["performance"]
    assert parser.hrefs == [s["html"] for s in sections]
    index = (report / "index.html").read_text()
    assert index.index("Engineering appendix") > index.index(f'href="{names[-2]}.html"')
    assert index.index("Engineering appendix") < index.index('href="performance.html"')
    for s in sections:
        page = (report / s["html"]).read_text()
        assert "index.html" in page  # the back link
    active = {k for k, on in yaml.safe_load(TINY_CONFIG.read_text()).get("activate", {}).items() if on} or {
        k for k, on in yaml.safe_load(DEFAULT_CONFIG.read_text())["activate"].items() if on
    }
    by_stage = {s["stage"] for s in sections}
    for stage in active:
        if _stage_implemented(stage):
            assert stage in by_stage, f"activate.{stage} is on but the index has no {stage} section"
    assert by_stage - {None} <= active
    about = (report / "about.html").read_text()
    assert "tiny" in about and "provenance" in about


@pytest.mark.slow
def test_tiny_claims_page(tiny_pipeline: PipelineRun) -> None:
    """claims.json holds every claim with a computed verdict, claims.html shows each one linked to its
    figure's page, and every stage page with claims opens with its own verdicts."""
    from vbmi.claims import CLAIMS, VERDICTS

    report = tiny_pipeline.results / "report"
    entries = json.loads((report / "claims.json").read_text())
    assert [e["id"] for e in entries] and {e["id"] for e in entries} == set(CLAIMS)
    for e in entries:
        assert {"id", "source", "claim", "verdict", "evidence", "reason", "figure"} <= set(e), e
        assert e["verdict"] in VERDICTS and e["reason"], e
    page = (report / "claims.html").read_text()
    rendered = {s["html"] for s in tiny_pipeline.manifest["sections"]}
    for e in entries:
        assert f'id="{e["id"]}"' in page
        if e["reason"] != "stage not run":
            assert e["figure"] in rendered, f"{e['id']} links to {e['figure']}, which was not rendered"
            assert e["id"] in (report / e["figure"]).read_text(), f"{e['figure']} does not show {e['id']}"


@pytest.mark.slow
def test_rerun_gives_identical_cubes(tiny_pipeline: PipelineRun, tmp_path: pathlib.Path) -> None:
    """Same seed and config, fresh directory: every experiment cube (and run_info) is identical but for
    created_at and variables marked as wall-clock timings (vbmi.results.TIMING_ATTR). Built-in
    sections' cubes (performance: all timings) are not rerun."""
    targets = ["results/cubes/run_info.nc"] + [
        p
        for s in tiny_pipeline.manifest["sections"]
        if s["stage"] is not None
        for v in s["cubes"].values()
        for p in (v if isinstance(v, list) else [v])
    ]
    proc = run_snakemake(tmp_path, "--cores", TEST_CORES, *dict.fromkeys(targets))
    assert proc.returncode == 0, proc.stdout[-8000:]
    rerun = sorted((tmp_path / "results" / "cubes").rglob("*.nc"))
    assert {p.relative_to(tmp_path) for p in rerun} >= {pathlib.Path(t) for t in targets}
    differing = {}
    for again_path in rerun:
        again = drop_timings(read_cube(again_path))
        before = drop_timings(read_cube(tiny_pipeline.workdir / again_path.relative_to(tmp_path)))
        if not again.identical(before):
            names = sorted(str(n) for n in set(again.variables) | set(before.variables)
                           if n not in again.variables or n not in before.variables or not again[n].identical(before[n]))
            names += sorted(f"attrs.{k}" for k in set(again.attrs) | set(before.attrs)
                            if not np.array_equal(np.asarray(again.attrs.get(k, np.nan), dtype=object),
                                                  np.asarray(before.attrs.get(k, np.nan), dtype=object)))
            differing[str(again_path.relative_to(tmp_path))] = names
    assert not differing, (
        "cubes differ between two runs of the same config and seed (mark wall-clock measurements: "
        f"variable attribute vbmi_timing='wall-clock', dataset attribute named timing_*): {differing}"
    )


@pytest.mark.slow
def test_snakemake_report_wraps_every_page(tiny_pipeline: PipelineRun) -> None:
    proc = run_snakemake(tiny_pipeline.workdir, "--report", "report.html", timeout=600)
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert (tiny_pipeline.workdir / "report.html").stat().st_size > 10_000
    json.dumps(tiny_pipeline.manifest)  # serialisable as written
