"""``python -m bench [--tiny] [--only single,ensemble,...] [--pipeline] [--device cpu|cuda|auto] [--out DIR]``."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch starts its pools; the bench runs one thread
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    from . import COMPARISONS, run

    p = argparse.ArgumentParser(prog="python -m bench", description=__import__("bench").__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="smallest sizes (what tests/test_bench.py runs)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(COMPARISONS)}")
    p.add_argument("--pipeline", action="store_true", help="also time the default-scale pipeline (long)")
    p.add_argument("--pipeline-configfile", default=None,
                   help="extra --configfile for the --pipeline run (e.g. workflow/scales/tiny.yaml for a smoke test)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default=None, help="output directory (default results/bench)")
    a = p.parse_args(argv)
    result = run("tiny" if a.tiny else "default", only=[s for s in a.only.split(",") if s] or None, device=a.device,
                 out_dir=a.out, pipeline=a.pipeline, threads=a.threads, pipeline_configfile=a.pipeline_configfile)
    return 0 if all(c["agree"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
