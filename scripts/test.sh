#!/usr/bin/env bash
# The test suite: sets up .venv, then runs pytest on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,test
exec .venv/bin/python -m pytest -n 2 "$@"
