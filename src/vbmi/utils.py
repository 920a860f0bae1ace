"""Small shared helpers: device resolution, generators, numeric limits."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "make_generator", "exp_clamp", "as_generator"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``"auto"`` once: CUDA when available, else CPU. Library code never calls ``.cuda()``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch.cuda.is_available() is False")
    return device


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with ``seed`` (randomness is always passed in, never global)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(seed)
    return g


def as_generator(seed_or_gen: int | torch.Generator | None, device: str | torch.device = "cpu") -> torch.Generator:
    """Accept an int seed or a ready ``torch.Generator``; ``None`` is refused (every draw needs a seed)."""
    if isinstance(seed_or_gen, torch.Generator):
        return seed_or_gen
    if seed_or_gen is None:
        raise ValueError("an explicit seed or torch.Generator is required (vbmi never draws from global RNG state)")
    return make_generator(seed_or_gen, device)


def exp_clamp(dtype: torch.dtype) -> float:
    """Largest argument for which ``exp`` stays comfortably finite in ``dtype``.

    Used by the single-sample bounds (NWJ, TUBA, JS, I_alpha): their marginal term is
    ``exp(logmeanexp(...))``, which overflows once critic values pass ~88.7 in float32 (measured during
    training at I = 10 nats). The argument is clamped to ``log(finfo.max) - 8``; an estimate
    that hits the clamp is ``-exp(80.7)`` in float32, i.e. a diverged run, and carries no gradient
    through the clamped term.
    """
    return float(torch.log(torch.tensor(torch.finfo(dtype).max, dtype=torch.float64))) - 8.0
