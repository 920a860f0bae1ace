"""Train a few sweep configurations on the MI staircase and print each level's estimate.

The probe behind the default sweep design in config.yaml: which settings reach a Table 3 cell, and in
how many steps per level, without running the pipeline. A run's level estimate is the mean over the last
quarter of the level (the sweep's protocol at ``tail_steps = steps_per_level / 4``); a run is fully
determined by its spec and seed, so the numbers do not depend on which other runs share the job.

    OMP_NUM_THREADS=1 python examples/staircase_probe.py --steps-per-level 400 \\
        "interpolated@0.01/cubic,batch_size=512" "js/cubic,batch_size=256,activation=tanh"

A spec is ``bound[@alpha]/dataset[,key=value...]`` with the keys of :class:`vbmi.experiments.plan.RunSpec`
(``batch_size``, ``lr``, ``activation``, ``hidden``, ``layers``, ``critic``, ``seed``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from vbmi.experiments.plan import RunSpec
from vbmi.experiments.sweep import level_summary
from vbmi.experiments.training import result_to_dataset, train_ensemble

LEVELS = (2.0, 4.0, 6.0, 8.0, 10.0)


def parse_spec(text: str) -> RunSpec:
    head, *pairs = text.split(",")
    if "/" not in head:
        raise SystemExit(f"spec {text!r}: expected bound[@alpha]/dataset[,key=value...]")
    bound, dataset = head.split("/", 1)
    bound, _, alpha = bound.partition("@")
    types = {f.name: f.type for f in dataclasses.fields(RunSpec)}
    kw = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types or key in ("bound", "alpha", "dataset"):
            raise SystemExit(f"spec {text!r}: unknown key {key!r}; valid: {', '.join(sorted(types))}")
        kw[key] = type(getattr(RunSpec(), key))(value)
    return RunSpec(bound=bound, alpha=float(alpha) if alpha else None, dataset=dataset, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", help="bound[@alpha]/dataset[,key=value...]")
    ap.add_argument("--steps-per-level", type=int, default=400)
    ap.add_argument("--cubic-weight-std", type=float, default=1.0)
    ap.add_argument("--levels", type=float, nargs="+", default=list(LEVELS),
                    help="MI levels in nats, trained in this order (a prefix of the default trains the same steps)")
    ap.add_argument("--stat", choices=("mean", "variance"), default="mean",
                    help="per level: the tail mean, or the variance of the estimates over the tail (Figs. 6-7)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    specs = [parse_spec(s) for s in args.specs]
    spl = args.steps_per_level
    t0, c0 = time.perf_counter(), time.process_time()
    levels = tuple(args.levels)
    res = train_ensemble(specs, steps_per_level=spl, levels=levels, cubic_weight_std=args.cubic_weight_std,
                         progress=False)
    summary = level_summary(result_to_dataset(res), tail_steps=max(1, spl // 4))  # the sweep's protocol
    stat = summary.level_mean if args.stat == "mean" else summary.level_std ** 2
    cell = "{:6.2f}" if args.stat == "mean" else "{:8.5f}"
    width = 6 if args.stat == "mean" else 8
    name = max(50, *map(len, args.specs))
    print(f"{args.stat:{name}s} " + " ".join(f"{lv:>{width}g}" for lv in levels) + "  diverged")
    for i, (text, div) in enumerate(zip(args.specs, res.diverged_step)):
        print(f"{text:{name}s} " + " ".join(cell.format(m) for m in stat.isel(config=i).values) + f"  {int(div)}")
    print(f"{spl} steps per level, {len(specs)} runs: {time.perf_counter() - t0:.0f} s wall, "
          f"{time.process_time() - c0:.0f} CPU-s")


if __name__ == "__main__":
    main()
