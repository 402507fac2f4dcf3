#!/usr/bin/env bash
# The test suite: sets up .venv, lints the tree (ruff), type-checks every package (mypy), builds the docs site
# (mkdocs --strict), runs pytest on 2 workers, then the runtime's tests again in a venv without torch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,test
.venv/bin/ruff check .            # the linter, on the whole tree
.venv/bin/mypy                     # the type checker, on every package (pyproject's [tool.mypy])
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet   # the docs site: a broken link or a stale API name fails
# tests marked slow (an experiment's whole run) are left out; `bash scripts/test.sh -m slow` runs them
.venv/bin/python -m pytest -n 2 -m "not slow" "$@"
# the runtime tier again, where apps run the SDK: the runtime's dependencies alone, no torch
bash scripts/setup-runtime.sh
.venv/bin/python scripts/make_runtime_fixture.py build/runtime-bundle   # its model, made where torch is
INTRA_RUNTIME_TIER=1 INTRA_RUNTIME_BUNDLE=build/runtime-bundle exec .venv-runtime/bin/python -m pytest tests/runtime -q -p no:cacheprovider
