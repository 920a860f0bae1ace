"""Decoder-free representation learning on dSprites (paper Sec. 3.1, Fig. 5).

Modules: :mod:`.data` (procedural renderer, real-npz loader, bit-packed cache, agreement with the
reference frames; ``python -m vbmi.dsprites.compare``), :mod:`.model` (conv encoder, learned log q(y)),
:mod:`.objective` (structured I_JS, TC upper bound, smoothness KL, Lagrangian of Eq. 15),
:mod:`.train` (checkpointed trainer), :mod:`.metrics` (normalised MI, gap, MIG, Fig. 5 tuning data),
:mod:`.experiment` (checkpoints -> one result cube).
"""

from . import data, experiment, metrics, model, objective, train
from .data import DSprites, compare_reference, from_cache, from_npz, from_renderer, render, write_cache
from .experiment import build_cube
from .metrics import factor_scores, tuning
from .model import ConvEncoder, EncoderConfig, LogQ
from .objective import ObjectiveConfig
from .train import TrainConfig, train as train_encoder

__all__ = [
    "data",
    "experiment",
    "metrics",
    "model",
    "objective",
    "train",
    "DSprites",
    "render",
    "from_renderer",
    "from_npz",
    "from_cache",
    "write_cache",
    "compare_reference",
    "ConvEncoder",
    "EncoderConfig",
    "LogQ",
    "ObjectiveConfig",
    "TrainConfig",
    "train_encoder",
    "factor_scores",
    "tuning",
    "build_cube",
]
