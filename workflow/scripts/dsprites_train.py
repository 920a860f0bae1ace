"""Train one seed of the dSprites encoder (resuming from its checkpoint if a killed job left one)."""

import shutil

from _script import resolve_device, setup
from vbmi.dsprites import data as D
from vbmi.dsprites import train as T

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
p = snakemake.params  # noqa: F821
cfg = T.config_from_dict({**p.train, "seed": int(p.seed)})
print(cfg)
ds = D.from_cache(snakemake.input.data)  # noqa: F821
result = T.train(ds, cfg, device=resolve_device(config), checkpoint=p.checkpoint, restart_on_mismatch=True)
print(f"{result.step} steps in {result.seconds:.1f} s ({result.step / result.seconds:.2f} steps/s) on {result.device}")
for k in ("ijs", "tc", "smooth"):
    print(f"final {k}: {result.history[k][-1]:.3f}")
shutil.copyfile(p.checkpoint, snakemake.output.model)  # noqa: F821
