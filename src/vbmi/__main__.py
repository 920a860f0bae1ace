"""``python -m vbmi`` (or ``vbmi``): estimate MI from a file, or list the bounds.

    python -m vbmi estimate data.npz                        # arrays 'x' and 'y'
    python -m vbmi estimate data.npz --x-key a --y-key b
    python -m vbmi estimate data.csv --x-cols 0,1 --y-cols c  # column names or 0-based positions (#0, =name)
    python -m vbmi estimate data.csv --method ksg             # or cca; default: the neural critic
    python -m vbmi suite --tasks gauss-1x1 --n 2000           # the known-MI task suite (vbmi.tasks)
    python -m vbmi estimate data.nc --x-key x --y-key y       # netCDF variables; first dim = samples
    python -m vbmi bounds [--json]

``estimate`` prints one JSON object on stdout (value, stderr, units, bound, kind, n, ...; see
:meth:`vbmi.estimate.MIEstimate.to_dict`). Any error prints one line ``vbmi: error: ...`` on stderr and
exits 1 (2 for command-line usage errors, as argparse does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["main", "load_arrays"]


def _split_cols(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    cols = [c.strip() for c in spec.split(",") if c.strip()]
    if not cols:
        raise ValueError(f"empty column list {spec!r}")
    return cols


def _csv_column(df, c: str, flag: str, header: bool):
    """One CSV column by name or 0-based position. ``#N`` is always position N and ``=NAME`` always the name
    NAME; a bare number that is both a column name and a different position is refused as ambiguous."""
    cols = [str(col) for col in df.columns]
    listing = ", ".join(cols) if header else f"{len(cols)} unnamed columns, positions 0..{len(cols) - 1}"
    as_pos = c[1:] if c.startswith("#") else (c if c.lstrip("-").isdigit() and not c.startswith("=") else None)
    as_name = c[1:] if c.startswith("=") else (None if c.startswith("#") else c)
    pos_ok = as_pos is not None and as_pos.lstrip("-").isdigit() and -len(cols) <= int(as_pos) < len(cols)
    name_ok = header and as_name is not None and as_name in cols
    if name_ok and pos_ok and cols.index(as_name) != int(as_pos) % len(cols):
        raise ValueError(f"{flag}: {c!r} is ambiguous: it names column {cols.index(as_name)} and is also position "
                         f"{as_pos} (column {cols[int(as_pos)]!r}); write '={c}' for the column named {c!r} or "
                         f"'#{c}' for position {c}")
    if name_ok:
        return df.iloc[:, cols.index(as_name)]
    if pos_ok:
        return df.iloc[:, int(as_pos)]
    raise ValueError(f"{flag}: no column {c!r} in the CSV; columns: {listing}")


def _csv_columns(df, cols: list[str], flag: str, header: bool = True) -> np.ndarray:
    out = np.stack([np.asarray(_csv_column(df, c, flag, header)) for c in cols], axis=1)
    if not (np.issubdtype(out.dtype, np.number)):
        raise ValueError(f"{flag}: columns {cols} are not all numeric (dtype {out.dtype})")
    return out


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _read_csv(path: Path, header: str):
    """Read a CSV; ``header='auto'`` takes the first row as a header unless every entry of it is a number."""
    import pandas as pd

    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises several parser error types
        raise ValueError(f"{path}: not a readable CSV file ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if raw.empty:
        raise ValueError(f"{path}: empty CSV file")
    has_header = {"yes": True, "no": False}.get(header)
    if has_header is None:
        has_header = not all(_is_number(v) for v in raw.iloc[0])
        if not has_header:
            print(f"vbmi: note: {path}: the first row is all numbers, so it is read as data (no header); "
                  "pass --header yes if it is a header", file=sys.stderr)
    try:
        return pd.read_csv(path, header=0 if has_header else None), has_header
    except Exception as e:
        raise ValueError(f"{path}: not a readable CSV file ({type(e).__name__}: {e})".replace("\n", " ")) from None


def load_arrays(path: str | Path, *, x_key: str = "x", y_key: str = "y", x_cols: str | None = None,
                y_cols: str | None = None, header: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Read paired samples ``x, y`` (first axis = samples) from ``.npz``, ``.csv`` or ``.nc``.

    * ``.npz``: arrays ``x_key`` and ``y_key``.
    * ``.csv``: ``header`` is ``auto`` (default: the first row is a header unless all its entries are
      numbers; a note on stderr says when it is read as data), ``yes`` or ``no``. ``x_cols``/``y_cols``:
      comma-separated names or 0-based positions (``#N``: always position N; ``=NAME``: always the name;
      a bare number that is both a name and a different position is an error). With neither given, a
      two-column file is read as x = first column, y = second.
    * ``.nc``: variables ``x_key`` and ``y_key`` (via xarray); their first dim indexes samples, the rest
      are flattened into features.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        import zipfile

        if not zipfile.is_zipfile(path):  # np.load would try to unpickle it and blame pickling
            raise ValueError(f"{path}: not a readable .npz file (not a zip archive; write it with numpy.savez)")
        try:
            with np.load(path, allow_pickle=False) as f:
                keys = list(f.keys())
                for k in (x_key, y_key):
                    if k not in keys:
                        raise ValueError(f"{path}: no array {k!r}; arrays: {', '.join(keys) or '(none)'} "
                                         "(choose with --x-key/--y-key)")
                return f[x_key], f[y_key]
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if suffix == ".csv":
        df, has_header = _read_csv(path, header)
        xc, yc = _split_cols(x_cols), _split_cols(y_cols)
        if xc is None and yc is None:
            if df.shape[1] != 2:
                raise ValueError(f"{path}: has {df.shape[1]} columns; say which are x and y with --x-cols/--y-cols "
                                 f"(columns: {', '.join(map(str, df.columns))})")
            xc, yc = ["#0"], ["#1"]
        elif xc is None or yc is None:
            raise ValueError("give both --x-cols and --y-cols (or neither for a two-column file)")
        return _csv_columns(df, xc, "--x-cols", has_header), _csv_columns(df, yc, "--y-cols", has_header)
    if suffix in (".nc", ".nc4", ".netcdf"):
        import xarray as xr

        try:
            ds = xr.open_dataset(path)
        except Exception as e:
            raise ValueError(f"{path}: not a readable netCDF file ({type(e).__name__}: {e})".replace("\n", " ")) from None
        with ds:
            names = [str(v) for v in ds.data_vars] + [str(c) for c in ds.coords]
            for k in (x_key, y_key):
                if k not in ds.variables:
                    raise ValueError(f"{path}: no variable {k!r}; variables: {', '.join(names) or '(none)'} "
                                     "(choose with --x-key/--y-key)")
            return np.asarray(ds[x_key].values), np.asarray(ds[y_key].values)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npz, .csv or .nc")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vbmi", description="Variational bounds of mutual information.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("estimate", help="estimate I(X;Y) from paired samples in a file; prints JSON",
                       description="Train a critic on the file's (x, y) pairs and print the held-out estimate "
                                   "as JSON (value and stderr in nats). See help(vbmi.estimate_mi).")
    e.add_argument("file", help=".npz, .csv or .nc file holding the paired samples")
    e.add_argument("--x-key", default="x", help="npz array / netCDF variable for x (default: x)")
    e.add_argument("--y-key", default="y", help="npz array / netCDF variable for y (default: y)")
    e.add_argument("--x-cols", help="CSV columns for x: comma-separated names or 0-based positions")
    e.add_argument("--y-cols", help="CSV columns for y: comma-separated names or 0-based positions")
    e.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                   help="CSV header row: auto (default: a header unless the first row is all numbers), yes, no")
    e.add_argument("--method", default="neural", help="neural (default), ksg or cca")
    e.add_argument("--preprocess", default="normal",
                   help="normal (default: per-coordinate normal scores), standardize or none")
    e.add_argument("--k", type=int, default=3, help="neighbours for --method ksg (default: 3)")
    e.add_argument("--bound", default="nce", help="critic bound (default: nce); see `python -m vbmi bounds`")
    e.add_argument("--critic", default="separable", help="separable (default) or joint")
    e.add_argument("--alpha", type=float, help="alpha in [0, 1] for the interpolated bounds")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--steps", type=int, default=4000, help="maximum training steps (default: 4000)")
    e.add_argument("--batch-size", type=int, help="training batch (default: sizing rule)")
    e.add_argument("--hidden", type=int, help="hidden units (default: sizing rule)")
    e.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    e.add_argument("--history", action="store_true", help="include the training/validation curves")
    t = sub.add_parser("suite", help="run estimators on the known-MI task suite (vbmi.tasks); prints a table",
                       description="Estimators on tasks with known MI. Default: all 12 tasks, 3 seeds, N = 5,000.")
    t.add_argument("--methods", default="neural,ksg,cca")
    t.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    t.add_argument("--n", type=int, default=5000)
    t.add_argument("--seeds", default="0,1,2")
    t.add_argument("--json", help="also write the per-run rows to this file")
    b = sub.add_parser("bounds", help="list the bounds in the registry")
    b.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _bounds(as_json: bool) -> None:
    from .bounds import BOUNDS

    rows = [{"name": n, "kind": bd.kind, "equation": bd.equation, "input": bd.input, "baseline": bd.baseline,
             "alpha": bd.takes_alpha, "estimate_mi": bd.input == "scores", "description": bd.description}
            for n, bd in BOUNDS.items()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'name':22} {'kind':9} {'equation':20} {'input':11} description")
    for r in rows:
        print(f"{r['name']:22} {r['kind']:9} {r['equation']:20} {r['input']:11} {r['description']}")


def _suite(args: argparse.Namespace) -> int:
    import json as _json

    from .tasks import TASKS, run_suite, summarise

    tasks = args.tasks.split(",") if args.tasks else list(TASKS)
    rows = run_suite(args.methods.split(","), tasks, n=args.n, seeds=[int(s) for s in args.seeds.split(",")])
    if args.json:
        Path(args.json).write_text(_json.dumps(rows, indent=1))
    print(summarise(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "bounds":
            _bounds(args.json)
            return 0
        if args.command == "suite":
            return _suite(args)
        from .estimate import estimate_mi

        x, y = load_arrays(args.file, x_key=args.x_key, y_key=args.y_key, x_cols=args.x_cols, y_cols=args.y_cols,
                           header=args.header)
        res = estimate_mi(x, y, method=args.method, preprocess=args.preprocess, k=args.k, bound=args.bound,
                          critic=args.critic, alpha=args.alpha, seed=args.seed, max_steps=args.steps,
                          batch_size=args.batch_size, hidden=args.hidden, device=args.device, progress=args.progress)
        for w in res.warnings:
            print(f"vbmi: warning: {w}", file=sys.stderr)
        out = res.to_dict(history=args.history)
        out["file"] = str(args.file)
        print(json.dumps(out, indent=2))
        return 0
    except (ValueError, TypeError, KeyError, OSError, FloatingPointError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"vbmi: error: {' '.join(msg.split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
