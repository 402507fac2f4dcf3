"""Loading a bundle: batch independence, damaged graphs, the manifest's fields."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import mutate, rewrite_pack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdk
from sdk.bundle import Bundle, BundleError
from sdk.errors import IntraError
from sdk.manifest import BundleManifest, fingerprint, seal
from sdk.pack import load_pack
from sdk.ranker import Ranker


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_a_rows_result_does_not_depend_on_its_batch(tiny_bundle, precision):
    from sdk.bundle import Bundle

    bundle = Bundle(tiny_bundle, precision=precision, providers="cpu")
    alone = bundle.encode_contexts([["so happy today"]])
    batched = bundle.encode_contexts([["so happy today"], ["a much longer context that pads the first row " * 6], ["我好难过"]])
    assert np.abs(alone[0] - batched[0]).max() < 1e-5
    kind = json.loads((tiny_bundle / "manifest.json").read_text())["precision_notes"]["int8"]["kind"]
    assert bundle.row_by_row == (precision == "int8" and kind == "dynamic")
    pixels = np.random.default_rng(0).random((3, 3, 32, 32)).astype(np.float32)
    assert np.abs(bundle.regions(pixels[:1])[0] - bundle.regions(pixels)[0]).max() < 1e-5


def _bundle_copy(tiny_bundle: Path, dest: Path) -> Path:
    shutil.copytree(tiny_bundle, dest)
    return dest


def test_a_truncated_graph_with_a_matching_hash_fails_at_load(tiny_bundle, tiny_pack, tmp_path):
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["graphs"]["text_encoder"]["fp32"]
    graph = bundle / entry["file"]
    graph.write_bytes(graph.read_bytes()[:5000])
    entry["sha256"] = sdk.bundle.sha256_file(graph)
    manifest["fingerprint"] = fingerprint(BundleManifest.from_json({**manifest, "fingerprint": ""}, "manifest"))
    manifest["seal"] = seal(manifest)  # a careful forger: every digest agrees, only the graph is bad
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    rewrite_pack(pack, lambda m: m.update(fingerprint=manifest["fingerprint"]))
    with pytest.raises(BundleError, match="text_encoder.onnx: onnxruntime cannot load this graph"):
        Ranker(bundle, pack, precision="fp32", providers="cpu")


@pytest.mark.parametrize("change,message", [
    (lambda m: m.pop("modes"), "field 'modes' is missing"),
    (lambda m: m["dims"].pop("text_hidden"), "field 'dims.text_hidden' is missing"),
    (lambda m: m.update(main_mode="telepathy"), "field 'main_mode' must be one of"),
    (lambda m: m["graphs"]["selector"].update(fp32="x"), r"field 'graphs.selector.fp32' must be an object"),
    (lambda m: m.update(scoring={"prior_weight": "high"}), "scoring.prior_weight"),
])
def test_manifest_fields_are_checked(tiny_bundle, tmp_path, change, message):
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        Bundle(bundle, precision="fp32", providers="cpu")


@pytest.mark.parametrize("change", [
    lambda m: m["precision_notes"].setdefault("int8", {}).update(kind="weight-only"),
    lambda m: m.update(scoring={**(m.get("scoring") or {}), "prior_weight": 3.0}),
    lambda m: m.update(inputs=["context", "knowledge"] if m["inputs"] == ["context"] else ["context"]),
    lambda m: m["graphs"]["text_encoder"]["int8"].update(sha256="0" * 64),
])
def test_an_edit_of_any_field_that_changes_results_is_refused(tiny_bundle, tmp_path, change):
    """The fingerprint covers what packs depend on; the seal covers every other field."""
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    Bundle(bundle, precision="fp32", providers="cpu")  # the untouched copy loads
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="field 'seal' does not match .* edited after export"):
        Bundle(bundle, precision="fp32", providers="cpu")


def test_graph_paths_stay_inside_the_bundle_without_verify(tiny_bundle, tmp_path):
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for rel in ("../outside.onnx", str(tmp_path / "abs.onnx"), "fp32/a\x00b.onnx"):
        manifest["graphs"]["selector"]["fp32"]["file"] = rel
        manifest["seal"] = seal(manifest)
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(BundleError, match="escapes the bundle directory|NUL character"):
            Bundle(bundle, precision="fp32", providers="cpu", verify=False)


@given(data=st.data())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_manifest_mutations_raise_only_intra_errors(tiny_bundle, tiny_pack, tmp_path_factory, data):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    bundle = tmp_path_factory.mktemp("mut") / "model"
    shutil.copytree(tiny_bundle, bundle, symlinks=True)
    (bundle / "manifest.json").write_text(json.dumps(mutate(manifest, data)))
    pack = load_pack(tiny_pack)
    try:
        Ranker(bundle, pack, precision="fp32", providers="cpu").rank("so happy today")
    except IntraError:
        pass
