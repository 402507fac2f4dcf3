"""Catalog embedding on Ray: `build_pack(..., engine="ray")` / `intra pack build --engine ray`.

The same graphs as the one-machine build (:func:`sdk.pack_build.embed_batch`) run as a Ray Data
``map_batches`` job: each actor opens the bundle's ONNX sessions once and embeds batches of
stickers; the driver gathers the vectors and records, orders them as the source lists them, and
writes the pack itself (the same format, the same atomic writer). The `ray` extra is imported
only here, never by the plain runtime.

On a cluster (`ray_address`, e.g. ``ray://head:10001`` or ``auto``) every node reads the bundle
and the sticker files at the paths the driver names, so both must sit on storage the nodes share.
Without an address, a local Ray is started for the job with `workers` CPUs and shut down after it;
a Ray the caller started already is used as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .bundle import Bundle
from .errors import MissingExtraError
from .pack import PackSticker
from .pack_build import OcrReader, SourceSticker, embed_batch


class StickerEmbedder:
    """One Ray actor: the bundle's sessions, opened once, embedding batches of sticker indices."""

    def __init__(self, model: str, precision: str, stickers: Sequence[SourceSticker], names: Sequence[str | None],
                 frames: int, ocr: bool, threads: int) -> None:
        self.bundle = Bundle(model, precision=precision, providers="cpu", threads=threads)
        self.stickers, self.names, self.frames = stickers, names, frames
        self.reader = OcrReader() if ocr else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [int(i) for i in batch["index"]]
        records, vectors = embed_batch(self.bundle, [self.stickers[i] for i in rows], [self.names[i] for i in rows],
                                       self.frames, self.reader)
        # records travel as their pack.json form, the one the driver's writer reads back
        text = [json.dumps(r.record(), ensure_ascii=False) for r in records]
        return {"index": np.array(rows, np.int64), "vector": vectors.astype(np.float32), "record": np.array(text, dtype=object)}


def _ray() -> Any:
    try:
        import ray  # pyright: ignore[reportMissingImports]  (the 'ray' extra)
    except ImportError:
        raise MissingExtraError("building a pack on Ray (--engine ray)", "ray", "ray") from None
    return ray


def embed_on_ray(bundle: Bundle, stickers: Sequence[SourceSticker], names: Sequence[str | None], batch_size: int,
                 frames: int, ocr: bool = False, address: str | None = None, workers: int | None = None,
                 progress: bool = True) -> tuple[list[PackSticker], np.ndarray]:
    """Every sticker's record and vector, embedded by `workers` Ray actors, in the source's order."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        job = ray.data.from_items([{"index": i} for i in range(len(stickers))]).map_batches(
            StickerEmbedder, batch_size=batch_size, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs={"model": str(bundle.root), "precision": bundle.precision, "stickers": list(stickers),
                                   "names": list(names), "frames": frames, "ocr": ocr, "threads": 1})
        rows = sorted(job.take_all(), key=lambda r: int(r["index"]))
    finally:
        if started:
            ray.shutdown()
    where = f"Ray job over {len(stickers)} stickers"
    records = [PackSticker.from_record(json.loads(r["record"]), f"{where}: [{int(r['index'])}]") for r in rows]
    return records, np.stack([np.asarray(r["vector"], np.float32) for r in rows])
