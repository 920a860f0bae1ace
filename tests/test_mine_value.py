"""MINE's reported value is I_DV exactly, also where its TUBA gradient term is large."""

from __future__ import annotations

import pytest
import torch

from vbmi.bounds import BOUNDS, mine_ema_update


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("offset", [0.0, 500.0, 5e4])
def test_mine_value_equals_dv_with_large_scores(dtype, offset):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(64, 64, generator=g, dtype=dtype) * 3 + 8 * torch.eye(64, dtype=dtype) + offset
    s.requires_grad_(True)
    log_a = mine_ema_update(None, s).unsqueeze(-1) - 20.0  # a stale EMA: large TUBA term
    m = BOUNDS["mine"](s, log_baseline=log_a)
    assert m.item() == BOUNDS["dv"](s).item()
    m.backward()  # the gradient is TUBA's at a = EMA, finite
    assert torch.isfinite(s.grad).all()
    s2 = s.detach().clone().requires_grad_(True)
    BOUNDS["tuba"](s2, log_baseline=log_a).backward()
    torch.testing.assert_close(s.grad, s2.grad)
