"""Fig. 3: bias / variance / MSE of every bound with the optimal critic; write the `montecarlo` cube."""

import time

from _script import resolve_device, save_cube, setup
from vbmi.experiments.montecarlo import simulate

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
cfg = config["montecarlo"]
device = resolve_device(config)
start = time.perf_counter()
ds = simulate(
    cfg["true_mi"],
    cfg["batch_sizes"],
    cfg["alphas"],
    replicates=cfg["replicates"],
    max_replicates=cfg["max_replicates"],
    d=cfg["dim"],
    seed=config["seed"],
    max_chunk_elements=cfg["max_chunk_elements"],
    device=device,
    progress=True,
)
ds.attrs["timing_wall_s"] = round(time.perf_counter() - start, 3)
print(f"montecarlo: {ds.attrs['timing_wall_s']} s on {device}")
save_cube(snakemake, ds, kind="montecarlo", device=device)  # noqa: F821
