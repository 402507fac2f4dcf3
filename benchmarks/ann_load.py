"""How long a Ranker takes to start on a large pack: the ANN index built at load against loaded from the pack.

``python -m benchmarks.ann_load --model BUNDLE --count 100000 --out DIR`` writes a pack of `count`
stickers with unit vectors drawn at random (labels and usage counts too, so the score's
sticker-side columns are indexed as in a real pack), once without a stored index and once with
one, then times `sdk.Ranker(..., ann=True)` on each, alternating, `rank()` p50 on both, and `load_pack`
alone (the part of the start-up that is the same for both). Writes
``ann_load.json`` and ``ann_load.md``, with the CPU named.
"""

from __future__ import annotations

import random
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import typer
from PIL import Image

from sdk.bundle import Bundle, sha256_file
from sdk.labels import LABELS
from sdk.pack import PackSticker, load_pack, write_pack
from sdk.pack_build import index_vectors
from sdk.ranker import Ranker

from .measure import machine, timed
from .output import write_result

CONTEXT = ["see you tomorrow at the station!", "ok, don't be late"]


def write_packs(bundle: Bundle, count: int, root: Path, seed: int = 0) -> tuple[Path, Path]:
    """The same random pack twice: without and with its ANN index."""
    rng = random.Random(seed)
    (root / "src").mkdir()
    image = root / "src" / "sticker.png"
    Image.new("RGB", (8, 8), "white").save(image)
    digest = sha256_file(image)
    stickers = [PackSticker(f"s{i:06d}", f"images/{i:06d}.png", digest, rng.choice(LABELS), {}) for i in range(count)]
    vectors = np.random.default_rng(seed).standard_normal((count, bundle.manifest.dim)).astype(np.float32)
    usage = {s.id: float(rng.randint(0, 50)) for s in stickers}
    details = {"usage": usage, "model_path": str(bundle.root.resolve())}
    plain, indexed = root / "plain", root / "indexed"
    write_pack(plain, stickers, vectors, [image] * count, bundle.fingerprint, details)
    write_pack(indexed, stickers, vectors, [image] * count, bundle.fingerprint, details,
               index_vectors=index_vectors(bundle, stickers, usage, True))
    return plain, indexed


def ann_load(model: Path, count: int, rounds: int = 2) -> dict[str, Any]:
    """Ranker start-up (best of `rounds`) and rank() p50 on a pack without and with a stored index."""
    bundle = Bundle(model, providers="cpu")
    with tempfile.TemporaryDirectory(prefix="intra-ann-load-") as tmp:
        t0 = time.perf_counter()
        plain, indexed = write_packs(bundle, count, Path(tmp))
        written = time.perf_counter() - t0
        start: dict[str, list[float]] = {"built at load": [], "loaded from the pack": []}
        rank_ms: dict[str, float] = {}
        pack_only = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            load_pack(indexed, verify=False)
            pack_only.append(time.perf_counter() - t0)
            for name, pack in (("built at load", plain), ("loaded from the pack", indexed)):
                t0 = time.perf_counter()
                ranker = Ranker(bundle, pack, ann=True, verify=False)
                start[name].append(time.perf_counter() - t0)
                rank_ms[name] = timed(partial(ranker.rank, CONTEXT), 50)["p50_ms"]
    best = {name: min(v) for name, v in start.items()}
    return {"machine": machine(), "count": count, "precision": bundle.precision, "writing_both_packs_s": written,
            "start_s": best, "start_all_s": start, "rank_p50_ms": rank_ms, "load_pack_s": min(pack_only),
            "speedup": best["built at load"] / best["loaded from the pack"]}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Ranker start-up on a {r['count']:,}-sticker pack: the ANN index built at load or loaded", "",
             f"CPU: {r['machine']['cpu']}; precision {r['precision']}; best of {len(r['start_all_s']['built at load'])} "
             "alternating starts, `verify=False` (hashing every sticker file is the same in both).", "",
             "| index | Ranker start-up (s) | rank() p50 (ms) |", "| --- | --- | --- |"]
    lines += [f"| {name} | {s:.2f} | {r['rank_p50_ms'][name]:.2f} |" for name, s in r["start_s"].items()]
    lines += ["", f"Loading the stored index starts the Ranker {r['speedup']:.1f}x faster. Of the start-up, "
              f"{r['load_pack_s']:.2f} s is `load_pack` itself (pack.json's {r['count']:,} records parsed and checked, "
              "each file's path resolved), the same with or without an index.", ""]
    return "\n".join(lines)


def main(model: Path = typer.Option(..., "--model", help="An exported bundle (only its fingerprint, dim and weights are used)."),
         count: int = typer.Option(100_000, "--count", min=10, help="Stickers in the pack."),
         out: Path = typer.Option(..., "--out", help="Directory for ann_load.json and ann_load.md.")) -> None:
    """Time a Ranker's start on a large pack with the ANN index built at load against loaded from the pack."""
    result = ann_load(model, count)
    write_result(out, "ann_load", result, markdown(result))


if __name__ == "__main__":
    typer.run(main)
