#!/usr/bin/env bash
# The CUDA rows of the benchmark: fp16 on the GPU, with parity against fp32 on the CPU.
#   bash benchmarks/gpu.sh [BUNDLE] [PACK] [DATA] [OUT]
#   (defaults: the demo's artifacts/demo/{model,pack,data}, results in artifacts/bench-gpu)
# Sets up onnxruntime-gpu in a fresh venv (.venv-gpu: onnxruntime and onnxruntime-gpu share one
# import folder, so the CPU venv is left alone), exports the demo run when its bundle is missing,
# then runs python -m benchmarks.gpu_rows. Without a CUDA device it says so and stops (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-artifacts/demo/model}"; pack="${2:-artifacts/demo/pack}"; data="${3:-artifacts/demo/data}"; out="${4:-artifacts/bench-gpu}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu.sh: no CUDA device on this machine (nvidia-smi finds none): the CUDA rows stay unmeasured."
  exit 0
fi
if [ ! -f "$bundle/manifest.json" ]; then
  if [ -f artifacts/demo/run/config.json ]; then
    bash scripts/setup.sh train,test
    .venv/bin/intra-export artifacts/demo/run --out "$bundle" --data "$data"
  else
    echo "gpu.sh: no bundle at $bundle and no demo run to export; run bash scripts/demo.sh first" >&2
    exit 2
  fi
fi
venv=.venv-gpu
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e .
PYTHON="$venv/bin/python" bash scripts/install-gpu.sh
"$venv/bin/python" -m benchmarks.gpu_rows --model "$bundle" --pack "$pack" --data "$data" --out "$out"
