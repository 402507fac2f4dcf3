#!/usr/bin/env bash
# The main job on the built-in synthetic world: sets up .venv, then runs `intra demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,test
exec .venv/bin/intra demo "$@"
