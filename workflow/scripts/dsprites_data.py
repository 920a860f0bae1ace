"""Render (or read from the real npz) the dSprites images of this run and cache them bit-packed."""

import numpy as np

from _script import setup
from vbmi.dsprites import data as D

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
cfg = config["dsprites"]
n = D.N_IMAGES if cfg["n_images"] is None else int(cfg["n_images"])
index = np.sort(np.random.default_rng(config["seed"]).choice(D.N_IMAGES, size=n, replace=False)) if n < D.N_IMAGES else None
ds = D.from_renderer(index) if cfg["npz"] is None else D.from_npz(cfg["npz"], index=index)
print(f"{len(ds)} images from {ds.source}")
D.write_cache(ds, snakemake.output.cache)  # noqa: F821
