#!/usr/bin/env bash
# One prepared GPU run of the bench: writes bench/reference/bench_default_cuda_<gpu>.json (and a copy
# under $OUT when that is set, e.g. by a remote runner). Run from anywhere; needs torch with CUDA.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
OMP_NUM_THREADS=1 "$PY" -m bench --device cuda --out bench/reference
if [ -n "${OUT:-}" ]; then cp bench/reference/bench_default_cuda_*.json "$OUT"/; fi
