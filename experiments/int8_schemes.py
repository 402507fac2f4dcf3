"""Every int8 scheme on one trained run, in one process: ranking parity with fp32 and speed.

    python -m experiments.int8_schemes --run RUN --out DIR [--data DIR] [--threads 1] [--tokens 64]

Measures the schemes the export searches (export/int8.py INT8_SCHEMES) and the ones it does not
(dynamic int8 with chosen projections kept fp32, SmoothQuant-style outlier migration, static QDQ
of the weighted MatMuls with three calibration methods), then a per-MatMul sensitivity sweep
(dynamic int8 of all but one) and schemes that keep the most sensitive MatMuls fp32 or in
weight-only blocks, on the validation split, as the export's parity gate does. `ms` is the text
encoder alone at batch 1 (the best of 3 rounds' medians of `--repeat` calls, every scheme in turn
in each round), the part of `rank()` that int8 changes. Writes DIR/int8_schemes.json and
DIR/int8_schemes.md.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

OUTPUTS = ("output/dense", "attention/output")  # BERT node names: attention and feed-forward outputs
SWEEP_KEEP = (1, 2, 4, 8)  # how many of the most sensitive MatMuls the sweep's schemes treat finer
SMOOTH_ALPHAS = (0.5, 0.85, 0.9)  # beside the export's 0.75; 0 leaves activations alone, 1 moves all their range



def compared_schemes():
    """The export's schemes, then the ones measured for comparison only."""
    from export.int8 import INT8_SCHEMES, Int8Scheme

    return INT8_SCHEMES + (
        Int8Scheme("text encoder dynamic int8, output and value projections fp32", keep_fp32=OUTPUTS + ("value",)),
        Int8Scheme("text encoder dynamic int8, only query and key projections",
                   keep_fp32=OUTPUTS + ("value", "intermediate")),
    ) + tuple(
        Int8Scheme(f"text encoder dynamic int8 after SmoothQuant migration, alpha {a}", smooth_alpha=a) for a in SMOOTH_ALPHAS
    ) + (
        Int8Scheme("text encoder static QDQ (MatMulConstBOnly), minmax calibration", calibration="minmax"),
        Int8Scheme("text encoder static QDQ (MatMulConstBOnly), entropy calibration", calibration="entropy"),
        Int8Scheme("text encoder static QDQ (MatMulConstBOnly), percentile calibration", calibration="percentile"),
    )


def sweep_schemes(worst: list[str]):
    """Schemes that treat the `k` most sensitive MatMuls finer, for k in SWEEP_KEEP."""
    from export.int8 import SMOOTH_ALPHA, Int8Scheme

    out = []
    for k in SWEEP_KEEP:
        keys = tuple(n.lower() for n in worst[:k])
        out += [Int8Scheme(f"text encoder dynamic int8, the {k} most sensitive MatMul(s) fp32", keep_fp32=keys),
                Int8Scheme(f"text encoder dynamic int8, the {k} most sensitive MatMul(s) weight-only blocks of 128", finer=keys),
                Int8Scheme(f"text encoder dynamic int8 after SmoothQuant (alpha {SMOOTH_ALPHA}), the {k} most sensitive MatMul(s) fp32",
                           smooth_alpha=SMOOTH_ALPHA, keep_fp32=keys)]
    return out


class Bench:
    """The fp32 bundle, the unquantized graphs and the reference of one run, in a temporary directory."""

    def __init__(self, run: Path, data: Path | None, tmp: Path, threads: int, tokens: int, repeat: int) -> None:
        from export.exporter import export_run
        from export.graphs import export_graph, graph_specs
        from export.int8 import calibration_batches
        from export.opset import DEFAULT_OPSET
        from export.parity import end_to_end, reference
        from sdk.bundle import Bundle
        from sdk.dataset import load_dataset
        from training.run_dir import load_run
        from training.score_weights import read_weights

        model, tok, image_settings, conf = load_run(run)
        self.ds = load_dataset(data or conf["dataset"]["path"])
        self.ref = reference(model, tok, image_settings, self.ds, read_weights(run))
        self.split = self.ref.split
        # one fixed input of `tokens` tokens: the speed of these graphs does not depend on the words
        self.ids = np.full((1, tokens), min(1000, tok.vocab_size - 1), np.int64)
        self.mask = np.ones((1, tokens), np.int64)
        self.tmp, self.threads, self.repeat = tmp, threads, repeat
        export_run(run, tmp / "fp32", precisions=("fp32",), data=data, progress=False)
        self.specs = graph_specs(model, image_settings.image_size, int(conf["text_encoder"]["hidden_size"]))
        self.raw = tmp / "raw"
        self.raw.mkdir()
        for name, spec in self.specs.items():
            export_graph(spec, self.raw / f"{name}.onnx", DEFAULT_OPSET)
        self.fp32 = end_to_end(Bundle(tmp / "fp32", precision="fp32", providers="cpu"), self.ref)
        self.calibration = calibration_batches(self.ds, tok, model.cfg.use_knowledge)
        self.kept: list[Path] = []  # the text encoders to time
        (tmp / "texts").mkdir()

    def reference_row(self) -> dict[str, Any]:
        text = self.tmp / "fp32" / "fp32" / "text_encoder.onnx"
        return {"scheme": "fp32, fused (the reference)", "kind": "fp32", "top5_agreement": 1.0, "top5_with_prior": 1.0,
                "top5_without_prior": 1.0, "cosine_top5_agreement": 1.0, "map_delta": 0.0,
                "text_encoder_mb": round(text.stat().st_size / 1e6, 2), "text_encoder_path": str(text), "passes_gate": True}

    def row(self, scheme, parity: bool = True, keep: bool = True) -> dict[str, Any]:
        """Parity of one scheme, ranked as the SDK ranks it (a dynamic scheme row by row); with
        `keep` its text encoder is kept for the timings."""
        from export.int8 import describe, write_int8_graphs
        from export.parity import end_to_end, gate_reduced
        from sdk.bundle import Bundle

        variant = self.tmp / "variant"
        shutil.rmtree(variant, ignore_errors=True)
        shutil.copytree(self.tmp / "fp32", variant)
        write_int8_graphs(self.raw, variant / "fp32", list(self.specs), scheme, self.calibration)
        text = variant / "fp32" / "text_encoder.onnx"
        out = {"scheme": scheme.label, "kind": scheme.kind, "text_encoder": describe(scheme),
               "text_encoder_mb": round(text.stat().st_size / 1e6, 2)}
        if keep:
            kept = self.tmp / "texts" / f"{len(self.kept)}.onnx"
            shutil.copyfile(text, kept)
            self.kept.append(kept)
            out["text_encoder_path"] = str(kept)
        if not parity:
            return out
        bundle = Bundle(variant, precision="fp32", providers="cpu", verify=False)
        bundle.row_by_row = scheme.kind == "dynamic"  # per-tensor activation scales: what the SDK does for them
        ranking = end_to_end(bundle, self.ref)
        agreement = ranking.agreement(self.fp32)
        delta = 100 * (ranking.metrics["mAP"] - self.fp32.metrics["mAP"])
        return {**out, **agreement, "map_delta": round(delta, 3), "passes_gate": gate_reduced(agreement["top5_agreement"], delta).passed}

    def time_rows(self, rows: list[dict[str, Any]], rounds: int = 3) -> None:
        """`ms` of every row's text encoder: all of them in turn, `rounds` times, the best median
        kept, so that a change in the machine's load hits every scheme alike."""
        import onnxruntime as ort

        from benchmarks.measure import timed
        from sdk.providers import session_options

        feed = {"input_ids": self.ids, "attention_mask": self.mask}
        sessions = [ort.InferenceSession(r["text_encoder_path"], session_options(self.threads), providers=["CPUExecutionProvider"])
                    for r in rows]
        best = [float("inf")] * len(rows)
        for _ in range(rounds):
            for i, session in enumerate(sessions):
                best[i] = min(best[i], timed(partial(session.run, None, feed), self.repeat, warmup=5)["p50_ms"])
        for r, ms in zip(rows, best):
            r["ms"] = round(ms, 3)
            del r["text_encoder_path"]

    def sensitivity(self, progress: bool) -> list[dict[str, Any]]:
        """Dynamic int8 of every text MatMul but one, for each one: the MatMuls ranked by how much
        top-5 agreement keeping them fp32 buys (most first)."""
        from tqdm import tqdm

        from export.int8 import Int8Scheme, matmul_nodes

        names = matmul_nodes(self.raw / "text_encoder.onnx")
        rows = []
        for name in tqdm(names, desc="sensitivity sweep", disable=not progress):
            r = self.row(Int8Scheme(f"all but {name}", keep_fp32=(name.lower(),)), keep=False)  # not timed
            rows.append({"matmul": name, "top5_agreement": r["top5_agreement"], "map_delta": r["map_delta"]})
        return sorted(rows, key=lambda r: -r["top5_agreement"])


def measure(run: Path, data: Path | None, threads: int, tokens: int, repeat: int, progress: bool = True,
            sweep: bool = True, parity: bool = True) -> dict[str, Any]:
    """Figures of every scheme; the fp32 bundle and the variants live in a temporary directory."""
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="intra-int8-") as tmp_name:
        bench = Bench(run, data, Path(tmp_name), threads, tokens, repeat)
        rows = [bench.reference_row()]
        rows += [bench.row(s, parity) for s in tqdm(compared_schemes(), desc="int8 schemes", disable=not progress)]
        ranking = bench.sensitivity(progress) if sweep and parity else []
        if ranking:
            worst = [r["matmul"] for r in ranking]
            rows += [bench.row(s) for s in tqdm(sweep_schemes(worst), desc="sweep schemes", disable=not progress)]
        bench.time_rows(rows)
        return {"run": str(run), "split": bench.split, "queries": len(bench.ref.convs), "stickers": len(bench.ds.stickers),
                "threads": threads, "tokens": tokens, "cpu": _cpu(), "parity": parity,
                "fp32_mAP": bench.fp32.metrics["mAP"], "schemes": rows, "sensitivity": ranking}


def _cpu() -> dict[str, Any]:
    from sdk.cpu import cpu_info

    return cpu_info()


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# int8 schemes on {result['run']}", "",
             f"CPU: {result.get('cpu', {}).get('summary', 'not recorded')}.", "",
             f"Parity on the {result['split']} split ({result['queries']} queries, {result['stickers']} stickers) against "
             f"the fp32 bundle, ranked as the SDK ranks (final score: cosine plus the label term, with the usage prior as a pack "
             f"built from the dataset has it and without it as a pack from a folder; dynamic schemes one unpadded row at a "
             f"time); the gate takes the weaker of the two; the cosine alone is reported, not gated; `ms`: the text "
             f"encoder alone, batch 1, {result['tokens']} tokens, {result['threads']} thread(s), the best of 3 rounds' medians, "
             f"every scheme in turn in each round.", "",
             "| scheme | top-5 (gated) | with prior | without prior | cosine only | mAP delta (points) | text encoder MB | ms | parity gate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    def f(r: dict[str, Any], key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "n/a"  # --no-parity rows have times only

    for r in result["schemes"]:
        gate = "pass" if r.get("passes_gate") else "fail" if "passes_gate" in r else "n/a"
        lines.append(f"| {r['scheme']} | {f(r, 'top5_agreement', '.4f')} | {f(r, 'top5_with_prior', '.4f')} | "
                     f"{f(r, 'top5_without_prior', '.4f')} | {f(r, 'cosine_top5_agreement', '.4f')} | {f(r, 'map_delta', '+.3f')} | "
                     f"{r['text_encoder_mb']:.1f} | {'n/a' if r.get('ms') is None else format(r['ms'], '.2f')} | {gate} |")
    if result.get("sensitivity"):
        lines += ["", "Sensitivity sweep: dynamic int8 of every text-encoder MatMul but the one named (kept fp32), most "
                  "sensitive first.", "", "| MatMul kept fp32 | top-5 agreement | mAP delta (points) |", "| --- | --- | --- |"]
        lines += [f"| {r['matmul']} | {r['top5_agreement']:.4f} | {r['map_delta']:+.3f} |" for r in result["sensitivity"]]
    return "\n".join(lines) + "\n"


@app.command()
def main(
    run: Path = typer.Option(..., help="Run directory made by `intra train`."),
    out: Path = typer.Option(..., help="Directory for int8_schemes.json and int8_schemes.md."),
    data: Path | None = typer.Option(None, help="Dataset directory. [default: the run's]"),
    threads: int = typer.Option(1, help="onnxruntime threads for the timings."),
    tokens: int = typer.Option(64, help="Tokens in the timed input."),
    repeat: int = typer.Option(100, help="Timed calls per scheme."),
    sweep: bool = typer.Option(True, help="Run the per-MatMul sensitivity sweep and the schemes built from it."),
    parity: bool = typer.Option(True, help="Measure parity; --no-parity only times the schemes (for a quiet machine)."),
) -> None:
    """Measure every int8 scheme (the export's and the compared ones) on a trained run."""
    from sdk import atomic

    result = measure(run, data, threads, tokens, repeat, sweep=sweep, parity=parity)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "int8_schemes.json", result)
    text = markdown(result)
    atomic.write_text(out / "int8_schemes.md", text)
    typer.echo(text)
    typer.echo(f"wrote {out / 'int8_schemes.json'}, {out / 'int8_schemes.md'}")


if __name__ == "__main__":
    app()
