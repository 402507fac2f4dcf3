"""Bundles and packs as an app ships them: read-only, never written by the runtime, and copied
anywhere together."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

import sdk
from sdk import precision_choice
from sdk.bundle import Bundle, BundleError
from sdk.cache import cache_root
from sdk.errors import ArgumentError
from sdk.locate import find_bundle
from sdk.ranker import get_ranker


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size) for p in [root, *root.rglob("*")])


def _set_writable(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


def _count_timings(monkeypatch) -> list[str]:
    calls: list[str] = []

    def fake(graphs, ids, mask, threads, repeat=precision_choice.REPEAT):
        calls.extend(graphs)
        return {"fp32": 10.0, "int8": 6.0}

    monkeypatch.setattr(precision_choice, "time_text_encoders", fake)
    monkeypatch.delenv(precision_choice.ENV, raising=False)
    return calls


def test_a_read_only_bundle_and_pack_rank_and_the_verdict_is_measured_once(tiny_bundle, tiny_pack, tmp_path, monkeypatch):
    app = tmp_path / "app"
    bundle, pack = app / "model", app / "pack"
    shutil.copytree(tiny_bundle, bundle)
    shutil.copytree(tiny_pack, pack)
    monkeypatch.setenv("INTRA_CACHE_DIR", str(tmp_path / "cache"))
    timings = _count_timings(monkeypatch)
    _set_writable(app, False)  # as root the bits do not stop a write: the snapshot below does
    before = _snapshot(app)
    try:
        first = sdk.Ranker(bundle, pack, providers="cpu")
        assert first.bundle.precision == "int8" and sorted(timings) == ["fp32", "int8"]
        assert first.rank(["see you tomorrow!"], top_k=3).matches
        timings.clear()
        again = sdk.Ranker(bundle, pack, providers="cpu")  # a later start on this machine
        assert again.bundle.precision == "int8" and timings == []
        assert sdk.rank(["see you tomorrow!"], pack, model=bundle, providers="cpu").matches
        assert _snapshot(app) == before
    finally:
        _set_writable(app, True)
    assert len(list((tmp_path / "cache" / "precision").glob("*.json"))) == 1


def test_the_cache_directory_is_the_argument_then_the_environment_then_the_users(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("INTRA_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env" and cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("INTRA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):  # platformdirs follows XDG there
        assert cache_root() == tmp_path / "xdg" / "intra"
    monkeypatch.setenv("INTRA_CACHE_DIR", str(tmp_path / "env"))
    timings = _count_timings(monkeypatch)
    assert Bundle(tiny_bundle, providers="cpu", cache_dir=tmp_path / "arg").precision == "int8" and timings
    assert len(list((tmp_path / "arg" / "precision").glob("*.json"))) == 1 and not (tmp_path / "env").exists()
    with pytest.raises(ArgumentError, match="cache_dir"):
        Bundle(tiny_bundle, providers="cpu", cache_dir=3)  # type: ignore[arg-type]


def test_the_verdict_is_keyed_by_the_bundle_the_cpu_the_runtime_and_the_threads(tmp_path):
    paths = {precision_choice.cache_path(tmp_path, fp, threads) for fp in ("a" * 64, "b" * 64) for threads in (None, 1, 2)}
    assert len(paths) == 6 and all(p.parent == tmp_path / "precision" for p in paths)


def test_a_pack_copied_with_its_bundle_finds_it_wherever_they_go(tiny_bundle, synthetic_dir, tmp_path):
    app = tmp_path / "build" / "app"
    shutil.copytree(tiny_bundle, app / "model")
    sdk.build_pack(synthetic_dir, app / "model", app / "pack", precision="fp32", providers="cpu", progress=False)
    meta = json.loads((app / "pack" / "pack.json").read_text())
    assert meta["model_relpath"] == "../model" and meta["model_path"] == str((app / "model").resolve())
    moved = tmp_path / "phone" / "files" / "app"
    moved.parent.mkdir(parents=True)
    shutil.move(app, moved)  # the build machine's absolute path is gone
    assert not Path(meta["model_path"]).exists()
    result = sdk.rank(["see you tomorrow!"], moved / "pack", providers="cpu", precision="fp32")
    assert result.matches and get_ranker(moved / "pack", providers="cpu", precision="fp32").bundle.root == moved / "model"
    (moved / "model").rename(moved / "bundle-v1")  # renamed: the relative path is stale, a sibling holds it
    assert find_bundle(moved / "pack", meta["fingerprint"], meta["model_relpath"], meta["model_path"]) == moved / "bundle-v1"
    shutil.rmtree(moved / "bundle-v1")
    (moved / "other").mkdir()  # a sibling that is no bundle is passed over
    with pytest.raises(BundleError, match=f"fingerprint {meta['fingerprint']}.*pass model=BUNDLE_DIR"):
        sdk.rank(["see you tomorrow!"], moved / "pack", providers="cpu", precision="int8")


def test_a_pack_built_far_from_its_bundle_records_no_relative_path(tiny_bundle, tiny_pack):
    meta = json.loads((tiny_pack / "pack.json").read_text())
    assert "model_relpath" not in meta and meta["model_path"] == str(tiny_bundle.resolve())
