"""Every int8 scheme on one trained run, in one process: ranking parity with fp32 and speed.

    python -m benchmarks.int8_schemes --run RUN --out DIR [--data DIR] [--threads 1] [--tokens 64]

Measures the schemes the export searches (export/int8.py INT8_SCHEMES) and the ones it does not
(dynamic int8 with chosen projections kept fp32, static QDQ with three calibration methods), on
the validation split, as the export's parity gate does. `ms` is the text encoder alone at batch 1
(median of `--repeat` calls), the part of `rank()` that int8 changes. Writes DIR/int8_schemes.json
and DIR/int8_schemes.md.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

OUTPUTS = ("output/dense", "attention/output")  # BERT node names: attention and feed-forward outputs


def compared_schemes():
    """The export's schemes, then the ones measured for comparison only."""
    from export.int8 import INT8_SCHEMES, Int8Scheme

    return INT8_SCHEMES + (
        Int8Scheme("text encoder dynamic int8, output and value projections fp32", keep_fp32=OUTPUTS + ("value",)),
        Int8Scheme("text encoder dynamic int8, only query and key projections",
                   keep_fp32=OUTPUTS + ("value", "intermediate")),
        Int8Scheme("text encoder static QDQ, minmax calibration", calibration="minmax"),
        Int8Scheme("text encoder static QDQ, entropy calibration", calibration="entropy"),
        Int8Scheme("text encoder static QDQ, percentile calibration", calibration="percentile"),
    )


def _latency_ms(path: Path, ids: np.ndarray, mask: np.ndarray, threads: int, repeat: int) -> float:
    import onnxruntime as ort

    from sdk.providers import session_options

    from .measure import timed

    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": mask}
    return round(timed(lambda: session.run(None, feed), repeat, warmup=5)["p50_ms"], 3)


def measure(run: Path, data: Path | None, threads: int, tokens: int, repeat: int, progress: bool = True) -> dict[str, Any]:
    """Figures of every scheme; the fp32 bundle and the variants live in a temporary directory."""
    from tqdm import tqdm

    from export.exporter import Reference, calibration_batches, end_to_end, export_run
    from export.graphs import export_graph, graph_specs
    from export.int8 import describe, write_int8_graphs
    from export.opset import DEFAULT_OPSET
    from export.parity import gate_reduced, topk_agreement
    from sdk.bundle import Bundle
    from sdk.dataset import load_dataset
    from training.features import refresh_label_table, sticker_inputs, sticker_labels
    from training.metrics import retrieval_metrics
    from training.run_dir import load_run

    model, tok, image_settings, conf = load_run(run)
    ds = load_dataset(data or conf["dataset"]["path"])
    split = "validation" if "validation" in ds.splits else "test"
    refresh_label_table(model, tok)
    labels, _ = sticker_labels(ds)
    ref = Reference(model, tok, sticker_inputs(ds, image_settings), ds.split(split), labels, ds.sticker_index(), split)
    # one fixed input of `tokens` tokens: the speed of these graphs does not depend on the words
    ids = np.full((1, tokens), min(1000, tok.vocab_size - 1), np.int64)
    mask = np.ones((1, tokens), np.int64)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="intra-int8-") as tmp_name:
        tmp = Path(tmp_name)
        export_run(run, tmp / "fp32", precisions=("fp32",), data=data, progress=False)
        specs = graph_specs(model, image_settings.image_size, int(conf["text_encoder"]["hidden_size"]))
        raw = tmp / "raw"
        raw.mkdir()
        for name, spec in specs.items():
            export_graph(spec, raw / f"{name}.onnx", DEFAULT_OPSET)
        fp32_scores, fp32_metrics = end_to_end(Bundle(tmp / "fp32", precision="fp32", providers="cpu"), ref)
        fp32_text = tmp / "fp32" / "fp32" / "text_encoder.onnx"
        rows.append({"scheme": "fp32, fused (the reference)", "kind": "fp32", "top5_agreement": 1.0, "map_delta": 0.0,
                     "text_encoder_mb": round(fp32_text.stat().st_size / 1e6, 2),
                     "ms": _latency_ms(fp32_text, ids, mask, threads, repeat), "passes_gate": True})
        calibration = calibration_batches(ds, tok, model.cfg.use_knowledge)
        for scheme in tqdm(compared_schemes(), desc="int8 schemes", disable=not progress):
            variant = tmp / "variant"
            shutil.rmtree(variant, ignore_errors=True)
            shutil.copytree(tmp / "fp32", variant)
            write_int8_graphs(raw, variant / "fp32", list(specs), scheme, calibration)
            text = variant / "fp32" / "text_encoder.onnx"
            scores, metrics = end_to_end(Bundle(variant, precision="fp32", providers="cpu", verify=False), ref)
            top5 = topk_agreement(scores, fp32_scores)
            delta = 100 * (metrics["mAP"] - fp32_metrics["mAP"])
            rows.append({"scheme": scheme.label, "kind": scheme.kind, "text_encoder": describe(scheme),
                         "top5_agreement": round(top5, 4), "map_delta": round(delta, 3),
                         "text_encoder_mb": round(text.stat().st_size / 1e6, 2),
                         "ms": _latency_ms(text, ids, mask, threads, repeat), "passes_gate": gate_reduced(top5, delta).passed})
    return {"run": str(run), "split": split, "queries": len(ref.convs), "stickers": len(ds.stickers),
            "threads": threads, "tokens": tokens, "fp32_mAP": retrieval_metrics(fp32_scores, ref.gold, labels)["mAP"],
            "schemes": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# int8 schemes on {result['run']}", "",
             f"Parity on the {result['split']} split ({result['queries']} queries, {result['stickers']} stickers) against "
             f"the fp32 bundle; `ms`: the text encoder alone, batch 1, {result['tokens']} tokens, "
             f"{result['threads']} thread(s), median.", "",
             "| scheme | top-5 agreement | mAP delta (points) | text encoder MB | ms | parity gate |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["schemes"]:
        lines.append(f"| {r['scheme']} | {r['top5_agreement']:.4f} | {r['map_delta']:+.3f} | {r['text_encoder_mb']:.1f} | "
                     f"{r['ms']:.2f} | {'pass' if r['passes_gate'] else 'fail'} |")
    return "\n".join(lines) + "\n"


@app.command()
def main(
    run: Path = typer.Option(..., help="Run directory made by `intra train`."),
    out: Path = typer.Option(..., help="Directory for int8_schemes.json and int8_schemes.md."),
    data: Path | None = typer.Option(None, help="Dataset directory. [default: the run's]"),
    threads: int = typer.Option(1, help="onnxruntime threads for the timings."),
    tokens: int = typer.Option(64, help="Tokens in the timed input."),
    repeat: int = typer.Option(100, help="Timed calls per scheme."),
) -> None:
    """Measure every int8 scheme (the export's and the compared ones) on a trained run."""
    from sdk import atomic

    result = measure(run, data, threads, tokens, repeat)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "int8_schemes.json", result)
    text = markdown(result)
    atomic.write_text(out / "int8_schemes.md", text)
    typer.echo(text)
    typer.echo(f"wrote {out / 'int8_schemes.json'}, {out / 'int8_schemes.md'}")


if __name__ == "__main__":
    app()
