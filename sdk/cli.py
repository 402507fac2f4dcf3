"""The `intra` command line: one typer app with a subcommand per job.

Runtime and data subcommands need only the base install. Training subcommands import torch
lazily and, when it is missing, say which extra to install.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Literal, Optional

import typer

from .bundle import PRECISIONS
from .cli_guard import fail, run_guarded
from .errors import IntraError, MissingExtraError
from .labels import QUERY_MODES
from .pack import DTYPES
from .providers import PROVIDER_REQUESTS

# choices typer checks before any work; Literal[tuple] spells out the tuple's members
Precision = Literal[PRECISIONS]  # type: ignore[valid-type]
Providers = Literal[PROVIDER_REQUESTS]  # type: ignore[valid-type]
QueryMode = Literal[QUERY_MODES]  # type: ignore[valid-type]
Dtype = Literal[DTYPES]  # type: ignore[valid-type]

app = typer.Typer(
    help="intra: pick the right sticker to reply with (Int-RA), trained in PyTorch, run on onnxruntime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts say "[default: ...]" literally; rich markup would eat it
)
data_app = typer.Typer(help="Build dataset directories: the built-in synthetic world or the real GoEmoji data.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(data_app, name="data")
pack_app = typer.Typer(help="Build, inspect and merge sticker packs (runs on onnxruntime only).", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(pack_app, name="pack")


def require_extra(what: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError when any of `modules` cannot be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(what, extra, module)


def _shard(value: Optional[str]) -> Optional[tuple[int, int]]:
    """--shard I/N as (I, N), checked before any work."""
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise typer.BadParameter(f"expected I/N (build shard I of N, counting from 0), got {value!r}")
    index, count = int(parts[0]), int(parts[1])
    if not 0 <= index < count:
        raise typer.BadParameter(f"I/N needs 0 <= I < N, got {value!r}")
    return index, count


@data_app.command("synthetic")
def data_synthetic(
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    seed: int = typer.Option(0, help="Random seed; the same seed draws the same world."),
    stickers: int = typer.Option(140, min=28, max=100_000, help="Number of stickers (spread over the 28 intentions)."),
    conversations: int = typer.Option(3000, min=20, max=10_000_000, help="Number of conversations over train/validation/test."),
) -> None:
    """Draw the built-in SYNTHETIC sticker world (stickers + bilingual conversations)."""
    from training.data.synthetic import SyntheticConfig, generate

    try:
        counts = generate(out, SyntheticConfig(seed=seed, stickers=stickers, conversations=conversations), progress=True)
    except (IntraError, ValueError) as e:
        fail(e)
    typer.echo(f"wrote SYNTHETIC dataset to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("goemoji")
def data_goemoji(
    source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (with goemotions/ and emoji/)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    seed: int = typer.Option(0, help="Seed of the validation split carved out of train."),
    validation_fraction: float = typer.Option(0.15, min=0.01, max=0.9, help="Fraction of train.tsv's emoji comments kept for validation."),
) -> None:
    """Build the real GoEmoji dataset: GoEmotions comments with an emoji, the emoji as gold sticker."""
    from training.data.goemoji import RULES, build

    try:
        counts = build(source, out, seed=seed, validation_fraction=validation_fraction)
    except IntraError as e:
        fail(e)
    typer.echo(f"wrote GoEmoji dataset to {out}")
    for key, value in counts.items():
        typer.echo(f"  {key:28s} {value}")
    for key, rule in RULES.items():
        typer.echo(f"  rule {key}: {rule}")


@app.command("info")
def info(path: Path = typer.Argument(..., help="A dataset directory.")) -> None:
    """Validate a dataset directory and print its counts."""
    from .dataset import load_dataset

    try:
        ds = load_dataset(path)
    except IntraError as e:
        fail(e)
    out = {"name": ds.info.get("name"), "synthetic": ds.info.get("synthetic"), "stickers": len(ds.stickers),
           "splits": {k: len(v) for k, v in ds.splits.items()}}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset directory (see `intra data`)."),
    out: Path = typer.Option(..., "--out", help="Run directory to write; an unfinished run there is resumed."),
    preset: str = typer.Option("small", help="tiny (tests, seconds), small (the demo, minutes on 2 cores) or base."),
    text_model: Optional[str] = typer.Option(None, help="Hugging Face encoder directory, 'minilm' (all-MiniLM-L6-v2 from its package) or 'tiny'. [default: the preset's]"),
    vision_model: Optional[str] = typer.Option(None, help="Local CLIP vision / ViT directory, 'vit-config' (a ViT built from a config) or 'efficientnet-lite0' (ImageNet weights from its package, frozen; 4x4 regions). [default: the preset's]"),
    mode: QueryMode = typer.Option("fused", help="Query mode: paper (argmax label), soft (probability-weighted labels) or fused (+ projected context)."),
    no_knowledge: bool = typer.Option(False, "--no-knowledge", help="Ablation: never feed commonsense knowledge."),
    no_attributes: bool = typer.Option(False, "--no-attributes", help="Ablation: H^R is the mean of the region features."),
    no_intention: bool = typer.Option(False, "--no-intention", help="Ablation: the query is the projected context, no intention head."),
    dual_encoder: bool = typer.Option(False, "--dual-encoder", help="Baseline: CLIP-style dual encoder (context vs image, InfoNCE), no intention."),
    extra_intention: bool = typer.Option(False, "--extra-intention", help="Also train the intention head on extra_intention.jsonl."),
    extra_intention_max: int = typer.Option(8192, min=1, help="With --extra-intention: use at most this many extra comments (a fixed random subset per seed)."),
    epochs: Optional[int] = typer.Option(None, min=1, max=10_000, help="Epochs. [default: the preset's]"),
    loss: Optional[str] = typer.Option(None, "--loss", help="Retrieval loss: hinge or infonce. [default: the preset's]"),
    negatives: Optional[int] = typer.Option(None, "--negatives", help="Sampled negatives per batch; -1: the whole catalog. [default: the preset's]"),
    select_on: Optional[str] = typer.Option(None, "--select-on", help="Best checkpoint by validation 'mAP' (of the cosine) or 'final' (mean of MRR, R@10, mAP of the final score). [default: the preset's]"),
    seed: int = typer.Option(0, help="Seed; the same seed and flags give the same run."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming a run found in --out."),
) -> None:
    """Train Int-RA (or an ablation, or the dual-encoder baseline) on a dataset directory."""
    try:
        require_extra("`intra train`", "train", "torch", "transformers", "safetensors")
        from training.config import preset as make_preset
        from training.trainer import train

        cfg = make_preset(preset, text_model=text_model, vision_model=vision_model, mode=mode, epochs=epochs, seed=seed,
                          use_knowledge=not no_knowledge, use_attributes=not no_attributes, use_intention=not no_intention,
                          dual_encoder=dual_encoder, extra_intention=extra_intention,
                          extra_intention_max=extra_intention_max, retrieval_loss=loss, sampled_negatives=negatives,
                          select_on=select_on)
        result = train(cfg, data, out, progress=True, resume=not fresh)
    except (IntraError, ValueError) as e:
        fail(e)
    typer.echo(f"run {result['run']}: best validation {result['select_on']} {result['best_val']:.4f}; scoring weights {result['scoring']}")


@app.command("eval")
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory made by `intra train`."),
    data: Path = typer.Option(..., "--data", help="Dataset directory."),
    split: str = typer.Option("test", help="Split to evaluate."),
    out: Path = typer.Option(..., "--out", help="Report directory (report.json, report.md, pr_curve.png)."),
    compare: list[str] = typer.Option([], "--compare", help="NAME=RUN_DIR: another trained run to put in the table (ablation, dual encoder, other mode). Repeatable."),
    probes: bool = typer.Option(False, "--probes", help="Add the probe-emoji and probe-intention baselines (frozen all-MiniLM-L6-v2 features; cached in OUT/cache)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Also rank through this exported bundle with the SDK (a pack is built from --data)."),
    precision: Optional[Precision] = typer.Option(None, help="With --model: bundle precision. [default: the SDK's choice]"),
) -> None:
    """Evaluate a run against the baselines (random, popular, intention-only) and any --compare runs."""
    try:
        require_extra("`intra eval`", "train", "torch", "transformers", "matplotlib")
        from training.evaluate import evaluate, write_report

        others = {}
        for item in compare:
            if "=" not in item:
                raise ValueError(f"--compare {item!r}: expected NAME=RUN_DIR")
            name, path = item.split("=", 1)
            others[name] = Path(path)
        report = evaluate(run, data, split, others, probes=probes, cache_dir=out / "cache", bundle=model, precision=precision)
        write_report(report, out)
    except (IntraError, ValueError) as e:
        fail(e)
    from training.evaluate import markdown

    typer.echo(markdown(report))
    typer.echo(f"wrote {out}/report.json, report.md, pr_curve.png")


@pack_app.command("build")
def pack_build(
    source: Path = typer.Argument(..., help="A folder of images (optional descriptions.json/.jsonl sidecar) or a dataset directory."),
    model: Path = typer.Option(..., "--model", help="Model bundle made by intra-export."),
    out: Path = typer.Option(..., "--out", help="Pack directory to write: free, empty or an earlier pack (replaced atomically); never the source or the bundle."),
    precision: Optional[Precision] = typer.Option(None, help="Bundle precision. [default: int8 on CPU, fp16 on CUDA]"),
    providers: Providers = typer.Option("auto", help="Where the graphs run."),
    batch_size: int = typer.Option(32, min=1, max=4096, help="Stickers per batch through the graphs (results do not depend on it)."),
    dtype: Dtype = typer.Option("float16", help="Storage type of embeddings.npy."),
    ocr: bool = typer.Option(False, "--ocr", help="Read captions drawn on stickers into the 'verbal' attribute (the 'ocr' extra)."),
    shard: Optional[str] = typer.Option(None, callback=_shard, help="I/N: build only shard I of N, counting from 0 (merge shards with `intra pack merge`)."),
    usage: Optional[Path] = typer.Option(None, "--usage", help="JSON file {sticker id: count}: usage counts for the usage prior. [default: a dataset's training-split counts; none for a folder]"),
) -> None:
    """Embed stickers with a bundle and write a pack (pack.json, embeddings.npy, images)."""
    from .pack_build import build_pack

    try:
        pack = build_pack(source, model, out, batch_size=batch_size, dtype=dtype, ocr=ocr, shard=shard,  # type: ignore[arg-type]
                          providers=providers, precision=precision, usage=usage)
    except (IntraError, ValueError) as e:
        fail(e)
    counts = "no usage counts" if pack.usage is None else f"usage counts for {sum(1 for v in pack.usage.values() if v)} stickers"
    typer.echo(f"wrote pack {out}: {len(pack)} stickers, dim {pack.meta['dim']}, {pack.meta['embeddings']['dtype']}, "
               f"model {pack.fingerprint} ({pack.meta['precision']}), {counts}")


@pack_app.command("info")
def pack_info(pack: Path = typer.Argument(..., help="Pack directory.")) -> None:
    """Verify a pack (every sha256) and print its summary."""
    from collections import Counter

    from .pack import load_pack

    try:
        p = load_pack(pack)
    except IntraError as e:
        fail(e)
    labels = Counter(s.label or "(none)" for s in p.stickers)
    typer.echo(json.dumps({"path": str(p.root), "stickers": len(p), "dim": p.meta["dim"], "dtype": p.meta["embeddings"]["dtype"],
                           "fingerprint": p.fingerprint, "precision": p.meta.get("precision"), "model_path": p.meta.get("model_path"),
                           "created": p.meta.get("created"), "labels": dict(labels.most_common(10)),
                           "usage": None if p.usage is None else {"stickers": len(p.usage), "total": sum(p.usage.values())}},
                          indent=2, ensure_ascii=False))


@pack_app.command("merge")
def pack_merge(
    shards: list[Path] = typer.Argument(..., help="Pack directories built by the same model."),
    out: Path = typer.Option(..., "--out", help="Merged pack directory: free, empty or an earlier pack, never a shard."),
) -> None:
    """Merge shards built by the same model into one pack."""
    from .pack import load_pack, merge_packs

    try:
        merge_packs(shards, out)
        n = len(load_pack(out))
    except IntraError as e:
        fail(e)
    typer.echo(f"wrote merged pack {out}: {n} stickers")


@app.command("rank")
def rank_cmd(
    turns: list[str] = typer.Argument(..., help="The conversation, one argument per turn, oldest first."),
    pack: Path = typer.Option(..., "--pack", help="Pack directory."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model bundle. [default: the one that built the pack]"),
    top_k: int = typer.Option(5, "--top-k", min=1, max=1_000_000, help="How many stickers to return."),
    precision: Optional[Precision] = typer.Option(None, help="Bundle precision. [default: int8 on CPU, fp16 on CUDA]"),
    providers: Providers = typer.Option("auto", help="Where the graphs run."),
    threads: Optional[int] = typer.Option(None, min=1, help="onnxruntime intra-op threads, at most the CPUs this process may use. [default: onnxruntime's]"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Rank a pack's stickers as the reply to a conversation."""
    from .ranker import rank

    try:
        t0 = time.perf_counter()
        result = rank(turns, pack, top_k=top_k, model=model, precision=precision, providers=providers, threads=threads)
        elapsed = time.perf_counter() - t0
    except (IntraError, ValueError) as e:
        fail(e)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    if result.intention is not None:
        typer.echo(f"intention: {result.intention} ({result.intention_probability:.2f})   "
                   f"[{result.provider}, {result.precision}, mode {result.mode}, {elapsed * 1000:.0f} ms incl. loading]")
    typer.echo(f"{'#':>2}  {'sticker':<24} {'score':>6}  {'label':<15} file")
    for i, m in enumerate(result.matches, 1):
        typer.echo(f"{i:>2}  {m.sticker_id:<24} {m.score:6.3f}  {m.label or '-':<15} {m.file}")


@app.command("bench")
def bench_cmd(
    model: Path = typer.Option(..., "--model", help="Model bundle made by intra-export."),
    pack: Path = typer.Option(..., "--pack", help="Pack built with that bundle."),
    out: Path = typer.Option(..., "--out", help="Directory for results.json, results.md and the plots."),
    run: Optional[Path] = typer.Option(None, "--run", help="The run the bundle came from, for the PyTorch eager rows (needs the 'train' extra)."),
    quick: bool = typer.Option(False, "--quick", help="Seconds instead of minutes: fewer lengths, repeats and pack sizes."),
) -> None:
    """Measure latency, throughput, memory, start-up and quality of the SDK on this machine."""
    from benchmarks.report import markdown, write
    from benchmarks.suite import run_benchmark

    try:
        results = run_benchmark(model, pack, run, quick=quick, log=lambda m: typer.echo(f"  {m}", err=True))
        write(results, out)
    except (IntraError, ValueError) as e:
        fail(e)
    typer.echo(markdown(results))
    typer.echo(f"wrote {out}/results.json, results.md, latency.png, pack_scaling.png")


@app.command("demo")
def demo(
    workdir: Path = typer.Option(Path("artifacts/demo"), help="Where the demo writes its dataset, run, bundle, pack and report."),
    seed: int = typer.Option(0, help="Seed for the synthetic world and training."),
    preset: str = typer.Option("small", help="Training preset (tiny runs in seconds, for a smoke test)."),
    epochs: Optional[int] = typer.Option(None, min=1, max=10_000, help="Training epochs. [default: the preset's]"),
) -> None:
    """The main job on the built-in SYNTHETIC world: data, train, eval, export, pack, rank, latency."""
    import statistics

    try:
        require_extra("`intra demo` (it trains a model)", "train", "torch", "transformers", "onnx")
        from export.exporter import export_run
        from export.report import summary
        from training.config import preset as make_preset
        from training.data.synthetic import SyntheticConfig, generate
        from training.evaluate import evaluate, write_report
        from training.trainer import train

        from .dataset import load_dataset
        from .pack_build import build_pack
        from .ranker import Ranker

        t_all = time.perf_counter()

        def stage(n: int, title: str) -> float:
            typer.secho(f"\n[{n}] {title}", bold=True)
            return time.perf_counter()

        t = stage(1, "synthetic world (SYNTHETIC data, drawn by intra's generator)")
        data_dir = workdir / "data"
        counts = generate(data_dir, SyntheticConfig(seed=seed), progress=True)
        typer.echo(f"    {data_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"  ({time.perf_counter() - t:.1f}s)")

        t = stage(2, f"train Int-RA ({preset} preset; an unfinished or finished run in {workdir / 'run'} is reused)")
        from training.run_dir import RunError

        cfg = make_preset(preset, seed=seed, epochs=epochs)
        try:
            result = train(cfg, data_dir, workdir / "run")
        except RunError:  # a run with other settings is there: the demo starts it over
            result = train(cfg, data_dir, workdir / "run", resume=False)
        typer.echo(f"    best validation {result['select_on']} {result['best_val']:.4f}  ({time.perf_counter() - t:.1f}s)")

        t = stage(3, "evaluate on the test split against the baselines")
        report = evaluate(workdir / "run", data_dir, "test")
        write_report(report, workdir / "report")
        for name, m in report["models"].items():
            typer.echo(f"    {name:<22} P@1 {100 * m['P@1']:5.1f}  mAP {100 * m['mAP']:5.1f}  R@5 {100 * m['R@5']:5.1f}  MRR {100 * m['MRR']:5.1f}")
        typer.echo(f"    intention accuracy {100 * report['intention'].get('accuracy', 0):.1f}%  ({time.perf_counter() - t:.1f}s)")

        t = stage(4, "export to ONNX (fp32, int8, fp16) with the parity gate")
        manifest = export_run(workdir / "run", workdir / "model", data=data_dir, allow_degraded=True)
        typer.echo("    " + summary(manifest).replace("\n", "\n    "))
        typer.echo(f"    ({time.perf_counter() - t:.1f}s)")

        t = stage(5, "build the sticker pack on onnxruntime (int8)")
        pack = build_pack(data_dir, workdir / "model", workdir / "pack", precision="int8", providers="cpu")
        typer.echo(f"    {workdir / 'pack'}: {len(pack)} stickers  ({time.perf_counter() - t:.1f}s)")

        stage(6, "rank test conversations through the SDK (no torch on this path)")
        ds = load_dataset(data_dir, splits=["test"])
        convs = ds.split("test")
        ranker = Ranker(workdir / "model", workdir / "pack", precision="int8", providers="cpu")
        for conv in convs[:5]:
            res = ranker.rank([turn.text for turn in conv.context], top_k=3)
            typer.echo(f"    ...{conv.context[-1].text!r}  (gold {conv.sticker_id}, {conv.label})")
            typer.echo(f"       intention {res.intention} ({res.intention_probability:.2f}); top 3: "
                       + ", ".join(f"{m.sticker_id} [{m.label}] {m.score:.2f}" for m in res.matches)
                       + ("  <- gold in top 3" if conv.sticker_id in {m.sticker_id for m in res.matches} else ""))

        stage(7, "latency of rank() at batch 1 (this machine)")
        contexts = [[turn.text for turn in c.context] for c in convs[:60]]
        for precision in ("fp32", "int8"):
            r = Ranker(workdir / "model", workdir / "pack", precision=precision, providers="cpu")
            r.rank(contexts[0])
            times = []
            for c in contexts:
                t0 = time.perf_counter()
                r.rank(c)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            typer.echo(f"    {precision}: p50 {statistics.median(times):.2f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.2f} ms "
                       f"over {len(times)} contexts, {len(pack)} stickers, {r.bundle.provider}")
        typer.secho(f"\ndone in {time.perf_counter() - t_all:.0f}s; outputs in {workdir}", bold=True)
    except (IntraError, ValueError) as e:
        fail(e)


def main() -> None:
    """The `intra` console command, behind the last-resort error handler."""
    run_guarded(app, "intra")


if __name__ == "__main__":
    main()
