"""Comparison 3: the optimal-critic Monte Carlo, vectorised over replicates vs batch by batch, and vs the roofline.

Work unit: one *bound evaluation* = the four bounds (NWJ, NCE, I_alpha, JS) with their optimal critics
on one batch of K pairs from the d = 20 Gaussian, starting from the samples: score matrix
``log p(y_j | x_i)`` plus the four bounds. The vectorised side handles R replicates as a leading dim
(in memory-bounded chunks); the loop side runs the same function on one ``[K, K]`` batch at a time.

At K = 512 the bounds alone are timed per score element and set against the machine's own roofline,
measured alternately in the same run: a large fp32 matmul (FLOP/s) and elementwise passes over a
tensor of the same shape (``exp`` and ``logsumexp`` down the columns, the reduction every bound needs).
Both bounds and score matrix are elementwise/reduction work (the score matrix is a d = 20 matmul,
40 FLOP per element), so the exp/logsumexp pass is the roofline that applies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vbmi import bounds as B
from vbmi.data import gaussian_log_p_y, gaussian_log_p_y_given_x, mi_to_rho, sample_gaussian

from . import plain
from ._timing import alternate, speedup

BOUND_NAMES = ("nwj", "nce", "interpolated", "js")


def _vbmi_mc():
    """vbmi's Monte Carlo module, or None when it is not there yet."""
    try:
        from vbmi.experiments import montecarlo
    except ImportError:
        return None
    return montecarlo if hasattr(montecarlo, "optimal_critic_bounds") else None


def implementation() -> str:
    """Which vectorised Monte Carlo is timed: vbmi's when it exists, else this module's fallback."""
    return ("vbmi.experiments.montecarlo.optimal_critic_bounds" if _vbmi_mc() is not None
            else "bench.montecarlo.registry_four_bounds (vbmi.bounds registry calls)")


@torch.no_grad()
def registry_four_bounds(log_p: Tensor, log_py: Tensor, alpha: float) -> Tensor:
    """``[4, ...]`` from plain :mod:`vbmi.bounds` calls: NWJ (f = 1 + log p/p(y)), NCE (f = log p),
    I_alpha (f = log p, q = p(y)), JS (logits V = log p/p(y); its value is NWJ on 1 + V)."""
    ratio = log_p - log_py.unsqueeze(-2)  # [..., K, K]: log p(y_j|x_i) - log p(y_j)
    return torch.stack([
        B.nwj(ratio + 1.0),
        B.nce(log_p),
        B.interpolated(log_p, log_baseline=log_py, alpha=alpha),
        B.js(ratio),
    ])


@torch.no_grad()  # as vbmi.experiments.montecarlo.simulate runs it (its no-grad path updates temporaries in place)
def four_bounds(log_p: Tensor, log_py: Tensor, alpha: float) -> Tensor:
    """``[4, ...]`` = NWJ, NCE, I_alpha, JS with the optimal critics, by vbmi's Monte Carlo evaluator."""
    mc = _vbmi_mc()
    if mc is None:
        return registry_four_bounds(log_p, log_py, alpha)
    out = mc.optimal_critic_bounds(log_p, log_py, [alpha])
    return torch.stack([out["nwj"], out["nce"], out["interpolated"][..., 0], out["js"]])


@torch.no_grad()
def evaluate(x: Tensor, y: Tensor, rho: Tensor, alpha: float, chunk_elements: int = 2**22) -> Tensor:
    """Scores and the four bounds for every replicate of ``x, y: [R, K, d]``; returns ``[4, R]``."""
    r, k = x.shape[0], x.shape[-2]
    step = max(1, chunk_elements // (k * k))
    outs = []
    for a in range(0, r, step):
        xs, ys = x[a:a + step], y[a:a + step]
        log_p = gaussian_log_p_y_given_x(xs, ys, rho[a:a + step])  # [r, K, K]
        outs.append(four_bounds(log_p, gaussian_log_p_y(ys), alpha))
    return torch.cat(outs, dim=-1)


@torch.no_grad()
def evaluate_loop(x: Tensor, y: Tensor, rho: Tensor, alpha: float) -> Tensor:
    """The same computation one ``[K, K]`` batch at a time."""
    return torch.stack([four_bounds(gaussian_log_p_y_given_x(xr, yr, rr), gaussian_log_p_y(yr), alpha)
                        for xr, yr, rr in zip(x, y, rho)], dim=-1)


def _samples(r: int, k: int, mi: float, dtype: torch.dtype, device: torch.device, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    rho = mi_to_rho(torch.full((r,), mi), 20).to(device=device, dtype=dtype)
    x, y = sample_gaussian(k, rho=rho, generator=g, dtype=dtype, device=device)
    return x, y, rho


def _agreement(a: Tensor, b: Tensor, rtol: float, atol: float) -> dict:
    diff = float((a - b).abs().max())
    return {"agree": bool(torch.isfinite(a).all() and torch.allclose(a, b, rtol=rtol, atol=atol)),
            "max_abs_diff": diff, "rtol": rtol, "atol": atol, "values_checked": a.numel()}


def bench_loop(size: dict, device: torch.device, repeats: int) -> dict:
    """Bound evaluations per second, vectorised vs batch by batch, at K = size['mc_k']."""
    k, r, mi, alpha = size["mc_k"], size["mc_replicates"], size["mc_mi"], size["mc_alpha"]
    dtype = getattr(torch, size["mc_dtype"])
    x, y, rho = _samples(r, k, mi, dtype, device)
    vec, loop = evaluate(x, y, rho, alpha), evaluate_loop(x, y, rho, alpha)
    check = _agreement(vec, loop, rtol=1e-5, atol=1e-5)
    # An independent, written-out check on a few batches (O(K^3) leave-one-out; bench.plain).
    ref = torch.stack([plain.plain_four_bounds(gaussian_log_p_y_given_x(x[i], y[i], rho[i]), gaussian_log_p_y(y[i]),
                                               alpha) for i in range(min(r, 4))], dim=-1)
    check_plain = _agreement(vec[:, : ref.shape[-1]], ref, rtol=1e-4, atol=1e-4)
    log_p = gaussian_log_p_y_given_x(x, y, rho)
    check_registry = _agreement(vec, registry_four_bounds(log_p, gaussian_log_p_y(y), alpha), rtol=1e-5, atol=1e-5)
    from .proposals import evaluate_proposal

    check_proposal = _agreement(evaluate_proposal(x, y, rho, alpha), vec, rtol=1e-5, atol=1e-5)
    timing = alternate({"vectorised": lambda: evaluate(x, y, rho, alpha),
                        "batch_loop": lambda: evaluate_loop(x, y, rho, alpha),
                        "proposal_vectorised": lambda: evaluate_proposal(x, y, rho, alpha)},
                       repeats=repeats, device=device)
    ratio = speedup(timing, "batch_loop", "vectorised")
    out = {"comparison": "mc_loop", "k": k, "replicates": r, "mi": mi, "alpha": alpha, "dtype": size["mc_dtype"],
           "bounds": list(BOUND_NAMES), "check": check, "check_plain_formula": check_plain,
           "check_registry": check_registry, "implementation": implementation(), "timing": timing,
           "speedup": ratio, "evaluations_per_s": {n: r / t for n, t in timing["median_s"].items()},
           "check_proposal": check_proposal, "proposal_speedup": speedup(timing, "batch_loop", "proposal_vectorised")}
    print(f"  mc K={k} R={r}: vectorised {out['evaluations_per_s']['vectorised']:9.1f} evals/s, loop "
          f"{out['evaluations_per_s']['batch_loop']:9.1f}  -> {ratio['ratio']:.2f}x (agree={check['agree']}); proposal "
          f"{out['proposal_speedup']['ratio']:.2f}x (agree={check_proposal['agree']})", flush=True)
    return out


def _profile_pieces(log_p: Tensor, log_py: Tensor, x: Tensor, y: Tensor, rho: Tensor, alpha: float,
                    repeats: int, device: torch.device) -> dict:
    """Time of each piece of the MC at this size, alternated, in ns per score element."""
    from .proposals import fused_bounds_inplace, gaussian_log_p_fused

    ratio = log_p - log_py.unsqueeze(-2)
    n = log_p.numel()
    pieces = {
        "score_matrix": lambda: gaussian_log_p_y_given_x(x, y, rho),
        "proposal_score_matrix": lambda: gaussian_log_p_fused(x, y, rho),
        "four_bounds": lambda: four_bounds(log_p, log_py, alpha),
        "proposal_four_bounds": lambda: fused_bounds_inplace(log_p, log_py, [alpha]),
    }
    mc = _vbmi_mc()
    if mc is not None and hasattr(mc, "_column_stats"):
        pieces["mc_column_stats"] = lambda: mc._column_stats(log_p)
    pieces.update({
        "registry_four_bounds": lambda: registry_four_bounds(log_p, log_py, alpha),
        "registry_nwj": lambda: B.nwj(ratio + 1.0),
        "registry_nce": lambda: B.nce(log_p),
        "registry_interpolated": lambda: B.interpolated(log_p, log_baseline=log_py, alpha=alpha),
        "registry_js": lambda: B.js(ratio),
        "loo_logmeanexp_columns": lambda: B.loo_logmeanexp_columns(log_p),
        "logmeanexp_offdiag": lambda: B.logmeanexp_offdiag(log_p),
        "logsumexp_pass": lambda: torch.logsumexp(log_p, dim=-2),
    })
    with torch.no_grad():  # as simulate() runs (vbmi's MC takes its in-place path only without autograd)
        t = alternate(pieces, repeats=repeats, device=device)
    return {name: s / n * 1e9 for name, s in t["median_s"].items()}


def bench_roofline(size: dict, device: torch.device, repeats: int) -> dict:
    """ns per score element of the four bounds at K = size['roof_k'] and the machine's roofline, alternated."""
    k, r, mi, alpha = size["roof_k"], size["roof_replicates"], size["mc_mi"], size["mc_alpha"]
    results = {}
    for dtype_name in size["roof_dtypes"]:
        dtype = getattr(torch, dtype_name)
        x, y, rho = _samples(r, k, mi, dtype, device, seed=1)
        log_p, log_py = gaussian_log_p_y_given_x(x, y, rho), gaussian_log_p_y(y)
        n = log_p.numel()
        m = size["roof_matmul_n"]
        a_mm = torch.randn(m, m, dtype=dtype, device=device)
        b_mm = torch.randn(m, m, dtype=dtype, device=device)
        out_mm = torch.empty(m, m, dtype=dtype, device=device)
        out_exp = torch.empty_like(log_p)
        from .proposals import fused_bounds_inplace

        proposal = lambda: fused_bounds_inplace(log_p, log_py, [alpha])  # noqa: E731
        mine, ref = proposal(), _vbmi_mc().optimal_critic_bounds(log_p, log_py, [alpha]) if _vbmi_mc() else None
        check_proposal = None
        if ref is not None:
            a = torch.stack([mine[n].reshape(r, -1) for n in ("nwj", "js", "nce", "loo_upper", "interpolated")])
            b = torch.stack([ref[n].reshape(r, -1) for n in ("nwj", "js", "nce", "loo_upper", "interpolated")])
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            check_proposal = _agreement(a, b, rtol=tol, atol=tol)
        timing = alternate({
            "four_bounds": lambda: four_bounds(log_p, log_py, alpha),
            "proposal_fused_inplace": proposal,
            "scores_and_four_bounds": lambda: evaluate(x, y, rho, alpha),
            "exp_pass": lambda: torch.exp(log_p, out=out_exp),
            "logsumexp_pass": lambda: torch.logsumexp(log_p, dim=-2),
            "matmul": lambda: torch.mm(a_mm, b_mm, out=out_mm),
        }, repeats=repeats, device=device)
        med = timing["median_s"]
        ns = {name: med[name] / n * 1e9 for name in ("four_bounds", "proposal_fused_inplace", "scores_and_four_bounds",
                                                    "exp_pass", "logsumexp_pass")}
        flops = 2.0 * m**3 / med["matmul"]
        # Per round, so a load change mid-run cancels: the bounds' throughput as a fraction of one pass's.
        lse_frac = [tl / tb for tl, tb in zip(timing["raw_s"]["logsumexp_pass"], timing["raw_s"]["four_bounds"])]
        exp_frac = [te / tb for te, tb in zip(timing["raw_s"]["exp_pass"], timing["raw_s"]["four_bounds"])]
        prop_frac = [tl / tb for tl, tb in zip(timing["raw_s"]["logsumexp_pass"],
                                               timing["raw_s"]["proposal_fused_inplace"])]
        score_flops = 2.0 * x.shape[-1] * n  # the d-dim inner products of the score matrix
        results[dtype_name] = {
            "k": k, "replicates": r, "score_elements": n, "timing": timing, "ns_per_element": ns,
            "matmul_n": m, "matmul_gflops": flops / 1e9,
            "fraction_of_logsumexp_roofline": sorted(lse_frac)[len(lse_frac) // 2],
            "fraction_of_exp_roofline": sorted(exp_frac)[len(exp_frac) // 2],
            "proposal_fraction_of_logsumexp_roofline": sorted(prop_frac)[len(prop_frac) // 2],
            "proposal_speedup": speedup(timing, "four_bounds", "proposal_fused_inplace"),
            "check_proposal": check_proposal,
            "score_matrix_fraction_of_matmul_flops": score_flops
            / (med["scores_and_four_bounds"] - med["four_bounds"]) / flops
            if med["scores_and_four_bounds"] > med["four_bounds"] else float("nan"),
            "profile_ns_per_element": _profile_pieces(log_p, log_py, x, y, rho, alpha, max(1, repeats - 1), device),
        }
        res = results[dtype_name]
        print(f"  roofline {dtype_name} K={k}: four bounds {ns['four_bounds']:.2f} ns/elem, logsumexp pass "
              f"{ns['logsumexp_pass']:.2f}, exp pass {ns['exp_pass']:.2f} -> "
              f"{100 * res['fraction_of_logsumexp_roofline']:.1f}% of the logsumexp roofline (proposal "
              f"{ns['proposal_fused_inplace']:.2f} ns/elem, {100 * res['proposal_fraction_of_logsumexp_roofline']:.1f}%); matmul "
              f"{res['matmul_gflops']:.1f} GFLOP/s", flush=True)
        print("    profile (ns/elem): " + ", ".join(f"{n_}={v:.2f}" for n_, v in res["profile_ns_per_element"].items()),
              flush=True)
    return {"comparison": "mc_roofline", "mi": mi, "alpha": alpha, "bounds": list(BOUND_NAMES), "by_dtype": results}

