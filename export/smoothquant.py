"""SmoothQuant-style outlier migration for dynamic int8 (Xiao et al., 2023).

Dynamic int8 quantizes each activation tensor with one scale, so a few outlier channels of a
MatMul's input set the scale for all the others. Migration divides input channel j by
``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` and multiplies row j of every weight fed by that
input by ``s_j``: the product is unchanged in exact arithmetic, and the activation range is
flattened at the cost of a wider weight range, which per-channel int8 weights absorb.

MiniLM is a post-LayerNorm encoder: a LayerNorm's output feeds both the next MatMuls and the
residual sum, so the division cannot be folded into the LayerNorm's gamma. It is one elementwise
Mul per MatMul input instead (4 per layer, each hidden-size or intermediate-size wide), which costs
far less than the MatMuls it protects. Works on the unfused graph the quantizers take.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

DEFAULT_ALPHA = 0.5


def _weighted_inputs(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """MatMuls with a constant 2-D weight, grouped by the activation they multiply."""
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
            groups[node.input[0]].append(node)
    return dict(groups)


def activation_channel_max(path: Path, tensors: Sequence[str], batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Largest |value| of every last-axis channel of each tensor over the calibration batches."""
    import onnxruntime as ort

    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors if t not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor by name
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out: dict[str, np.ndarray] = {}
    for feed in batches:
        values = session.run(list(tensors), feed)
        for name, v in zip(tensors, values):
            m = np.abs(v.reshape(-1, v.shape[-1])).max(0)
            out[name] = np.maximum(out[name], m) if name in out else m
    return out


def smooth(src: Path, dst: Path, batches: Sequence[dict[str, np.ndarray]], alpha: float = DEFAULT_ALPHA) -> int:
    """Write `src` with outliers migrated into the weights to `dst`; returns the inputs smoothed."""
    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    groups = _weighted_inputs(model)
    act = activation_channel_max(src, list(groups), batches)
    for k, (x, users) in enumerate(groups.items()):
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in users]
        w_max = np.max([np.abs(w).max(1) for w in weights], axis=0)
        s = np.power(np.maximum(act[x], 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1.0 - alpha)
        s = np.clip(s, 1e-2, 1e2).astype(np.float32)  # a dead channel must not blow a weight row up
        for n, w in zip(users, weights):
            init = inits[n.input[1]]
            init.CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), init.name))
        inv = numpy_helper.from_array((1.0 / s).astype(np.float32), f"smooth_{k}_inv_scale")
        model.graph.initializer.append(inv)
        scaled = f"smooth_{k}_input"
        mul = helper.make_node("Mul", [x, inv.name], [scaled], name=f"smooth_{k}")
        for n in users:
            n.input[0] = scaled
        model.graph.node.insert(list(model.graph.node).index(users[0]), mul)
    onnx.save(model, str(dst))
    onnx.checker.check_model(str(dst))
    return len(groups)
