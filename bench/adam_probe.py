"""Why vbmi's engine uses torch's fused Adam on the CPU: ``python -m bench.adam_probe``.

Adam divides by ``sqrt(v)`` of its second moment ``v``. Dead ReLU units leave exact zeros in ``v`` (their
weights never get a gradient), and long-unused ones decay towards subnormals. On some x86 CPUs torch's
element-wise ``sqrt`` takes a slow path for those values, while the fused kernel's does not. This probe
times, alternately in one run (:func:`bench._timing.alternate`), ``v.sqrt()`` and one fused Adam step on a
tensor the size of a stacked E = 8 hidden layer (8 x 256 x 256), with 0 %, 10 % and 50 % of ``v`` set to
zero or to a subnormal value, and prints the medians (``share_after``: the share of zeros and subnormals
still in ``v`` after the fused steps, i.e. what the probe measured on).
"""

from __future__ import annotations

import argparse
import json

import torch

from ._timing import alternate


def probe(shape=(8, 256, 256), fractions=(0.0, 0.1, 0.5), repeats: int = 5, inner: int = 20) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    rows = []
    for frac in fractions:
        for fill, value in (("zero", 0.0), ("subnormal", 1e-40)):
            v = torch.rand(shape, generator=gen) * 1e-6 + 1e-8
            v[torch.rand(shape, generator=gen) < frac] = value
            p, g, m = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen), torch.zeros(shape)
            g[v == value] = 0.0  # a dead unit's weights get no gradient, so its moments stay where they are
            step = torch.tensor(10.0)

            def unfused():
                for _ in range(inner):
                    v.sqrt()

            last: list[torch.Tensor] = []

            def fused():
                vv = v.clone()  # keep the probed values: the fused step updates v in place
                for _ in range(inner):
                    torch._fused_adam_([p], [g], [m], [vv], [], [step], lr=0.0, beta1=0.9, beta2=0.999,
                                       weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
                last[:] = [vv]

            t = alternate({"sqrt": unfused, "fused_adam_step": fused}, repeats=repeats, warmup=1)
            rows.append({"fraction": frac, "fill": fill,
                         "share_after": float(((last[0] == 0) | (last[0] < 1e-37)).float().mean()),
                         **{f"{k}_ms": 1e3 * s / inner for k, s in t["median_s"].items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = probe(repeats=args.repeats)
    for r in rows:
        print(f"  {r['fraction']:4.0%} {r['fill']:9s}: sqrt {r['sqrt_ms']:6.3f} ms, "
              f"fused Adam step {r['fused_adam_step_ms']:6.3f} ms")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
