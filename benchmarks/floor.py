"""The int8 floor: the shipped int8 rank() against full dynamic int8 of the same bundle, one run.

Full dynamic int8 (every text-encoder MatMul, activations with one scale per tensor) is the fastest
int8 onnxruntime offers on CPU and fails the parity gate on the trained models; it is the floor
the shipped scheme is measured against. The variant is the bundle with its int8 text encoder
replaced, ranked row by row as the SDK ranks any dynamic scheme.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from sdk.bundle import Bundle
from sdk.pack import Pack
from sdk.ranker import Ranker

from .measure import timed


def dynamic_text_encoder(run: Path, dst: Path) -> None:
    """The run's text encoder exported unfused and quantized dynamically (the export's first scheme)."""
    from export.graphs import export_graph, graph_specs
    from export.int8 import quantize_int8
    from export.opset import DEFAULT_OPSET
    from training.run_dir import load_run

    model, _, image_settings, conf = load_run(run)
    spec = graph_specs(model, image_settings.image_size, int(conf["text_encoder"]["hidden_size"]))["text_encoder"]
    raw = dst.with_name("raw_text_encoder.onnx")
    export_graph(spec, raw, DEFAULT_OPSET)
    quantize_int8(raw, dst, embeddings=True)
    raw.unlink()


def int8_vs_dynamic_floor(model: Path, run: Path, pack: Pack, context: list[str], repeat: int) -> dict[str, Any]:
    """Shipped int8 rank() p50 over full dynamic int8 rank() p50, batch 1, one thread."""
    shipped = Ranker(Bundle(model, precision="int8", providers="cpu", threads=1), pack)
    with tempfile.TemporaryDirectory(prefix="intra-floor-") as tmp:
        copy = Path(tmp) / "bundle"
        shutil.copytree(model, copy)
        dynamic_text_encoder(run, copy / "int8" / "text_encoder.onnx")
        bundle = Bundle(copy, precision="int8", providers="cpu", threads=1, verify=False)
        bundle.row_by_row = True  # per-tensor scales: how the SDK runs a dynamic scheme
        floor = Ranker(bundle, pack)
        # alternate the two so that a change in machine load hits both alike
        a, b = [], []
        for _ in range(3):
            a.append(timed(lambda: shipped.rank(context), repeat)["p50_ms"])
            b.append(timed(lambda: floor.rank(context), repeat)["p50_ms"])
    shipped_ms, floor_ms = min(a), min(b)
    return {"shipped_ms": shipped_ms, "dynamic_ms": floor_ms, "ratio": shipped_ms / floor_ms,
            "shipped_scheme": shipped.bundle.manifest.parity.get("int8", {}).get("scheme")}
