"""Experiments built on the core library: they return arrays/datasets; `vbmi.results` writes them."""

# training stage (Fig. 2, Table 3, Figs. 6-7; issue 4)
from .training import (  # noqa: F401
    RunSpec,
    StackedAdam,
    TrainResult,
    bench_specs,
    result_to_dataset,
    train_ensemble,
    train_loop,
    train_loop_steps,
    train_stacked_steps,
)
