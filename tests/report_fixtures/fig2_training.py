"""Fixture cubes for reports/fig2_training.py (see _training_cubes.py)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _training_cubes import fig2_cubes  # noqa: E402


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    return {"fig2_cubes": fig2_cubes(tmp_dir)}
