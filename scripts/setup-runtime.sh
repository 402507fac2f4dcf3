#!/usr/bin/env bash
# Create or reuse ./.venv-runtime: intra's runtime alone (no extras, so no torch) and pytest, for
# the torch-free test tier. Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
if [ ! -x .venv-runtime/bin/python ]; then
  echo "setup: creating .venv-runtime"
  "$py" -m venv .venv-runtime
fi
stamp=".venv-runtime/.intra-install"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing intra (runtime only) and pytest into .venv-runtime"
  .venv-runtime/bin/python -m pip install --quiet --upgrade pip
  .venv-runtime/bin/python -m pip install --quiet -e . "pytest>=8"
  echo "$want" > "$stamp"
fi
