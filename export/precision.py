"""fp32 graph optimisation, int8 quantization and fp16 conversion, with onnxruntime's own tools.

- fp32: the BERT-style text encoder goes through onnxruntime.transformers' optimizer (attention,
  skip-layer-norm and GELU fusion); other graphs are exported as they are.
- int8, on the unfused graph (quantizing a fused graph can fail, see STACK-NOTES.md), in one of
  two ways: dynamic quantization, per-channel, of the MatMul/Gemm weights (activations quantized
  per tensor at run time: fastest, least accurate), or weight-only blockwise int8 (MatMulNBits,
  8 bits, one scale per block of `block_size` weights; with `int8_compute` the activations are
  quantized per block at run time, otherwise the product is computed in fp32). The export tries
  schemes from most to least aggressive and keeps the first that meets the parity gate.
- fp16: onnxruntime.transformers.float16 with fp32 inputs/outputs and the numerically sensitive
  ops (normalisation, softmax, reductions, pow/sqrt/erf) kept in fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Int8Scheme:
    """One way to quantize a bundle to int8; the word embeddings are int8 per row in all of them."""

    label: str
    small_graphs_int8: bool  # the vision encoder, selector and head too (dynamic), or fp32
    block_size: int | None = None  # text encoder: None = dynamic int8, else weight-only blocks
    int8_compute: bool = True  # weight-only: int8 activations per block (else fp32 products)


# From most to least aggressive; the export keeps the first that meets the parity gate. Measured
# on the GoEmoji model (MiniLM, 126 validation queries, 641 stickers; text encoder fp32 91.7 MB):
# top-5 agreement 0.870 (dynamic, 24.0 MB), 0.968 (blocks of 128, int8 compute, 24.2 MB), 0.975
# (blocks of 32, int8 compute, 25.2 MB), 0.984 (blocks of 32, fp32 compute, 25.2 MB). Dynamic
# int8 with the output and value projections kept fp32 reached only 0.892 at 39.9 MB.
INT8_SCHEMES = (
    Int8Scheme("dynamic int8, per-channel, every MatMul/Gemm of every graph", True),
    Int8Scheme("text encoder dynamic int8; vision encoder, selector and head fp32", False),
    Int8Scheme("text encoder weight-only int8, blocks of 128, int8 compute; small graphs fp32", False, 128),
    Int8Scheme("text encoder weight-only int8, blocks of 32, int8 compute; small graphs fp32", False, 32),
    Int8Scheme("text encoder weight-only int8, blocks of 32, fp32 compute; small graphs fp32", False, 32, False),
)


def quantize_int8(src: Path, dst: Path, exclude: list[str] | None = None, per_channel: bool = True,
                  embeddings: bool = False, block_size: int | None = None, int8_compute: bool = True) -> None:
    """int8 weights: dynamic quantization, or weight-only blockwise when `block_size` is given.

    Dynamic: weights int8 per channel, activations quantized per tensor at run time; nodes in
    `exclude` stay fp32. Weight-only (`block_size`): every MatMul with a constant weight becomes
    MatMulNBits with 8-bit weights and a scale per block of `block_size` along the input axis;
    `int8_compute` lets onnxruntime quantize the activations per block too (accuracy level 4),
    which is much finer than dynamic quantization's one scale per tensor. With `embeddings`, the
    word-embedding table is stored int8 with a scale per row: in a small encoder it is most of the bytes.
    """
    if block_size is None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _without_preprocess_hint():
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], per_channel=per_channel,
                             weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude or []),
                             extra_options={"MatMulConstBOnly": True})
    else:
        _weight_only_int8(src, dst, block_size, int8_compute, list(exclude or []))
    if embeddings:
        quantize_embedding_rows(dst)
    onnx.checker.check_model(str(dst))


@contextmanager
def _without_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs 'consider pre-processing' on the root logger for every graph; its
    pre-processing fails on BERT graphs (STACK-NOTES.md), so the hint is only noise here."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _weight_only_int8(src: Path, dst: Path, block_size: int, int8_compute: bool, exclude: list[str]) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # logs every node at INFO
    level = 4 if int8_compute else 0  # MatMulNBits accuracy_level: 4 = int8 activations, 0 = fp32
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=level, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=8, block_size=block_size, is_symmetric=True,
                                     accuracy_level=level, nodes_to_exclude=exclude, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


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
