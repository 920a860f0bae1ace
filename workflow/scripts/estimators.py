"""Estimators on tasks with known MI: run the suite (vbmi.tasks.run_suite), write the `estimators` cube."""

import time

from _script import resolve_device, save_cube, setup
from vbmi.tasks import run_suite, summarise, suite_cube

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
cfg = config["estimators"]
device = resolve_device(config)
start = time.perf_counter()
rows = run_suite(cfg["methods"], cfg["tasks"], n=cfg["n_samples"], seeds=list(range(cfg["seeds"])),
                 max_steps=cfg["max_steps"], device=device)
print(summarise(rows))
ds = suite_cube(rows)
ds.attrs["timing_wall_s"] = round(time.perf_counter() - start, 3)
save_cube(snakemake, ds, kind="estimators", device=device)  # noqa: F821
