"""Fixture cube for reports/table3_sweep.py (see _training_cubes.py)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _training_cubes import sweep_cube  # noqa: E402


def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]:
    return {"sweep_cube": sweep_cube(tmp_dir)}
