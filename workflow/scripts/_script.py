"""Shared plumbing for the thin `script:` adapters in workflow/scripts (not a vbmi library module).

    from _script import setup, save_cube
    config = setup(snakemake)            # log redirect, torch threads, returns snakemake.params.config
    ds = vbmi.<stage>.run(...)           # the one library call
    save_cube(snakemake, ds, kind="training")

Snakemake puts this directory on sys.path for scripts run with `script:`.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import traceback
from typing import Any

# Make `import vbmi` work from an environment where vbmi is not installed (a conda env from envs/).
REPO = pathlib.Path(__file__).resolve().parents[2]
_SRC = REPO / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    try:
        import vbmi  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(_SRC))


def rule_config(snakemake: Any) -> dict[str, Any]:
    """The config a rule declared it reads: `params: config=rule_config(...)` (workflow/rules/common.smk).

    Scripts read config only through this, never through `snakemake.config`: Snakemake reruns a job
    when its params change, so a key read any other way could change without rerunning the job.
    """
    config = getattr(snakemake.params, "config", None)
    if not isinstance(config, dict):
        raise RuntimeError(
            f"rule {snakemake.rule} has no `config` param; give it `params: config=rule_config(...)` "
            "naming the config keys its script reads (workflow/rules/common.smk)"
        )
    return config


def _report_failures_on_console(console: Any, log: pathlib.Path, rule: str) -> None:
    """On an uncaught exception, write the traceback to the log and the error message to the console, so
    the reason a job failed shows beside Snakemake's own error (which only says the script failed)."""

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        traceback.print_exception(kind, error, tb)
        sys.stderr.flush()
        reason = "".join(traceback.format_exception_only(kind, error)).strip()
        lines = reason.splitlines()
        if len(lines) > 12:  # e.g. a notebook's whole traceback: its head and its last lines say enough
            reason = "\n".join([lines[0], "  ...", *lines[-8:]])
        console.write(f"vbmi: rule {rule} failed: {reason}\n  (full traceback in {log})\n")
        console.flush()

    sys.excepthook = hook


def setup(snakemake: Any) -> dict[str, Any]:
    """Send stdout/stderr (Python and C level) to the job's log, set torch threads, return the rule's
    config (`snakemake.params.config`, see rule_config)."""
    config = rule_config(snakemake)
    if snakemake.log:
        log = pathlib.Path(str(snakemake.log[0]))
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log, "w", buffering=1)  # noqa: SIM115 (lives as long as the job)
        sys.stdout.flush()
        sys.stderr.flush()
        console = os.fdopen(os.dup(2), "w", buffering=1)  # the terminal, before stderr goes to the log
        os.dup2(handle.fileno(), 1)  # C/C++ writes (torch warnings, crashes) land in the log too
        os.dup2(handle.fileno(), 2)
        sys.stdout = sys.stderr = handle
        _report_failures_on_console(console, log, snakemake.rule)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    threads = max(1, int(snakemake.threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for any subprocess (e.g. a papermill kernel)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(threads)
    logging.getLogger("vbmi.workflow").info(
        "rule %s, threads %d, scale %s", snakemake.rule, threads, config.get("scale")
    )
    return config


def resolve_device(config: dict[str, Any]) -> str:
    """The device a job runs on: config `device`, with auto resolved to cuda when torch sees a GPU."""
    from vbmi.utils import resolve_device as _resolve

    return str(_resolve(config.get("device", "auto")))


def save_cube(snakemake: Any, ds: Any, *, kind: str, output: str = "cube", device: str | None = None) -> pathlib.Path:
    """Write `ds` to the rule's named output `output` with the run's provenance (vbmi.results.write_cube).

    The cube's `config_json` is the part of the config the rule declared (its params.config).
    """
    from vbmi.results import write_cube

    config = rule_config(snakemake)
    return write_cube(
        ds,
        getattr(snakemake.output, output),
        kind=kind,
        config=config,
        scale=config["scale"],
        device=device or resolve_device(config),
    )
