"""fp32 graph optimisation and fp16 conversion, with onnxruntime's own tools (int8: int8.py).

- fp32: the BERT-style text encoder goes through onnxruntime.transformers' optimizer (attention,
  skip-layer-norm and GELU fusion); other graphs are exported as they are.
- fp16: onnxruntime.transformers.float16 with fp32 inputs/outputs and the numerically sensitive
  ops (normalisation, softmax, reductions, pow/sqrt/erf) kept in fp32.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import onnx

log = logging.getLogger("intra.export")

FP16_KEEP_FP32 = ["LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization", "Softmax", "ReduceMean",
                  "ReduceSum", "ReduceL2", "ReduceMax", "Pow", "Sqrt", "Erf", "Div", "ArgMax", "TopK", "Range", "CumSum"]


def optimize_text_encoder(src: Path, dst: Path, config: dict[str, Any]) -> bool:
    """Fuse the BERT-style graph into dst; return False (dst = src copy) if the model is not BERT-like."""
    import shutil

    if config.get("model_type") not in ("bert", "roberta", "xlm-roberta", "distilbert", "electra"):
        shutil.copyfile(src, dst)
        return False
    from onnxruntime.transformers.optimizer import optimize_model

    # onnxruntime's "bert" fusion covers every encoder listed above
    opt = optimize_model(str(src), model_type="bert", num_heads=int(config["num_attention_heads"]),
                         hidden_size=int(config["hidden_size"]), opt_level=1)
    opt.save_model_to_file(str(dst))
    onnx.checker.check_model(str(dst))
    return True


FUSED_NORMS = ("SkipLayerNormalization", "LayerNormalization", "SimplifiedLayerNormalization")


def convert_fp16(src: Path, dst: Path, fused: bool = False) -> None:
    """fp16 weights and compute, fp32 at the inputs/outputs and in the sensitive ops.

    In a fused graph the layer-norm ops stay fp16: their onnxruntime kernels accumulate in fp32,
    and blocking them would split the fused SkipLayerNormalization's inputs across two types.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(src))
    block = [op for op in FP16_KEEP_FP32 if not (fused and op in FUSED_NORMS)]
    converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True, op_block_list=block))
    converted.topological_sort()  # the converter inserts Cast nodes out of order
    onnx.save(converted.model, str(dst))
    onnx.checker.check_model(str(dst))
    import onnxruntime as ort

    ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])  # types must bind: fail here, not in the SDK
