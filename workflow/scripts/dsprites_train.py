"""Train one seed of the dSprites encoder (resuming from its checkpoint if a killed job left a matching one)."""

import pathlib
import shutil

from _script import resolve_device, setup
from vbmi.dsprites import data as D
from vbmi.dsprites import train as T
from vbmi.train import checkpoint

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
p = snakemake.params  # noqa: F821
cfg = T.config_from_dict({**p.train, "seed": int(p.seed)})
print(cfg)
ds = D.from_cache(snakemake.input.data)  # noqa: F821
print(f"data {snakemake.input.data}: {len(ds)} images, fingerprint {ds.fingerprint()[:16]}")  # noqa: F821
result = T.train(ds, cfg, device=resolve_device(config), checkpoint=p.checkpoint)
print(f"{result.step} steps in {result.seconds:.1f} s ({result.step / result.seconds:.2f} steps/s) on {result.device}")
for k in ("ijs", "tc", "smooth"):
    print(f"final {k}: {result.history[k][-1]:.3f}")
model = pathlib.Path(snakemake.output.model)  # noqa: F821
checkpoint.atomic_write(model, lambda tmp: shutil.copyfile(p.checkpoint, tmp))
# The final model is written: the checkpoint has done its job. Removing it means a rerun (changed data,
# --forcerun) trains from step 0 instead of finding a finished run to "resume".
checkpoint.remove(p.checkpoint)
