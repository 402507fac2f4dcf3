"""intra-export on a tiny trained run: every precision, the parity gate, hashes, tampering, no torch."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from sdk.bundle import GRAPHS, PRECISIONS, Bundle, BundleError, sha256_file


def test_bundle_has_every_graph_at_every_precision_with_hashes(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and len(manifest["fingerprint"]) == 32
    for g in GRAPHS:
        for p in PRECISIONS:
            entry = manifest["graphs"][g][p]
            path = tiny_bundle / entry["file"]
            assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
            onnx.checker.check_model(str(path))
    assert set(manifest["parity"]) >= {"fp32", "int8", "fp16", "gate"}
    assert manifest["parity"]["gate"]["passed"] is True
    assert min(manifest["parity"]["fp32"]["graph_cosine"].values()) >= 0.9999
    for p in ("int8", "fp16"):
        assert manifest["parity"][p]["top5_agreement"] >= 0.95 and abs(manifest["parity"][p]["map_delta"]) <= 0.5
    assert manifest["versions"]["onnxruntime"] and manifest["training"]["preset"] == "tiny"
    assert "paper" in manifest["modes"] and manifest["main_mode"] == "fused"
    for f in ("tokenizer.json", "preprocessing.json", "labels.json"):
        assert sha256_file(tiny_bundle / f) == manifest["files"][f]
    pre = json.loads((tiny_bundle / "preprocessing.json").read_text())
    assert pre["text"]["truncation_side"] == "left" and pre["image"]["image_size"] == 32


def test_graphs_have_dynamic_batch_and_sequence(tiny_bundle):
    b = Bundle(tiny_bundle, precision="fp32", providers="cpu")
    for batch, length in ((1, 5), (3, 17)):
        pooled = b.pooled(np.ones((batch, length), np.int64), np.ones((batch, length), np.int64))
        assert pooled.shape == (batch, b.text_hidden)
    assert b.regions(np.zeros((5, 3, 32, 32), np.float32)).shape[0] == 5


def test_tampered_graph_is_detected(tiny_bundle, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_bundle, copy)
    path = copy / "int8" / "selector.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"selector.onnx: sha256 .* does not match the manifest"):
        Bundle(copy, precision="int8", providers="cpu")
    Bundle(copy, precision="fp32", providers="cpu")  # other precisions are still fine
    (copy / "fp32" / "vision_encoder.onnx").unlink()
    with pytest.raises(BundleError, match="vision_encoder.onnx: listed in the manifest but missing"):
        Bundle(copy, precision="fp32", providers="cpu")


def test_gate_fails_on_a_broken_graph_and_keeps_nothing(tiny_run_dir, synthetic_dir, tmp_path, monkeypatch):
    from export import exporter
    from export.exporter import ParityError, export_run

    real = exporter.quantize_int8

    def broken(src, dst, exclude=None, **kw):
        real(src, dst, exclude, **kw)
        model = onnx.load(str(dst))
        rng = np.random.default_rng(0)
        for init in model.graph.initializer:  # a broken quantizer: every weight replaced by noise
            arr = onnx.numpy_helper.to_array(init)
            if init.data_type == onnx.TensorProto.INT8:
                init.CopyFrom(onnx.numpy_helper.from_array(rng.integers(-127, 127, arr.shape).astype(np.int8), init.name))
            elif init.data_type == onnx.TensorProto.FLOAT and arr.size > 1:
                noise = rng.standard_normal(arr.shape).astype(np.float32) * (np.abs(arr).mean() + 1e-3) * 5
                init.CopyFrom(onnx.numpy_helper.from_array(noise, init.name))
        onnx.save(model, str(dst))

    monkeypatch.setattr(exporter, "quantize_int8", broken)
    existing = tmp_path / "model"
    existing.mkdir()
    (existing / "keep.txt").write_text("old bundle")
    with pytest.raises(ParityError, match="int8 (top-5 agreement|mAP differs)"):
        export_run(tiny_run_dir, existing, precisions=("fp32", "int8"), data=synthetic_dir, progress=False)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    manifest = export_run(tiny_run_dir, tmp_path / "degraded", precisions=("int8",), data=synthetic_dir,
                          allow_degraded=True, progress=False)
    assert manifest["parity"]["gate"]["passed"] is False and manifest["parity"]["gate"]["failures"][0].startswith("int8")
    assert (tmp_path / "degraded" / "manifest.json").is_file()


def test_fp32_gate_fails_when_a_graph_differs_from_pytorch(tiny_run_dir, synthetic_dir, tmp_path, monkeypatch):
    import torch

    from export import exporter
    from export.exporter import ParityError, export_run

    real = exporter.export_graph

    def noisy(spec, path, opset):
        if path.name == "vision_encoder.onnx":
            with torch.no_grad():
                for p in spec.module.parameters():
                    p.add_(torch.randn_like(p) * 0.05)
        real(spec, path, opset)

    monkeypatch.setattr(exporter, "export_graph", noisy)
    with pytest.raises(ParityError, match="fp32 vision_encoder: output cosine"):
        export_run(tiny_run_dir, tmp_path / "m", precisions=("fp32",), data=synthetic_dir, progress=False)
    assert not (tmp_path / "m").exists()


def test_bundle_runs_in_a_process_without_torch(tiny_bundle):
    code = f"""
import sys
from sdk.bundle import Bundle
b = Bundle({str(tiny_bundle)!r}, precision="int8", providers="cpu")
logits, q = b.head(b.encode_contexts([["so happy today"]]))
assert logits.shape == (1, 28) and abs(float((q ** 2).sum()) - 1) < 1e-4
bad = [m for m in ("torch", "transformers", "optimum") if m in sys.modules]
assert not bad, bad
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_prints_sizes_and_gate(tiny_run_dir, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from export.cli import app

    result = CliRunner().invoke(app, [str(tiny_run_dir), "--out", str(tmp_path / "m"), "--precision", "fp32,fp16",
                                      "--data", str(synthetic_dir)])
    assert result.exit_code == 0, result.output
    assert "parity gate: passed" in result.output and "| text_encoder |" in result.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["precisions"] == ["fp32", "fp16"]
    result = CliRunner().invoke(app, [str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "config.json: not found" in result.output
