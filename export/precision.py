"""fp32 graph optimisation, int8 quantization and fp16 conversion, with onnxruntime's own tools.

- fp32: the BERT-style text encoder goes through onnxruntime.transformers' optimizer (attention,
  skip-layer-norm and GELU fusion); other graphs are exported as they are.
- int8: dynamic quantization, per-channel, of the MatMul/Gemm weights, on the unfused graph
  (quantizing a fused graph can fail, see STACK-NOTES.md). Nodes named in `exclude` stay fp32:
  the export searches for the smallest exclusion set that meets the parity gate.
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

    model_type = "bert" if config["model_type"] != "distilbert" else "bert"
    opt = optimize_model(str(src), model_type=model_type, num_heads=int(config["num_attention_heads"]),
                         hidden_size=int(config["hidden_size"]), opt_level=1)
    opt.save_model_to_file(str(dst))
    onnx.checker.check_model(str(dst))
    return True


def matmul_nodes(path: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes with a constant weight (what dynamic int8 quantizes)."""
    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and any(x in inits for x in n.input[1:2])]


def quantize_int8(src: Path, dst: Path, exclude: list[str] | None = None, per_channel: bool = True,
                  embeddings: bool = False) -> None:
    """Dynamic int8 (weights int8 per channel, activations quantized at run time).

    With `embeddings`, the Gather tables (word and position embeddings) are stored int8 too: in
    a small encoder they are most of the bytes.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], per_channel=per_channel,
                     weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude or []),
                     extra_options={"MatMulConstBOnly": True})
    if embeddings:
        quantize_embedding_rows(dst)
    onnx.checker.check_model(str(dst))


def quantize_embedding_rows(path: Path, min_rows: int = 1000) -> int:
    """Store large Gather tables (the word embeddings) as int8 with one scale per row.

    onnxruntime's dynamic Gather quantization uses one scale for the whole table, which costs
    MiniLM's ranking several points of top-5 agreement; a scale per row keeps each token's vector
    to within 0.4% at a quarter of the bytes. The graph gathers the int8 rows and their scales
    and multiplies: Gather(q, ids) -> Cast -> Mul(Gather(scale, ids)). Returns tables converted.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    converted = 0
    for node in list(model.graph.node):
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        table = numpy_helper.to_array(inits[node.input[0]])
        if table.ndim != 2 or table.shape[0] < min_rows or table.dtype != np.float32:
            continue
        scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
        base = node.input[0]
        model.graph.initializer.remove(inits[base])
        model.graph.initializer.extend([numpy_helper.from_array(q, f"{base}_int8_rows"),
                                        numpy_helper.from_array(scale.astype(np.float32), f"{base}_row_scale")])
        ids, out = node.input[1], node.output[0]
        index = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        new = [helper.make_node("Gather", [f"{base}_int8_rows", ids], [f"{out}_q"], name=f"{node.name}_q"),
               helper.make_node("Gather", [f"{base}_row_scale", ids], [f"{out}_s"], name=f"{node.name}_s"),
               helper.make_node("Cast", [f"{out}_q"], [f"{out}_f"], to=TensorProto.FLOAT, name=f"{node.name}_cast"),
               helper.make_node("Mul", [f"{out}_f", f"{out}_s"], [out], name=f"{node.name}_dequant")]
        for k, n in enumerate(new):
            model.graph.node.insert(index + k, n)
        converted += 1
    onnx.save(model, str(path))
    return converted


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
