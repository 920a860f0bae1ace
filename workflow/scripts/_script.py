"""Shared plumbing for the thin `script:` adapters in workflow/scripts (not a vbmi library module).

    from _script import setup, save_cube
    config = setup(snakemake)            # log redirect, torch threads, returns the resolved config
    ds = vbmi.<stage>.run(...)           # the one library call
    save_cube(snakemake, ds, kind="training")

Snakemake puts this directory on sys.path for scripts run with `script:`.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
from typing import Any

# Make `import vbmi` work from an environment where vbmi is not installed (a conda env from envs/).
REPO = pathlib.Path(__file__).resolve().parents[2]
_SRC = REPO / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    try:
        import vbmi  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(_SRC))


def setup(snakemake: Any) -> dict[str, Any]:
    """Send stdout/stderr (Python and C level) to the job's log, set torch threads, return the config."""
    if snakemake.log:
        log = pathlib.Path(str(snakemake.log[0]))
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log, "w", buffering=1)  # noqa: SIM115 (lives as long as the job)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(handle.fileno(), 1)  # C/C++ writes (torch warnings, crashes) land in the log too
        os.dup2(handle.fileno(), 2)
        sys.stdout = sys.stderr = handle
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
        "rule %s, threads %d, scale %s", snakemake.rule, threads, snakemake.config.get("scale")
    )
    return snakemake.config


def resolve_device(config: dict[str, Any]) -> str:
    """The device a job runs on: config `device`, with auto resolved to cuda when torch sees a GPU."""
    from vbmi.utils import resolve_device as _resolve

    return str(_resolve(config.get("device", "auto")))


def save_cube(snakemake: Any, ds: Any, *, kind: str, output: str = "cube", device: str | None = None) -> pathlib.Path:
    """Write `ds` to the rule's named output `output` with the run's provenance (vbmi.results.write_cube)."""
    from vbmi.results import write_cube

    config = snakemake.config
    return write_cube(
        ds,
        getattr(snakemake.output, output),
        kind=kind,
        config=config,
        scale=config["scale"],
        device=device or resolve_device(config),
    )
