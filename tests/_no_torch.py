"""Run a Python snippet in a subprocess in which ``import torch`` fails, with this repo's ``src`` first on
the path: what the torch-free modules (run planning, checkpoint I/O) promise to the Snakefile."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"

_BLOCKER = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch made unimportable")
sys.meta_path.insert(0, _Block())
sys.path.insert(0, {str(SRC)!r})
"""


def run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess:
    """``python -c <blocker + code> *args`` with an empty PYTHONPATH; stdout/stderr captured as text."""
    env = dict(os.environ, PYTHONPATH="")
    return subprocess.run([sys.executable, "-c", _BLOCKER + textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=env)
