"""Shared fixtures of the dSprites tests."""

from __future__ import annotations

import numpy as np
import pytest

from vbmi.dsprites import data as D


@pytest.fixture(scope="module")
def ds():
    """64 procedurally rendered frames: enough for a few training steps at batch 8."""
    return D.from_renderer(np.random.default_rng(0).choice(D.N_IMAGES, 64, replace=False))
