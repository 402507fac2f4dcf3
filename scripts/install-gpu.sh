#!/usr/bin/env bash
# Switch .venv (or the active environment) from onnxruntime (CPU) to onnxruntime-gpu.
# Both wheels install into the same `onnxruntime` folder, so only one may be present: the CPU
# wheel is removed first. Re-running `pip install -e .` afterwards would bring it back; run this
# script again after any such install.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
"$py" -m pip uninstall --yes onnxruntime onnxruntime-gpu >/dev/null 2>&1 || true
"$py" -m pip install "onnxruntime-gpu>=1.20"
"$py" - <<'PY'
import onnxruntime as ort
print("onnxruntime", ort.__version__, "providers:", ort.get_available_providers())
PY
