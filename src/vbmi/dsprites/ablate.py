"""Short dSprites training probes, and the ablation record they write.

    python -m vbmi.dsprites.ablate --name NAME --data CACHE.npz [--steps N] [--set key=value ...]
        [--n-eval 5000] [--out results_scratch/dsprites_ablation]

``--set`` overrides one field of :class:`~vbmi.dsprites.train.TrainConfig` (dotted for the nested ones:
``objective.noise_var=0.25``, ``encoder.q_hidden=512``, ``lr=3e-4``). Each probe trains one seed, scores
the trained encoder and the same encoder at its initial weights on ``--n-eval`` images of the cache, and
writes ``OUT/NAME.json`` (config, a summary of the training curves, factor scores) and ``OUT/NAME.pt``
(the checkpoint). ``--record FILE.csv`` appends the summary row to the ablation table kept in the repo
(:data:`RECORD`, rendered by reports/dsprites.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data as D
from .experiment import evaluate, evaluation_rows, load_trained
from .metrics import SCORED_FACTORS
from .train import TrainConfig, config_from_dict, train

__all__ = ["RECORD", "BASE", "COLUMNS", "parse_overrides", "probe", "score", "main"]

RECORD = Path(__file__).with_name("ablations.csv")
# Every probe's ``--set`` overrides apply to this base: the default scale before the bounded dual step and the max lower bound
# (additive dual ascent, the paper's I_JS in the TC bound, delta 0.5, Adam 1e-3), so the record's
# ``overrides`` column reads the same whatever the library defaults are now.
BASE: dict[str, Any] = {
    "lr": 1e-3,
    "objective": {"tc_delta": 0.5, "dual": "additive", "dual_lr": 0.01, "lambda_tc_init": 0.0, "tc_lower": "ijs"},
}
COLUMNS = (
    "name",
    "question",
    "overrides",
    "steps",
    "n_images",
    "seconds",
    "ijs_peak",
    "ijs_min",
    "ijs_final",
    "tnce_final",
    "tc_final",
    "smooth_final",
    "lambda_tc_final",
    "lambda_smooth_final",
    "active",
    *(f"best_{f}" for f in SCORED_FACTORS),
    *(f"winner_{f}" for f in SCORED_FACTORS),
    *(f"random_best_{f}" for f in SCORED_FACTORS),
    "mig",
    "random_mig",
    "json",
)


def _parse_value(s: str) -> Any:
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return s


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=3e-4", "objective.noise_var=0.25"]`` -> nested dict for :func:`config_from_dict`."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, val = item.partition("=")
        if not _:
            raise ValueError(f"override {item!r} is not key=value")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _parse_value(val)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def probe(
    ds: D.DSprites,
    cfg: TrainConfig,
    out_dir: Path,
    name: str,
    *,
    n_eval: int = 5000,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train ``cfg`` on ``ds``, score trained and initial encoders; write ``out_dir/name.{pt,json}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / f"{name}.pt"
    ckpt.unlink(missing_ok=True)
    t0 = time.monotonic()
    train(ds, cfg, device=device, checkpoint=ckpt, progress=True)
    return score(ds, ckpt, out_dir, name, n_eval=n_eval, device=device, seconds=time.monotonic() - t0)


def score(
    ds: D.DSprites,
    ckpt: Path,
    out_dir: Path,
    name: str,
    *,
    n_eval: int = 5000,
    device: str = "cpu",
    seconds: float | None = None,
) -> dict[str, Any]:
    """Score checkpoint ``ckpt``'s encoder (finished or not) beside its initial weights; write ``name.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trained, initial, hist, cfg = load_trained(ckpt, device)
    seconds = float(hist["seconds"]) if seconds is None else seconds
    rows = evaluation_rows(ds, n_eval, 0)
    ev = {"trained": evaluate(trained, ds, rows, device=device), "random": evaluate(initial, ds, rows, device=device)}
    h = {k: np.asarray(v) for k, v in hist.items() if k not in ("seconds", "device")}
    summary = {
        "steps": int(h["step"][-1]),
        "n_images": len(ds),
        "seconds": round(seconds, 1),
        "ijs_peak": float(np.nanmax(h["ijs"])),
        "ijs_min": float(np.nanmin(h["ijs"])),
        **{f"{k}_final": float(h[k][-1]) for k in ("ijs", "tnce", "tc", "smooth", "lambda_tc", "lambda_smooth")},
        "active": int(np.sum(ev["trained"]["active"])),
        **{f"best_{f}": float(ev["trained"]["best"][i]) for i, f in enumerate(SCORED_FACTORS)},
        **{f"winner_{f}": int(ev["trained"]["winner"][i]) for i, f in enumerate(SCORED_FACTORS)},
        **{f"random_best_{f}": float(ev["random"]["best"][i]) for i, f in enumerate(SCORED_FACTORS)},
        "mig": float(ev["trained"]["mig"]),
        "random_mig": float(ev["random"]["mig"]),
    }
    curves = {k: h[k][:: max(1, len(h[k]) // 40)].round(3).tolist() for k in h}
    out = {
        "name": name,
        "config": cfg.to_dict(),
        "checkpoint": str(ckpt),
        "summary": summary,
        "curves": curves,
        "nmi": np.asarray(ev["trained"]["nmi"]).round(4).tolist(),
        "mean_var": np.asarray(ev["trained"]["mean_var"]).round(4).tolist(),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(out, indent=1))
    return out


def append_record(record: Path, row: dict[str, Any]) -> None:
    """Append (or replace, by name) one row of the ablation table."""
    rows = []
    if record.is_file():
        with open(record, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["name"] != row["name"]]
    rows.append({k: row.get(k, "") for k in COLUMNS})
    with open(record, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--question", default="", help="what the probe asks (goes into the record)")
    p.add_argument("--data", type=Path, required=True, help="a cache written by vbmi.dsprites.data.write_cache")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--n-eval", type=int, default=5000)
    p.add_argument("--out", type=Path, default=Path("results_scratch/dsprites_ablation"))
    p.add_argument("--record", type=Path, default=None, help="append the summary row to this CSV")
    p.add_argument("--score-checkpoint", type=Path, default=None, help="score this checkpoint instead of training")
    a = p.parse_args(argv)
    base = _merge(TrainConfig(steps=a.steps, seed=a.seed, log_every=25, checkpoint_every_s=1e9).to_dict(), BASE)
    over = parse_overrides(a.overrides)
    cfg = config_from_dict(_merge(base, over))
    ds = D.from_cache(a.data)
    if a.score_checkpoint is not None:
        out = score(ds, a.score_checkpoint, a.out, a.name, n_eval=a.n_eval)
    else:
        out = probe(ds, cfg, a.out, a.name, n_eval=a.n_eval)
    s = out["summary"]
    print(json.dumps({"name": a.name, **s}))
    if a.record is not None:
        append_record(
            a.record,
            {
                "name": a.name,
                "question": a.question,
                "overrides": " ".join(a.overrides),
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
                "json": str(a.out / f"{a.name}.json"),
            },
        )
    return out


if __name__ == "__main__":
    main()
