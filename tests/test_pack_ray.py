"""Catalog embedding on Ray: a local Ray started by the test builds the same pack as one machine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk.pack import load_pack

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _mixed_source(synthetic_dir, tmp_path):
    """Twelve image stickers of the synthetic world and two text-only ones, as one JSON list."""
    from sdk.dataset import load_dataset

    ds = load_dataset(synthetic_dir)
    folder = tmp_path / "src"
    folder.mkdir()
    entries = []
    for s in ds.stickers[:12]:
        shutil.copyfile(synthetic_dir / s.image_file, folder / f"{s.id}.png")
        entries.append({"id": s.id, "image": f"{s.id}.png", "attributes": dict(s.attributes)})
    entries += [{"id": "flip", "descriptions": ["(╯°□°)╯︵ ┻━┻", "table flip"]}, {"id": "ok", "descriptions": ["[OK]"]}]
    (folder / "stickers.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return folder / "stickers.json"


def test_a_ray_build_equals_the_one_machine_build(local_ray, tiny_bundle, synthetic_dir, tmp_path):
    source = _mixed_source(synthetic_dir, tmp_path)
    options = dict(precision="fp32", providers="cpu", progress=False, dtype="float32", batch_size=5)
    here = sdk.build_pack(source, tiny_bundle, tmp_path / "here", **options)
    there = sdk.build_pack(source, tiny_bundle, tmp_path / "ray", engine="ray", workers=2, **options)
    assert there.ids == here.ids
    assert np.abs(there.embeddings - here.embeddings).max() < 1e-6
    assert [s.record() for s in there.stickers] == [s.record() for s in here.stickers]
    assert [p.name for p in sorted((tmp_path / "ray" / "images").iterdir())] == \
        [p.name for p in sorted((tmp_path / "here" / "images").iterdir())]
    assert load_pack(tmp_path / "ray").meta.source_kind == "json"


def test_the_cli_builds_on_ray(local_ray, tiny_bundle, synthetic_dir, tmp_path):
    from sdk.cli import app

    source = _mixed_source(synthetic_dir, tmp_path)
    result = CliRunner().invoke(app, ["pack", "build", str(source), "--model", str(tiny_bundle), "--out", str(tmp_path / "pack"),
                                      "--precision", "fp32", "--engine", "ray", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(load_pack(tmp_path / "pack")) == 14


def test_an_unknown_engine_is_refused_before_any_work(tiny_bundle, synthetic_dir, tmp_path):
    with pytest.raises(sdk.IntraError, match="engine must be one of local, ray"):
        sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", engine="spark")
    assert not (tmp_path / "pack").exists()


def test_the_scaling_benchmark_times_every_engine_on_the_same_pack(tiny_bundle, synthetic_dir, tmp_path):
    from benchmarks.pack_engines import markdown, pack_engines

    result = pack_engines(tiny_bundle, _mixed_source(synthetic_dir, tmp_path), worker_counts=(1,))
    assert [(r["engine"], r["workers"]) for r in result["rows"]] == [("local (one process, every core)", None), ("ray", 1)]
    assert result["stickers"] == 14 and all(r["stickers_per_s"] > 0 for r in result["rows"])
    assert result["rows"][1]["max_difference"] < 1e-4  # the SDK's default precision here, possibly int8
    assert "| ray | 1 |" in markdown(result) and not ray.is_initialized()
