"""The ONNX opsets the export writes (no torch import, so the CLI can check --opset before work)."""

from __future__ import annotations

DEFAULT_OPSET = 17
#: LayerNormalization is one op from 17; 20 is the most torch's TorchScript exporter writes.
OPSET_RANGE = (17, 20)
