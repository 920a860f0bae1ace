"""Compare the procedural renderer with the reference frames and, optionally, a user's real npz.

    python -m vbmi.dsprites.compare [--frames ../shared/data/dsprites] [--npz PATH] [--n 20000] [--json OUT]

Prints, per shape, the mean and max number of pixels (of 4096) that differ per image and the number of
images reproduced exactly.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .data import compare_npz, compare_reference


def _table(title: str, result: dict[str, dict[str, float]]) -> str:
    lines = [
        title,
        f"{'shape':<8} {'frames':>6} {'mean px differing':>18} {'max':>4} {'exact':>6} {'pixel agreement':>16}",
    ]
    for name, r in result.items():
        lines.append(
            f"{name:<8} {r['frames']:>6} {r['mean_pixels_differing']:>18.3f} {r['max_pixels_differing']:>4} "
            f"{r['exact_frames']:>6} {r['pixel_agreement']:>16.6f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--frames", type=Path, default=Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "dsprites"
    )
    p.add_argument("--npz", type=Path, default=None, help="a real dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    p.add_argument("--n", type=int, default=20000, help="random images of the npz to compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    a = p.parse_args(argv)
    out: dict[str, dict] = {}
    if (a.frames / "dsprites.gif").is_file():
        out["reference_frames"] = compare_reference(a.frames)
        print(
            _table(
                f"renderer vs the {sum(r['frames'] for r in out['reference_frames'].values())} reference frames "
                f"({a.frames.resolve()})",
                out["reference_frames"],
            )
        )
    else:
        print(f"no reference frames at {a.frames} (pass --frames)")
    if a.npz is not None:
        out["npz"] = compare_npz(a.npz, n=a.n, seed=a.seed)
        print(_table(f"renderer vs {a.n} random images of {a.npz}", out["npz"]))
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
