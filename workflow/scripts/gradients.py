"""Fig. 4: accuracy of every bound's encoder gradient with the optimal critic; write the `gradients` cube."""

import time

from _script import resolve_device, save_cube, setup
from vbmi.experiments.gradients import simulate_gradients

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
cfg = config["gradients"]
device = resolve_device(config)
start = time.perf_counter()
ds = simulate_gradients(
    cfg["true_mi"],
    cfg["batch_sizes"],
    cfg["alphas"],
    replicates=cfg["replicates"],
    max_replicates=cfg["max_replicates"],
    d=cfg["dim"],
    profile=cfg["profile"],
    seed=config["seed"],
    max_chunk_elements=cfg["max_chunk_elements"],
    device=device,
    progress=True,
)
ds.attrs["timing_wall_s"] = round(time.perf_counter() - start, 3)
print(f"gradients: {ds.attrs['timing_wall_s']} s on {device}")
save_cube(snakemake, ds, kind="gradients", device=device)  # noqa: F821
