"""Run estimators on the known-MI task suite (:mod:`vbmi.tasks`) and print one row per task.

    OMP_NUM_THREADS=1 python examples/task_suite.py                       # 12 tasks x 3 seeds, N = 5,000
    python examples/task_suite.py --methods neural,ksg,cca --n 5000 --seeds 0,1,2
    python examples/task_suite.py --tasks gauss-1x1,student-2x2 --n 1000 --seeds 0

Per task and method: truth, mean estimate over seeds, mean 95% interval, |error| (mean over seeds),
whether the mean is within max(0.1 nat, 20%), interval coverage (seeds whose interval holds the truth)
and seconds per run (one CPU thread). The summary line gives the counts the README quotes.
"""

from __future__ import annotations

import argparse
import json

import torch

from vbmi.tasks import TASKS, run_suite, summarise


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="neural,ksg,cca")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--json", help="also write the per-run rows here")
    p.add_argument("--kw", default="{}", help="extra estimate_mi keywords as JSON (neural only)")
    a = p.parse_args()
    torch.set_num_threads(1)
    kw = json.loads(a.kw)
    rows = run_suite(a.methods.split(","), a.tasks.split(","), a.n, [int(s) for s in a.seeds.split(",")], **kw)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(summarise(rows))


if __name__ == "__main__":
    main()
