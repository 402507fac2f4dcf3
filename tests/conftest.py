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


@pytest.fixture(autouse=True, scope="session")
def _private_runtime_cache(tmp_path_factory):
    """The runtime's cache (sdk.cache) in the session's temporary directory, never the user's."""
    old = os.environ.get("INTRA_CACHE_DIR")
    os.environ["INTRA_CACHE_DIR"] = str(tmp_path_factory.mktemp("intra-cache"))
    yield
    if old is None:
        os.environ.pop("INTRA_CACHE_DIR", None)
    else:
        os.environ["INTRA_CACHE_DIR"] = old


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
    generate(out, SyntheticConfig(seed=3, stickers=56, conversations=800))
    return out


@pytest.fixture(scope="session")
def tiny_run_dir(synthetic_dir, tmp_path_factory) -> Path:
    """A tiny Int-RA trained for 3 epochs on the session's synthetic world."""
    from training.config import preset
    from training.trainer import train

    run = tmp_path_factory.mktemp("tinyrun") / "run"
    train(preset("tiny", epochs=3), synthetic_dir, run, progress=False)
    return run


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run_dir, synthetic_dir, tmp_path_factory) -> Path:
    from export.exporter import export_run

    out = tmp_path_factory.mktemp("bundle") / "model"
    export_run(tiny_run_dir, out, data=synthetic_dir, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_pack(tiny_bundle, synthetic_dir, tmp_path_factory) -> Path:
    import sdk

    out = tmp_path_factory.mktemp("pack") / "pack"
    sdk.build_pack(synthetic_dir, tiny_bundle, out, precision="fp32", providers="cpu", progress=False)
    return out
