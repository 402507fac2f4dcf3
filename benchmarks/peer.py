"""A peer, side by side: the same trained text encoder served the way a user would without intra.

sentence-transformers' ONNX backend (optimum's export of the encoder with mean pooling), its own
dynamic int8 export for AVX2 (``export_dynamic_quantized_onnx_model(model, "avx2", ...)``), then a
numpy cosine top-k over the pack. sentence-transformers can only serve the encoder and its pooling:
the intention head that turns the pooled context into a query is not one of its modules, so the
peer runs the bundle's fp32 head graph on its pooled output (the same, tiny cost on both sides).
Both are timed in one process on one thread: batch 1 and batch 32 at 64 tokens.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from sdk.bundle import Bundle
from sdk.errors import IntraError
from sdk.pack import Pack
from sdk.providers import session_options
from sdk.ranker import Ranker

from .measure import timed


def sentence_transformer_dir(run: Path, out: Path) -> Path:
    """The run's fine-tuned text encoder as a sentence-transformers model (Transformer + mean Pooling)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import PreTrainedTokenizerFast

    from training.run_dir import load_run

    model, _, _, conf = load_run(run)
    hf = out / "hf"
    cast(Any, model.text).save_pretrained(str(hf))  # a Hugging Face model; IntRA types it as nn.Module
    # name only the special tokens the tokenizer itself declares: naming another would make the
    # peer's tokenizer split text differently from ours (a "[SEP]" typed in a turn, for one); the
    # pad token is named whenever the vocabulary has it, as batches need it (nobody types "[PAD]")
    doc = json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))
    declared = {t["content"] for t in doc.get("added_tokens", [])}
    special = {k: v for k, v in (("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("cls_token", "[CLS]"), ("mask_token", "[MASK]"))
               if v in declared}
    special["pad_token"] = "[PAD]"
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(run / "tokenizer.json"), **special)
    tokenizer.save_pretrained(str(hf))
    max_length = int(conf["text_settings"]["max_length"])
    encoder = Transformer(str(hf), max_seq_length=max_length, processor_kwargs={"truncation_side": "left"})
    pooling = Pooling(encoder.get_word_embedding_dimension(), pooling_mode="mean")
    st_dir = out / "sentence-transformer"
    SentenceTransformer(modules=[encoder, pooling], device="cpu").save(str(st_dir))
    return st_dir


def load_peer(st_dir: Path, threads: int) -> tuple[Any, str]:
    """The ONNX model exported by sentence-transformers, quantized by its own AVX2 recipe, and its file."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    fp32 = SentenceTransformer(str(st_dir), backend="onnx", device="cpu")  # exports the encoder to ONNX
    export_dynamic_quantized_onnx_model(fp32, "avx2", str(st_dir))
    written = sorted((st_dir / "onnx").glob("model_*avx2.onnx"))  # model_quint8_avx2.onnx in sentence-transformers 5.7
    if not written:
        raise IntraError(f"{st_dir / 'onnx'}: sentence-transformers wrote no avx2 model")
    model = SentenceTransformer(str(st_dir), backend="onnx", device="cpu",
                                model_kwargs={"file_name": f"onnx/{written[0].name}", "provider": "CPUExecutionProvider",
                                              "session_options": session_options(threads)})
    return model, written[0].name


class PeerRanker:
    """Context strings -> sentence-transformers pooled output -> the head and the final score of a
    fp32 Ranker (cosine plus its prior and label terms) -> top-k."""

    def __init__(self, st_model: Any, ranker: Ranker) -> None:
        self.st, self.ranker = st_model, ranker

    def top(self, contexts: list[list[str]], k: int = 5, batch: int = 32) -> np.ndarray:
        texts = [self.ranker.bundle.tokenizer.context_string(c) for c in contexts]
        pooled = self.st.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=False)
        logits, queries = self.ranker.bundle.head(np.asarray(pooled, np.float32), self.ranker.mode)
        return self.ranker.search(queries, k, logits)[0]


def _top5(ranker: Ranker, contexts: list[list[str]]) -> list[list[str]]:
    return [[m.sticker_id for m in r.matches] for r in ranker.rank_many(contexts, top_k=5, batch_size=32)]


def agreement(a: list[list[str]], b: list[list[str]]) -> float:
    return float(np.mean([len(set(x) & set(y)) / 5 for x, y in zip(a, b)]))


def compare(model: Path, run: Path, pack: Pack, contexts: list[list[str]], timing_context: list[str], repeat: int,
            threads: int = 1) -> dict[str, Any]:
    """Latency at batch 1 and 32 and top-5 agreement with our fp32 ranking: ours (default
    precision) against the sentence-transformers peer, in this process."""
    ours = Ranker(Bundle(model, providers="cpu", threads=threads), pack)
    reference = _top5(Ranker(Bundle(model, precision="fp32", providers="cpu", threads=threads), pack), contexts)
    with tempfile.TemporaryDirectory(prefix="intra-peer-") as tmp:
        st, peer_file = load_peer(sentence_transformer_dir(run, Path(tmp)), threads)
        peer = PeerRanker(st, Ranker(Bundle(model, precision="fp32", providers="cpu", threads=threads), pack))
        ids = pack.ids
        peer_top5 = [[ids[j] for j in row] for row in peer.top(contexts)]
        batch32 = [timing_context] * 32
        rows: dict[str, Any] = {
            "ours_b1_ms": timed(lambda: ours.rank(timing_context, top_k=5), repeat)["p50_ms"],
            "peer_b1_ms": timed(lambda: peer.top([timing_context], batch=1), repeat)["p50_ms"],
            "ours_b32_ms": timed(lambda: ours.rank_many(batch32, top_k=5, batch_size=32), max(3, repeat // 5))["p50_ms"],
            "peer_b32_ms": timed(lambda: peer.top(batch32, batch=32), max(3, repeat // 5))["p50_ms"],
        }
    rows.update({
        "ours_precision": ours.bundle.precision,
        "peer": f"sentence-transformers ONNX backend, export_dynamic_quantized_onnx_model(config='avx2') -> {peer_file}, "
                "mean pooling; the bundle's fp32 head and final score; numpy top-k",
        "top5_agreement_ours": agreement(_top5(ours, contexts), reference),
        "top5_agreement_peer": agreement(peer_top5, reference),
        "contexts": len(contexts), "threads": threads,
    })
    rows["speedup_vs_peer_b1"] = rows["peer_b1_ms"] / rows["ours_b1_ms"]
    rows["speedup_vs_peer_b32"] = rows["peer_b32_ms"] / rows["ours_b32_ms"]
    return rows
