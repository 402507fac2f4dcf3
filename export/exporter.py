"""Turn a trained run into a model bundle: graphs per precision, parity gate, manifest.

The bundle is assembled in a temporary directory beside the destination and renamed into place
only when every requested precision has been exported and checked; a failure or interruption
leaves no half bundle and never touches an existing one.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sdk import atomic
from sdk.bundle import Bundle, sha256_file
from sdk.dataset import load_dataset
from sdk.errors import ArgumentError, IntraError
from sdk.imageprep import ImageSettings
from sdk.manifest import GRAPHS, MANIFEST, PRECISIONS, TOKENIZER, BundleManifest, Gate, GraphFile, fingerprint
from sdk.precision_choice import LEGACY_CACHE_GLOB
from sdk.scoring import ScoreWeights
from sdk.suggest import SuggestSettings
from sdk.textprep import ContextTokenizer, TextSettings
from training.model import IntRA
from training.run_dir import load_run
from training.score_weights import read_weights
from training.suggest import attach as attach_suggest

from .graphs import export_graph, graph_specs
from .int8 import INT8_SCHEMES, Int8Scheme, calibration_batches, describe, write_int8_graphs
from .opset import DEFAULT_OPSET, OPSET_RANGE
from .parity import Fp32Result, Reference, end_to_end, gate_fp32, gate_reduced, graph_cosines, reference, row_cosine, topk_agreement
from .precision import convert_fp16, optimize_text_encoder

log = logging.getLogger("intra.export")


class ParityError(IntraError, RuntimeError):
    """The exported graphs do not keep the model's behaviour; the message gives the figures."""


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import transformers

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}


@dataclass
class BundleDraft:
    """A bundle being assembled in `tmp`: the graphs placed so far, notes and parity figures.

    Every call to :meth:`write` rewrites manifest.json from these, so a precision's graphs can
    be loaded through the SDK (and measured) as soon as they are placed.
    """

    tmp: Path
    model: IntRA
    opset: int
    precisions: tuple[str, ...]
    text: TextSettings
    image: ImageSettings
    scoring: ScoreWeights
    about: dict[str, Any]
    text_hidden: int
    suggest: SuggestSettings | None = None
    graphs: dict[str, dict[str, GraphFile]] = field(default_factory=lambda: {g: {} for g in GRAPHS})
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (precision, reason)

    @property
    def raw(self) -> Path:
        """The graphs as torch exported them, before fusion, conversion or quantization."""
        return self.tmp / "_raw"

    def place(self, precision: str, graph: str) -> None:
        path = self.tmp / precision / f"{graph}.onnx"
        self.graphs[graph][precision] = GraphFile(f"{precision}/{graph}.onnx", sha256_file(path), path.stat().st_size)

    def gate(self, allow_degraded: bool) -> Gate:
        failed = tuple(dict.fromkeys(p for p, _ in self.failures))
        return Gate(not self.failures, failed, tuple(f"{p} {r}" for p, r in self.failures), allow_degraded)

    def write(self, gate: Gate | None = None) -> BundleManifest:
        manifest = BundleManifest(
            fingerprint="", graphs={g: dict(v) for g, v in self.graphs.items()},
            tokenizer_sha256=sha256_file(self.tmp / TOKENIZER), opset=self.opset,
            precisions=tuple(p for p in PRECISIONS if p in self.precisions), modes=self.model.modes,
            main_mode=self.model.main_mode, inputs=("context", "knowledge") if self.model.cfg.use_knowledge else ("context",),
            text_hidden=self.text_hidden, dim=self.model.cfg.dim, text=self.text,
            image=self.image, pooling=self.model.cfg.pooling, scoring=self.scoring, suggest=self.suggest, parity=self.parity, gate=gate,
            precision_notes=self.notes, about=self.about, text_only=self.model.attributes)
        manifest = replace(manifest, fingerprint=fingerprint(manifest))
        atomic.write_json(self.tmp / MANIFEST, manifest.to_json())
        return manifest

    def bundle(self, precision: str) -> Bundle:
        self.write()
        return Bundle(self.tmp, precision=precision, providers="cpu")


def export_run(run: Path | str, out: Path | str, precisions: tuple[str, ...] = PRECISIONS, opset: int = DEFAULT_OPSET,
               data: Path | str | None = None, allow_degraded: bool = False, progress: bool = True) -> BundleManifest:
    """Export `run` to the bundle directory `out`; returns its manifest.

    Steps: export the raw graphs; fp32 (fused text encoder) checked against PyTorch; each reduced
    precision checked against fp32; the parity gate over all of them.
    """
    precisions = _check_args(precisions, opset)
    run = Path(run)
    model, tokenizer, image_settings, conf = load_run(run)
    suggest = attach_suggest(model, run)
    data = Path(data) if data is not None else Path(conf["dataset"]["path"])
    atomic.check_output(Path(out), MANIFEST, "model bundle", [run, data], own=[LEGACY_CACHE_GLOB])  # refuse before exporting anything
    ds = load_dataset(data)
    weights = read_weights(run)
    ref = reference(model, tokenizer, image_settings, ds, weights)
    steps = tqdm(total=len(GRAPHS) + 1 + 2 * (len(precisions) - 1), desc="export", disable=not progress, unit="step")
    with atomic.atomic_dir(Path(out), MANIFEST, "model bundle", [run, data], own=[LEGACY_CACHE_GLOB]) as tmp:
        draft = BundleDraft(tmp, model, opset, precisions, tokenizer.settings, image_settings, weights, _about(run, conf),
                            int(conf["text_encoder"]["hidden_size"]), suggest)
        _export_raw(draft, run, steps)
        fp32 = _export_fp32(draft, ref, tokenizer, conf["text_encoder"], steps)
        for precision in precisions:
            if precision == "int8":
                figures = _export_int8(draft, ref, fp32, lambda: calibration_batches(ds, tokenizer, model.cfg.use_knowledge), steps)
            elif precision == "fp16":
                figures = _export_fp16(draft, ref, fp32, steps)
            else:
                continue
            draft.parity[precision] = figures
            draft.failures += [(precision, r) for r in gate_reduced(figures["top5_agreement"], figures["map_delta"]).reasons]
        steps.close()
        shutil.rmtree(draft.raw)
        final = draft.write(draft.gate(allow_degraded))
        if draft.failures and not allow_degraded:
            raise ParityError("export failed the parity gate (use --allow-degraded to keep the bundle anyway):\n  - "
                              + "\n  - ".join(final.gate.failures if final.gate else ()))
    return final


def _check_args(precisions: tuple[str, ...], opset: int) -> tuple[str, ...]:
    for p in precisions:
        if p not in PRECISIONS:
            raise ArgumentError(f"unknown precision {p!r}; expected some of {', '.join(PRECISIONS)}")
    if not isinstance(opset, int) or isinstance(opset, bool) or not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise ArgumentError(f"opset must be from {OPSET_RANGE[0]} to {OPSET_RANGE[1]}, got {opset!r}")
    # fp32 is the reference every reduced precision is gated against
    return tuple(p for p in PRECISIONS if p == "fp32" or p in precisions)


def _about(run: Path, conf: dict[str, Any]) -> dict[str, Any]:
    """Provenance for the manifest: versions, training config and metrics, the text encoder's shape."""
    keys = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
            "max_position_embeddings")
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": _versions(),
            "variant": conf["variant"], "training": conf["train"], "dataset": conf["dataset"],
            "metrics": json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {},
            "text_encoder_config": {k: conf["text_encoder"][k] for k in keys if k in conf["text_encoder"]}}


def _export_raw(draft: BundleDraft, run: Path, steps: tqdm) -> None:
    """torch.onnx.export of the four graphs, and the tokenizer."""
    draft.raw.mkdir()
    specs = graph_specs(draft.model, draft.image.image_size, draft.text_hidden)
    for name, spec in specs.items():
        export_graph(spec, draft.raw / f"{name}.onnx", draft.opset)
        steps.update()
    shutil.copyfile(run / TOKENIZER, draft.tmp / TOKENIZER)


def _export_fp32(draft: BundleDraft, ref: Reference, tokenizer: ContextTokenizer, text_config: dict[str, Any],
                 steps: tqdm) -> Fp32Result:
    """fp32 graphs (the text encoder fused by onnxruntime's optimizer), each output checked
    against PyTorch and the ranking of the validation split measured end to end."""
    (draft.tmp / "fp32").mkdir()
    fused = optimize_text_encoder(draft.raw / "text_encoder.onnx", draft.tmp / "fp32" / "text_encoder.onnx", text_config)
    draft.notes["fp32"] = {"text_encoder_fused": fused}
    for g in GRAPHS:
        if g != "text_encoder":
            shutil.copyfile(draft.raw / f"{g}.onnx", draft.tmp / "fp32" / f"{g}.onnx")
        draft.place("fp32", g)
    bundle = draft.bundle("fp32")
    cos = graph_cosines(bundle, ref, draft.model, tokenizer)
    ranking = end_to_end(bundle, ref)
    scores, metrics = ranking.scores, ranking.metrics
    draft.parity["reference"] = {"split": ref.split, "queries": len(ref.convs), "torch_mAP": ref.metrics["mAP"]}
    draft.parity["fp32"] = {"graph_cosine": cos, "top5_agreement": topk_agreement(scores, ref.scores),
                            "map_delta": round(100 * (metrics["mAP"] - ref.metrics["mAP"]), 4), "mAP": metrics["mAP"]}
    draft.failures += [("fp32", r) for r in gate_fp32(cos).reasons]
    steps.update()
    return Fp32Result(ranking, fused)


def _export_fp16(draft: BundleDraft, ref: Reference, fp32: Fp32Result, steps: tqdm) -> dict[str, Any]:
    """fp16 graphs from the fp32 ones (the unfused text encoder where the converter cannot take the fused one)."""
    (draft.tmp / "fp16").mkdir()
    for g in GRAPHS:
        dst = draft.tmp / "fp16" / f"{g}.onnx"
        try:
            convert_fp16(draft.tmp / "fp32" / f"{g}.onnx", dst, fused=(g == "text_encoder" and fp32.fused))
        except Exception as e:  # a fused contrib op the converter does not know: use the plain graph
            log.info("fp16 conversion of fused %s failed (%s); converting the unfused graph", g, e)
            convert_fp16(draft.raw / f"{g}.onnx", dst)
        draft.place("fp16", g)
    steps.update()
    figures = _reduced_figures(draft.bundle("fp16"), ref, fp32)
    steps.update()
    return figures


def _reduced_figures(bundle: Bundle, ref: Reference, fp32: Fp32Result) -> dict[str, Any]:
    """Agreement with fp32 of the app rankings (the gate takes the weaker) and of the cosine alone."""
    ranking = end_to_end(bundle, ref)
    return {**ranking.agreement(fp32.ranking),
            "map_delta": round(100 * (ranking.metrics["mAP"] - fp32.metrics["mAP"]), 4), "mAP": ranking.metrics["mAP"],
            "query_cosine_min": round(row_cosine(ranking.scores, fp32.scores), 6)}


def _export_int8(draft: BundleDraft, ref: Reference, fp32: Fp32Result,
                 calibration: Callable[[], list[dict[str, np.ndarray]]], steps: tqdm) -> dict[str, Any]:
    """Quantize with each scheme of INT8_SCHEMES in turn and keep the first that meets the gate;
    when none does, the best by top-5 agreement is kept and reported."""
    (draft.tmp / "int8").mkdir()
    batches: list[dict[str, np.ndarray]] = []

    def write(scheme: Int8Scheme) -> None:
        if scheme.needs_calibration and not batches:
            batches.extend(calibration())
        write_int8_graphs(draft.raw, draft.tmp / "int8", GRAPHS, scheme, batches)
        for g in GRAPHS:
            draft.place("int8", g)

    best: tuple[dict[str, Any], Int8Scheme] | None = None
    tried = []
    for scheme in INT8_SCHEMES:
        write(scheme)
        figures = _reduced_figures(draft.bundle("int8"), ref, fp32)
        figures.update(scheme=scheme.label, text_encoder_bytes=(draft.tmp / "int8" / "text_encoder.onnx").stat().st_size)
        tried.append({k: figures[k] for k in ("scheme", "top5_agreement", "map_delta", "text_encoder_bytes")})
        passed = gate_reduced(figures["top5_agreement"], figures["map_delta"]).passed
        if passed or best is None or figures["top5_agreement"] > best[0]["top5_agreement"]:
            best = (figures, scheme)
        if passed:
            break
    assert best is not None  # INT8_SCHEMES is not empty
    steps.update()
    figures, scheme = best
    if scheme != INT8_SCHEMES[len(tried) - 1]:
        write(scheme)  # the loop ended on another scheme: write the chosen one
    kept_fp32 = [] if scheme.small_graphs_int8 else [g for g in GRAPHS if g != "text_encoder"]
    # "kind" tells the runtime whether activation scales are per tensor ("dynamic": computed over the
    # whole batch, so the SDK runs such graphs one unpadded row at a time), per block or fixed
    draft.notes["int8"] = {"scheme": scheme.label, "kind": scheme.kind, "graphs_kept_fp32": kept_fp32,
                           "text_encoder": describe(scheme), "tried": tried}
    steps.update()
    return figures
