"""Shared fixtures: a small synthetic world, and the shared real data when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data beside the repository (or $INTRA_SHARED_DATA), if it is there."""
    candidate = Path(os.environ.get("INTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
    return candidate if (candidate / "goemotions" / "train.tsv").is_file() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("the shared real data (../shared/data with goemotions/ and emoji/) is absent; set INTRA_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from training.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("synthetic") / "world"
    generate(out, SyntheticConfig(seed=3, stickers=56, conversations=400))
    return out
