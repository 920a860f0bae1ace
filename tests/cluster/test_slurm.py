"""The pipeline through profiles/slurm on a real single-node SLURM cluster.

tests/cluster/setup_slurm.sh brings up munged, slurmctld and slurmd (Debian's slurm-wlm, one node with
a fake GPU, no accounting) in a private /tmp directory; teardown_slurm.sh stops exactly those daemons.
Then the tiny config runs end to end with `--workflow-profile profiles/slurm`, every job submitted with
sbatch by snakemake-executor-plugin-slurm, and we check that

* the cubes equal those of the local run (`tiny_pipeline`, tests/conftest.py): data and coordinates
  exactly, attributes too, except provenance (created_at, git_commit, device) and the run's own
  timings (wall_s, steps_per_s, ... and variables in s or 1/s); the `performance` cube is all timings;
* the rules the profile gives a GPU were submitted with a GPU request and no other job was (what
  slurmctld recorded, `scontrol show job`, matched with the rules each job's log says it ran);
* a job that fails on purpose is reported as FAILED, retried, and the run ends instead of hanging.

Skipped, with the reason, only where this machine cannot run SLURM (not root, no apt-get to install it,
or the daemons do not start); VBMI_REQUIRE_SLURM=1 turns those skips into failures (CI on a machine
known to run it). Cost: the cluster starts in about a second; the pipeline's 14 SLURM jobs take a few
times the local run (each job starts snakemake twice, and status is polled every 2-12 s); the failing
job about a minute (two submissions, then the plugin's shutdown).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from _pipeline import REPO, PipelineRun, snakemake_command, snakemake_env

HERE = Path(__file__).resolve().parent
PROFILE = REPO / "profiles" / "slurm"
SETUP = HERE / "setup_slurm.sh"
TEARDOWN = HERE / "teardown_slurm.sh"

# What legitimately differs between two runs of the same config: provenance (vbmi.results) and the
# run's own speed, which the stages record beside their results (attrs wall_s, steps_per_s,
# wall_s_total; dSprites' train_seconds [s] and steps_per_s [1/s] variables). Measured on the tiny
# config: every other value, coordinate and attribute of every cube was identical to the local run.
RUN_SPECIFIC_ATTRS = {"created_at", "git_commit", "device"}
TIMING_NAME = re.compile(r"(^|_)(s|seconds|per_s)(_|$)")  # wall_s, steps_per_s, train_seconds, ...
TIMING_UNITS = {"s", "1/s"}
# Cubes of measurements of the run itself (per-rule wall times), not results of the config.
RUN_SPECIFIC_CUBES = {"performance"}


def _without_timings(ds: xr.Dataset) -> xr.Dataset:
    timing = [n for n, v in ds.data_vars.items() if TIMING_NAME.search(str(n)) or v.attrs.get("units") in TIMING_UNITS]
    return ds.drop_vars(timing)


def _comparable_attrs(attrs: dict) -> dict:
    """Attributes without provenance and timings, as plain values (netCDF gives numpy arrays)."""
    return {
        k: (v.tolist() if isinstance(v, np.ndarray | np.generic) else v)
        for k, v in attrs.items()
        if k not in RUN_SPECIFIC_ATTRS and not TIMING_NAME.search(k)
    }

# Test-only settings on top of the profile, for a private 2-core cluster: poll job status every 2 s
# instead of from 40 s (a finished job stays in squeue for MinJobAge = 3600 s there, so the plugin
# keeps squeue); outputs are on a local disk; keep the SLURM log of every job (they say which rules
# ran in which job); memory requests that fit the smallest CI machine (a job asking
# for more than the node's RealMemory can never start).
SLURM_TEST_ARGS = (
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--latency-wait",
    "5",
    "--slurm-keep-successful-logs",
    "--default-resources",
    "mem_mb=1000 * attempt",
    "runtime=30 * attempt",
)
# Hang guards, not speed targets: on this 2-core machine under a load of 13 the pipeline's 14 SLURM
# jobs took longer than 20 minutes; unloaded it is a few minutes.
PIPELINE_TIMEOUT_S = 1800
FAILING_TIMEOUT_S = 400


def _profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def _gpu_rules() -> set[str]:
    """Rules the profile gives a GPU (`gpu` > 0 or a gpu gres)."""
    return {
        rule
        for rule, res in _profile().get("set-resources", {}).items()
        if str(res.get("gpu", 0)) not in ("0", "") or "gpu" in str(res.get("gres", ""))
    }


# ---- the cluster -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    """A private single-node SLURM; yields the environment (SLURM_CONF, PATH) that reaches it."""
    required = os.environ.get("VBMI_REQUIRE_SLURM") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"VBMI_REQUIRE_SLURM=1 but {reason}", pytrace=False)
        pytest.skip(reason)

    if os.name != "posix" or os.geteuid() != 0:
        unavailable("SLURM test needs root (slurmd starts the jobs, munged runs as the munge user)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        unavailable("SLURM is not installed and there is no apt-get to install slurm-wlm and munge")
    # Not pytest's tmp_path: it is 0700 and munged (user munge) must reach its socket directory.
    cluster_dir = Path(tempfile.mkdtemp(prefix="vbmi-slurm-", dir="/tmp"))
    proc = subprocess.run(
        ["bash", str(SETUP), str(cluster_dir)], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        subprocess.run(["bash", str(TEARDOWN), str(cluster_dir), "--purge"], capture_output=True, check=False)
        what = "cannot run SLURM" if proc.returncode == 77 else "SLURM daemons did not start"
        unavailable(f"{what} (setup_slurm.sh exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    env = snakemake_env()
    env["SLURM_CONF"] = str(cluster_dir / "slurm.conf")
    env["PATH"] = os.pathsep.join([str(cluster_dir / "bin"), env["PATH"]])
    try:
        yield env
    finally:
        subprocess.run(
            ["bash", str(TEARDOWN), str(cluster_dir), "--purge"], capture_output=True, timeout=120, check=False
        )


def _jobs(env: dict[str, str]) -> list[dict[str, str]]:
    """Every job slurmctld remembers (MinJobAge = 1 h on the test cluster), as field dicts."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job"], env=env, capture_output=True, text=True, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        if line.startswith("JobId="):
            jobs.append(dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", line)))
    return jobs


def _rules_run_in(job: dict[str, str]) -> set[str]:
    """Rules a job ran: the `rule <name>:` lines snakemake printed into the job's SLURM log (a group
    job prints one per member), else the rule the plugin put in the job's comment (`rule_<name>` or
    `rule_<name>_wildcards_<values>`), for a job that failed before printing one."""
    log = Path(job["StdOut"])
    rules = set(re.findall(r"^\s*rule (\w+):", log.read_text(), re.M)) if log.is_file() else set()
    if not rules and job.get("Comment", "").startswith("rule_"):
        rules = {job["Comment"].removeprefix("rule_").split("_wildcards_")[0]}
    return rules


def _asks_gpu(job: dict[str, str]) -> bool:
    """Whether sbatch was given --gpus/--gres with a gpu (scontrol: TresPerJob / TresPerNode)."""
    return any("gpu" in job.get(key, "") for key in ("TresPerJob", "TresPerNode", "TresPerTask"))


def _snakemake(workdir: Path, env: dict[str, str], *args: str, timeout: float, **kw) -> subprocess.CompletedProcess:
    """snakemake through profiles/slurm; a run that outlives `timeout` is killed (SIGKILL) and fails."""
    cmd = kw.pop("cmd", None) or snakemake_command(workdir, "--workflow-profile", str(PROFILE), *args)
    try:
        return subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"snakemake on SLURM still running after {timeout} s (hung?):\n{out[-6000:]}", pytrace=False)


# ---- the profile itself (no cluster needed) --------------------------------------------------------


def test_profile_names_existing_rules(tmp_path):
    """A rule renamed in workflow/rules would silently lose its GPU or group: Snakemake ignores
    set-resources and groups entries of rules that do not exist. Every stage is on in config.yaml."""
    out = subprocess.run(
        snakemake_command(tmp_path, "--list-rules", configfiles=(REPO / "config.yaml",)),
        cwd=tmp_path,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rules = set(re.findall(r"^(\w+)\s*$", out, re.M))
    profile = _profile()
    named = set(profile.get("set-resources", {})) | set(profile.get("groups", {}))
    assert named - rules == set(), f"profiles/slurm/config.yaml names rules the workflow lacks; rules: {sorted(rules)}"
    assert _gpu_rules(), "the profile gives no rule a GPU"
    assert profile["slurm-status-command"] == "squeue"


# ---- the tiny pipeline on SLURM ------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory) -> tuple[PipelineRun, subprocess.CompletedProcess, float]:
    workdir = tmp_path_factory.mktemp("tiny_on_slurm")
    start = time.monotonic()
    # --retries 0: a broken rule fails the run at once instead of three times (retries have their own test).
    proc = _snakemake(workdir, slurm, *SLURM_TEST_ARGS, "--retries", "0", timeout=PIPELINE_TIMEOUT_S)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"tiny pipeline on SLURM failed (exit {proc.returncode}):\n{proc.stdout[-8000:]}", pytrace=False)
    results = workdir / "results"
    run = PipelineRun(
        workdir=workdir,
        results=results,
        manifest={},
        cubes=sorted((results / "cubes").rglob("*.nc")),
        output=proc.stdout,
    )
    return run, proc, seconds


@pytest.mark.slow
def test_cubes_equal_local_run(slurm_run, tiny_pipeline):
    run, _, seconds = slurm_run
    local = {p.relative_to(tiny_pipeline.results) for p in tiny_pipeline.cubes}
    remote = {p.relative_to(run.results) for p in run.cubes}
    assert remote == local, "the SLURM run wrote a different set of cubes"
    compared = 0
    for rel in sorted(local):
        if rel.stem in RUN_SPECIFIC_CUBES:
            continue
        with xr.open_dataset(tiny_pipeline.results / rel) as a, xr.open_dataset(run.results / rel) as b:
            a, b = _without_timings(a.load()), _without_timings(b.load())
            xr.testing.assert_equal(a, b)  # values, dims, coordinates; not attrs
            assert _comparable_attrs(b.attrs) == _comparable_attrs(a.attrs), f"{rel}: attributes differ"
            for name in a.variables:
                assert _comparable_attrs(b[name].attrs) == _comparable_attrs(a[name].attrs), (
                    f"{rel}: attributes of {name} differ"
                )
        compared += 1
    assert compared > 0, "no cube to compare"
    print(f"tiny pipeline on SLURM: {seconds:.0f} s, {compared} cubes equal to the local run")


@pytest.mark.slow
def test_gpu_rules_submitted_with_gpu_request(slurm_run, slurm):
    """What slurmctld recorded for each job of the run, against the rules that job ran."""
    gpu_rules = _gpu_rules()
    seen = []
    for job in _jobs(slurm):
        if not Path(job.get("WorkDir", "")) == slurm_run[0].workdir:
            continue
        rules = _rules_run_in(job)
        assert rules, f"SLURM job {job['JobId']}: no rule found in its log {job['StdOut']}"
        expected = bool(rules & gpu_rules)
        assert _asks_gpu(job) == expected, (
            f"SLURM job {job['JobId']} ran {sorted(rules)}: GPU request "
            f"{'missing' if expected else 'unexpected'} (TresPerJob={job.get('TresPerJob')!r})"
        )
        seen.append((job["JobId"], sorted(rules), _asks_gpu(job)))
    assert seen, "no SLURM job of the run found"
    assert any(gpu for *_, gpu in seen), f"no GPU rule ran in the tiny pipeline; jobs: {seen}"
    assert any(not gpu for *_, gpu in seen), f"every job asked for a GPU; jobs: {seen}"


# ---- failure -------------------------------------------------------------------------------------

FAILING_SNAKEFILE = textwrap.dedent(
    """
    rule fail_on_purpose:
        output:
            "never.txt",
        shell:
            "echo failing on purpose >&2; exit 3"
    """
)


@pytest.mark.slow
def test_failing_job_is_reported_failed_not_hung(slurm, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
        "--workflow-profile", str(PROFILE), *SLURM_TEST_ARGS, "--retries", "1",
    ]  # fmt: skip
    proc = _snakemake(tmp_path, slurm, cmd=cmd, timeout=FAILING_TIMEOUT_S)
    assert proc.returncode != 0
    assert not (tmp_path / "never.txt").exists()
    failed = re.findall(r"SLURM-job '(\d+)' failed, SLURM status is: 'FAILED'", proc.stdout)
    assert len(set(failed)) == 2, f"expected the job and its one retry to fail in SLURM:\n{proc.stdout[-4000:]}"
    states = {job["JobId"]: job["JobState"] for job in _jobs(slurm)}
    assert all(states[j] == "FAILED" for j in failed), states
