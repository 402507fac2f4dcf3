"""The four graphs of a bundle as torch modules, and their export to ONNX with torch.onnx.

| graph          | inputs                                                   | outputs                                |
| text_encoder   | input_ids, attention_mask (batch, sequence)              | pooled (H^T)                           |
| intention_head | pooled                                                   | logits, query, query_<mode> per mode, suggest_logit (with a suggest head) |
| vision_encoder | pixel_values (batch)                                     | regions (h^I = f_vis(ViT regions))     |
| selector       | regions, attributes (H^A), attribute_mask (batch)        | sticker (normalised H^R), attribute_share |

The label table (label_proj applied to H^Y) is baked into intention_head as a constant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sdk.labels import ATTRIBUTES
from sdk.manifest import ATTRIBUTE_SHARE_OUTPUT
from sdk.suggest import SUGGEST_OUTPUT
from training.encoders import pooled_text, region_features
from training.model import IntRA


class TextEncoderGraph(nn.Module):
    def __init__(self, model: IntRA) -> None:
        super().__init__()
        self.text, self.pooling = model.text, model.cfg.pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return pooled_text(self.text, input_ids, attention_mask, self.pooling)


class IntentionHeadGraph(nn.Module):
    labels: torch.Tensor  # a registered buffer: the projected label table, when there is a head
    """pooled -> (logits, query in the run's mode, query for each mode the model serves).

    The queries come from IntRA.queries, the one definition of the modes; the projected label
    table is baked in as a constant.
    """

    def __init__(self, model: IntRA) -> None:
        super().__init__()
        self.model = model
        self.modes = list(model.modes)
        self.main = model.main_mode
        self.intention = model.intention
        # `intra suggest` fits it on H^T; export attaches it (training.suggest.attach)
        self.suggest = getattr(model, "suggest_head", None)
        if model.intention:
            with torch.no_grad():
                self.register_buffer("labels", model.label_proj(model.label_table).detach().clone())

    def output_names(self) -> list[str]:
        return ((["logits"] if self.intention else []) + ["query"] + [f"query_{m}" for m in self.modes]
                + ([SUGGEST_OUTPUT] if self.suggest is not None else []))

    def forward(self, pooled: torch.Tensor):
        logits, queries = self.model.queries(pooled, self.modes, label_vectors=self.labels if self.intention else None)
        outputs = [queries[self.main], *[queries[m] for m in self.modes]]
        if self.suggest is not None:
            outputs.append(self.suggest(pooled))
        return tuple(outputs if logits is None else [logits, *outputs])


class VisionEncoderGraph(nn.Module):
    def __init__(self, model: IntRA) -> None:
        super().__init__()
        self.vision, self.vis_proj = model.vision, model.vis_proj

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vis_proj(region_features(self.vision, pixel_values))


class SelectorGraph(nn.Module):
    def __init__(self, model: IntRA) -> None:
        super().__init__()
        self.attributes = model.attributes
        self.model = model
        if model.attributes:
            self.des_proj = model.des_proj

    def forward(self, regions: torch.Tensor, attributes: torch.Tensor, attribute_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attributes:
            attrs, mask = self.des_proj(attributes), attribute_mask
        else:  # keep the inputs in the graph so every bundle has the same signature
            # (a selector that reads no descriptions uses neither input: both are tied in, or the
            # exporter drops them and the graph no longer matches its manifest)
            attrs = (regions.new_zeros(regions.shape[0], attributes.shape[1], regions.shape[-1])
                     + 0.0 * attributes.sum() + 0.0 * attribute_mask.sum())
            mask = attribute_mask * 0.0  # no descriptions were read: no attribute drew anything
        sticker = F.normalize(self.model.pool_sticker(regions, attrs, attribute_mask), dim=-1)
        return sticker, self.model.attribute_share(regions, attrs, mask)


@dataclass
class GraphSpec:
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def graph_specs(model: IntRA, image_size: int, text_hidden: int) -> dict[str, GraphSpec]:
    """Example inputs, names and dynamic axes of the four graphs."""
    model.eval()
    ids = torch.ones(2, 7, dtype=torch.long)
    mask = torch.ones(2, 7, dtype=torch.long)
    head = IntentionHeadGraph(model)
    n_attr = len(ATTRIBUTES)
    regions = VisionEncoderGraph(model)(torch.zeros(2, 3, image_size, image_size)).detach()
    return {
        "text_encoder": GraphSpec(TextEncoderGraph(model), (ids, mask), ["input_ids", "attention_mask"], ["pooled"],
                                  {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "pooled": {0: "batch"}}),
        "intention_head": GraphSpec(head, (torch.zeros(2, text_hidden),), ["pooled"], head.output_names(),
                                    {"pooled": {0: "batch"}, **{n: {0: "batch"} for n in head.output_names()}}),
        "vision_encoder": GraphSpec(VisionEncoderGraph(model), (torch.zeros(2, 3, image_size, image_size),), ["pixel_values"], ["regions"],
                                    {"pixel_values": {0: "batch"}, "regions": {0: "batch"}}),
        "selector": GraphSpec(SelectorGraph(model), (regions, torch.zeros(2, n_attr, text_hidden), torch.ones(2, n_attr)),
                              ["regions", "attributes", "attribute_mask"], ["sticker", ATTRIBUTE_SHARE_OUTPUT],
                              {"regions": {0: "batch"}, "attributes": {0: "batch"}, "attribute_mask": {0: "batch"}, "sticker": {0: "batch"},
                               ATTRIBUTE_SHARE_OUTPUT: {0: "batch"}}),
    }


def export_graph(spec: GraphSpec, path: Path, opset: int) -> None:
    """torch.onnx.export (TorchScript exporter: one self-contained file), then onnx.checker."""
    import onnx

    spec.module.eval()
    # the tracer warns about Python-side shape checks in Hugging Face's modules; the graphs are
    # checked against PyTorch by the parity gate instead, so these say nothing a user can act on
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # the TorchScript exporter is chosen on purpose (one self-contained file, the opsets the SDK's
        # onnxruntime runs); its deprecation note and constant-folding remarks are not the user's to act on
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(spec.module, spec.inputs, str(path), input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=spec.dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)
