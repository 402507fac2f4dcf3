"""The latency benchmark: the SDK as apps use it, against PyTorch eager, on this machine.

Every comparison is a ratio of numbers taken in the same run (timings here are noisy). The
headline row is batch 1, 64-token contexts, 1 thread.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.bundle import Bundle, read_manifest
from sdk.manifest import BundleManifest
from sdk.pack import load_pack
from sdk.providers import CUDA
from sdk.ranker import Ranker, best_rows
from sdk.scoring import l2_normalise
from sdk.textprep import ContextTokenizer

from .measure import encoder_flops, gemm_peak_gflops, machine, timed

SENTENCE = "honestly I can't believe how well that went today, thank you so much for helping me out"


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = False
    #: the text encoder's positions: longer contexts cannot be measured (onnxruntime refuses them)
    max_tokens: int | None = None

    @property
    def wanted_lengths(self) -> tuple[int, ...]:
        return (16, 64) if self.quick else (16, 64, 256)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Context lengths in tokens, those beyond the encoder's positions left out."""
        return tuple(n for n in self.wanted_lengths if self.max_tokens is None or n <= self.max_tokens)

    def length_note(self) -> str | None:
        dropped = [n for n in self.wanted_lengths if n not in self.lengths]
        if not dropped:
            return None
        return f"lengths {', '.join(map(str, dropped))} left out: the text encoder has {self.max_tokens} positions"

    @property
    def batches(self) -> tuple[int, ...]:
        return (8,) if self.quick else (8, 32)

    @property
    def threads(self) -> tuple[int, ...]:
        return (1,) if self.quick else (1, 2)

    @property
    def repeat(self) -> int:
        return 5 if self.quick else 50

    @property
    def pack_sizes(self) -> tuple[int, ...]:
        return (100, 1000) if self.quick else (100, 1_000, 10_000, 100_000, 1_000_000)

    @property
    def ann_max(self) -> int:
        return 1000 if self.quick else 100_000


def context_of(tokenizer: ContextTokenizer, tokens: int) -> list[str]:
    """A context that fills at least `tokens` tokens (the tokenizer then cuts it to exactly that)."""
    turns = [SENTENCE]
    while tokenizer.encode_contexts([turns])[0].shape[1] < tokens and len(turns) < 200:
        turns.append(SENTENCE)
    return turns


def with_length(bundle: Bundle, tokens: int) -> None:
    """Point a bundle's tokenizer at `tokens` tokens (benchmarks only: beyond the trained length)."""
    bundle.tokenizer = ContextTokenizer.from_file(bundle.root / "tokenizer.json",
                                                  dataclasses.replace(bundle.text_settings, max_length=tokens))


def sdk_latency(model: Path, pack, precision: str, providers: str, threads: int, cfg: BenchConfig) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    bundle = Bundle(model, precision=precision, providers=providers, threads=threads)
    ranker = Ranker(bundle, pack)
    for length in cfg.lengths:
        with_length(bundle, length)
        ctx = context_of(bundle.tokenizer, length)
        row = {"b1": timed(lambda: ranker.rank(ctx), cfg.repeat)}
        for b in cfg.batches:
            t = timed(lambda: ranker.rank_many([ctx] * b, batch_size=b), max(3, cfg.repeat // 5))
            row[f"b{b}"] = {**t, "contexts_per_s": b / (t["mean_ms"] / 1000.0)}
        rows[str(length)] = row
    rows["provider"] = bundle.provider
    return rows


def batch_invariance(model: Path, pack, n: int = 64) -> dict[str, Any]:
    """Whether int8 `rank_many` (batches of 16, padded) equals `rank` row by row on `n` contexts of
    varied length: the same top 5, scores within 1e-5."""
    ranker = Ranker(Bundle(model, precision="int8", providers="cpu"), pack)
    words = (SENTENCE + " and then we went home").split()
    contexts = [[" ".join(words[: 3 + (7 * i) % len(words)])] * (1 + i % 4) for i in range(n)]
    together = ranker.rank_many(contexts, top_k=5, batch_size=16)
    alone = [ranker.rank(c, top_k=5) for c in contexts]
    same_ids = all([m.sticker_id for m in a.matches] == [m.sticker_id for m in b.matches] for a, b in zip(alone, together))
    diff = max(abs(x.score - y.score) for a, b in zip(alone, together) for x, y in zip(a.matches, b.matches))
    return {"invariant": bool(same_ids and diff <= 1e-5), "same_top5": same_ids, "max_score_diff": diff, "contexts": n,
            "row_by_row": ranker.bundle.row_by_row}


def breakdown(model: Path, pack, precision: str, threads: int, cfg: BenchConfig, pack_size: int = 10_000) -> dict[str, float]:
    """Where the time of one rank() goes (batch 1, 64 tokens), scoring over a `pack_size` pack."""
    bundle = Bundle(model, precision=precision, providers="cpu", threads=threads)
    with_length(bundle, 64)
    ctx = context_of(bundle.tokenizer, 64)
    ids, mask = bundle.tokenizer.encode_contexts([ctx])
    pooled = bundle.pooled(ids, mask)
    _, query = bundle.head(pooled)
    vectors = l2_normalise(np.random.default_rng(0).standard_normal((pack_size, query.shape[1]), dtype=np.float32))
    parts = {
        "tokenization_ms": timed(lambda: bundle.tokenizer.encode_contexts([ctx]), cfg.repeat)["p50_ms"],
        "text_encoder_ms": timed(lambda: bundle.pooled(ids, mask), cfg.repeat)["p50_ms"],
        "head_ms": timed(lambda: bundle.head(pooled), cfg.repeat)["p50_ms"],
        f"scoring_topk_{pack_size}_ms": timed(lambda: best_rows(query @ vectors.T, 5), cfg.repeat)["p50_ms"],
    }
    total = sum(parts.values())
    parts["total_ms"] = total
    parts["overhead_fraction"] = (total - parts["text_encoder_ms"]) / total
    return parts


def torch_latency(run: Path, pack, threads: int, cfg: BenchConfig) -> dict[str, Any]:
    """The same trained model in PyTorch eager fp32: tokenize, encode, head, score, top-k."""
    import torch

    from training.model_inputs import refresh_label_table
    from training.run_dir import load_run

    torch.set_num_threads(threads)
    model, tokenizer, _, conf = load_run(run)
    refresh_label_table(model, tokenizer)
    vectors = torch.from_numpy(pack.embeddings)
    rows = {}
    for length in cfg.lengths:
        tok = ContextTokenizer.from_file(run / "tokenizer.json", dataclasses.replace(tokenizer.settings, max_length=length))
        ctx = context_of(tok, length)

        @torch.inference_mode()
        def once() -> None:
            ids, mask = tok.encode_contexts([ctx])
            _, q = model.query(model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)))
            torch.topk(q @ vectors.T, 5)

        rows[str(length)] = {"b1": timed(once, cfg.repeat)}
    return rows


def pack_scaling(dim: int, cfg: BenchConfig) -> list[dict[str, Any]]:
    """Exact top-10 vs FAISS HNSW over synthetic unit vectors, with recall@10 of the ANN."""
    rng = np.random.default_rng(0)
    queries = l2_normalise(rng.standard_normal((50, dim), dtype=np.float32))
    rows = []
    for n in cfg.pack_sizes:
        vectors = l2_normalise(rng.standard_normal((n, dim), dtype=np.float32))
        row: dict[str, Any] = {"stickers": n, "exact_ms": timed(lambda: best_rows(queries[:1] @ vectors.T, 10), min(cfg.repeat, 20))["p50_ms"]}
        if n <= cfg.ann_max:
            try:
                from sdk.ann import AnnIndex

                t0 = time.perf_counter()
                index = AnnIndex(vectors)
                row["ann_build_s"] = time.perf_counter() - t0
                row["ann_ms"] = timed(lambda: index.search(queries[:1], 10), min(cfg.repeat, 20))["p50_ms"]
                exact_idx, _ = best_rows(queries @ vectors.T, 10)
                ann_idx, _ = index.search(queries, 10)
                row["ann_recall@10"] = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann_idx, exact_idx)]))
            except ImportError as e:
                row["ann_note"] = str(e)
        rows.append(row)
    return rows


def _subprocess_json(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_start(model: Path, pack: Path) -> dict[str, float]:
    code = f"""
import json, time
t0 = time.perf_counter()
import sdk
t1 = time.perf_counter()
r = sdk.Ranker({str(model)!r}, {str(pack)!r}, precision="int8", providers="cpu")  # creates its two sessions
t2 = time.perf_counter()
r.rank("hello there")
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "first_rank_s": t3 - t2, "cold_start_s": t3 - t0}}))
"""
    return _subprocess_json(code)


def ranking_rss(model: Path, pack: Path, precision: str) -> float:
    """Peak RSS (VmHWM) of a fresh process that only ranks. ru_maxrss would be wrong here: Linux
    carries the parent's peak into a forked child, and this benchmark's parent holds large arrays."""
    code = f"""
import json, sdk
r = sdk.Ranker({str(model)!r}, {str(pack)!r}, precision={precision!r}, providers="cpu")
for i in range(100):
    r.rank(["how are you", "I am so happy today, thanks " * (i % 5 + 1)])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
print(json.dumps({{"rss_mb": int(hwm) / 1024}}))
"""
    return float(_subprocess_json(code)["rss_mb"])


def pack_build_throughput(model: Path, pack, limit: int) -> dict[str, float]:
    from sdk.pack_build import build_pack

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "src"
        folder.mkdir()
        for i in range(min(limit, len(pack))):
            src = pack.path_of(i)
            (folder / f"{i:06d}{src.suffix}").write_bytes(src.read_bytes())
        n = len(list(folder.iterdir()))
        t0 = time.perf_counter()
        build_pack(folder, model, Path(tmp) / "pack", precision="int8", providers="cpu", progress=False)
        seconds = time.perf_counter() - t0
    return {"stickers": n, "seconds": seconds, "images_per_s": n / seconds}


def gemm_fraction(model: Path, manifest: BundleManifest, threads: int, cfg: BenchConfig) -> dict[str, float]:
    """Achieved GFLOP/s of the fp32 text encoder (batch 32 x 64 tokens) against numpy's GEMM peak."""
    bundle = Bundle(model, precision="fp32", providers="cpu", threads=threads)
    batch, length = (8, 64) if cfg.quick else (32, 64)
    ids = np.full((batch, length), 1000 % max(2, bundle.tokenizer.vocab_size), dtype=np.int64)
    mask = np.ones_like(ids)
    t = timed(lambda: bundle.pooled(ids, mask), max(3, cfg.repeat // 5))
    flops = encoder_flops(manifest.about["text_encoder_config"], length) * batch
    achieved = flops / (t["p50_ms"] / 1000) / 1e9
    peak = gemm_peak_gflops(threads, size=512 if cfg.quick else 1024)
    return {"threads": threads, "gflop_per_context": encoder_flops(manifest.about["text_encoder_config"], length) / 1e9,
            "achieved_gflops": achieved, "gemm_peak_gflops": peak, "fraction": achieved / peak}


def default_cpu_precision(model: Path) -> dict[str, Any]:
    """What the SDK loads on this CPU when no precision is asked for, and the timings behind it."""
    from sdk.cache import cache_root
    from sdk.precision_choice import cache_path

    bundle = Bundle(model, providers="cpu")
    path = cache_path(cache_root(), bundle.fingerprint, None)
    why = json.loads(path.read_text()) if path.is_file() else {"reason": "only one CPU precision to choose from"}
    return {"precision": bundle.precision, "why": why}


def batch1_ratios(latency: dict[str, Any], default_precision: str) -> dict[str, float | None]:
    """Batch-1 p50 ratios at 64 tokens, measured in this run: the default precision against fp32
    (present only when both were timed), PyTorch eager against int8 and fp32."""
    def b1(key: str) -> float | None:
        row = latency.get(key, {}).get("64", {}).get("b1")
        return row["p50_ms"] if row else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    fp32_b1, int8_b1, torch_b1 = b1("fp32/cpu/t1"), b1("int8/cpu/t1"), b1("torch-fp32/t1")
    out = {"speedup_int8_vs_torch_b1": ratio(torch_b1, int8_b1), "speedup_fp32_vs_torch_b1": ratio(torch_b1, fp32_b1)}
    default = ratio(b1(f"{default_precision}/cpu/t1"), fp32_b1)
    return ({"default_vs_fp32_b1": default} if default else {}) | out


def run_benchmark(model: Path | str, pack_dir: Path | str, run: Path | str | None = None, quick: bool = False,
                  log=print) -> dict[str, Any]:
    """Measure everything; returns the results (see report.py for the files)."""
    model, pack_dir = Path(model), Path(pack_dir)
    manifest = read_manifest(model)
    cfg = BenchConfig(quick, manifest.about.get("text_encoder_config", {}).get("max_position_embeddings"))
    pack = load_pack(pack_dir)
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "model": str(model), "pack": str(pack_dir),
                               "pack_size": len(pack), "variant": manifest.about.get("variant"), "fingerprint": manifest.fingerprint}
    results["bundle_bytes"] = {p: sum(by_p[p].bytes for by_p in manifest.graphs.values() if p in by_p) for p in manifest.precisions}
    results["graph_bytes"] = {g: {p: e.bytes for p, e in by_p.items()} for g, by_p in manifest.graphs.items()}
    results["lengths"] = list(cfg.lengths)
    if cfg.length_note():
        results["length_note"] = cfg.length_note()
        log(cfg.length_note())

    latency: dict[str, Any] = {}
    precisions = [p for p in ("fp32", "int8") if p in manifest.precisions]
    for precision in precisions:
        for threads in cfg.threads:
            log(f"latency: {precision}, {threads} thread(s)")
            latency[f"{precision}/cpu/t{threads}"] = sdk_latency(model, pack, precision, "cpu", threads, cfg)
    import onnxruntime as ort

    if CUDA in ort.get_available_providers() and "fp16" in manifest.precisions:
        log("latency: fp16 on CUDA")
        latency["fp16/cuda"] = sdk_latency(model, pack, "fp16", "cuda", 1, cfg)
    if run is not None:
        if importlib.util.find_spec("torch") is None:
            results["torch_note"] = "PyTorch is not installed (the 'train' extra): no eager rows"
        else:
            for threads in cfg.threads:
                log(f"latency: PyTorch eager fp32, {threads} thread(s)")
                latency[f"torch-fp32/t{threads}"] = torch_latency(Path(run), pack, threads, cfg)
    results["latency"] = latency

    default = default_cpu_precision(model)
    results.update(batch1_ratios(latency, default["precision"]))

    log("breakdown")
    main_precision = "int8" if "int8" in precisions else "fp32"
    results["breakdown"] = breakdown(model, pack, main_precision, 1, cfg, pack_size=1000 if quick else 10_000)
    results["overhead_fraction_10k"] = results["breakdown"]["overhead_fraction"]
    if "int8" in precisions:
        results["batch_invariant_int8"] = batch_invariance(model, pack)

    log("pack scaling")
    results["pack_scaling"] = pack_scaling(pack.embeddings.shape[1], cfg)
    row_100k = next((r for r in results["pack_scaling"] if r["stickers"] == 100_000), None)
    results["topk_100k_ms"] = row_100k["exact_ms"] if row_100k else None
    results["ann_recall10_100k"] = row_100k.get("ann_recall@10") if row_100k else None

    log("cold start, memory, pack building")
    results["default_precision_cpu"] = default
    results["cold_start"] = cold_start(model, pack_dir)
    results["cold_start_s"] = results["cold_start"]["cold_start_s"]
    results["rss_mb_int8"] = ranking_rss(model, pack_dir, main_precision)
    results["pack_build"] = pack_build_throughput(model, pack, 64 if quick else 512)

    parity = manifest.parity
    results["top5_agreement_int8"] = parity.get("int8", {}).get("top5_agreement")
    results["int8_scheme"] = parity.get("int8", {}).get("scheme")
    results["map_delta_int8"] = parity.get("int8", {}).get("map_delta")
    results["top5_agreement_fp16"] = parity.get("fp16", {}).get("top5_agreement")
    results["map_delta_fp16"] = parity.get("fp16", {}).get("map_delta")

    log("GEMM peak and the text encoder's share of it")
    results["gemm"] = [gemm_fraction(model, manifest, t, cfg) for t in cfg.threads]
    results["gemm_peak_fraction"] = results["gemm"][0]["fraction"]
    if run is not None and "int8" in precisions and importlib.util.find_spec("torch") is not None:
        results.update(run_comparisons(model, Path(run), pack, cfg, log))
    return results


def validation_contexts(run: Path, n: int = 256) -> list[list[str]]:
    """Up to `n` contexts of the run's validation split (test when it has none)."""
    from sdk.dataset import load_dataset
    from training.run_dir import read_config

    ds = load_dataset(read_config(run)["dataset"]["path"])
    split = "validation" if "validation" in ds.splits else "test"
    return [[t.text for t in c.context] for c in ds.split(split)[:n]]


def run_comparisons(model: Path, run: Path, pack, cfg: BenchConfig, log=print) -> dict[str, Any]:
    """The rows that need the training run: the dynamic-int8 floor and the sentence-transformers peer."""
    from .floor import int8_vs_dynamic_floor

    out: dict[str, Any] = {}
    ctx = context_of(Bundle(model, precision="int8", providers="cpu").tokenizer, 64)
    log("int8 against full dynamic int8 (the floor)")
    out["int8_floor"] = int8_vs_dynamic_floor(model, run, pack, ctx, cfg.repeat)
    out["int8_vs_dynamic_floor"] = out["int8_floor"]["ratio"]
    if importlib.util.find_spec("sentence_transformers") is None:
        out["peer_note"] = "sentence-transformers is not installed (the 'train' extra): no peer rows"
        return out
    from .peer import compare

    log("peer: sentence-transformers ONNX backend with its dynamic int8 (avx2)")
    out["peer"] = compare(model, run, pack, validation_contexts(run), ctx, cfg.repeat)
    out["speedup_vs_peer_b1"] = out["peer"]["speedup_vs_peer_b1"]
    out["top5_agreement_peer"] = out["peer"]["top5_agreement_peer"]
    out["top5_margin_vs_peer"] = out["peer"]["top5_agreement_ours"] - out["peer"]["top5_agreement_peer"]
    return out
