"""How pack building scales: the one-machine build against Ray with 1 and 2 workers, one run.

``python -m benchmarks.pack_engines --model BUNDLE --source DIR --out DIR`` builds the same pack
from `source` (a dataset directory, a folder of images or a JSON list) with ``engine="local"``,
then on a local Ray with 1 and 2 actors (Ray started once for each worker count, its start-up
timed apart from the job), and writes ``pack_engines.json`` and ``pack_engines.md`` with stickers
per second, the CPU named, and the largest difference of any vector from the one-machine build.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk.bundle import Bundle
from sdk.pack_build import build_pack

from .measure import machine
from .output import write_result


def _build(bundle: Bundle, source: Path, out: Path, **options: Any) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    pack = build_pack(source, bundle, out, progress=False, dtype="float32", **options)
    return time.perf_counter() - t0, pack.embeddings


def pack_engines(model: Path, source: Path, worker_counts: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Seconds and stickers per second of each engine on the same source and bundle."""
    import ray  # pyright: ignore[reportMissingImports]  (the 'ray' extra)

    bundle = Bundle(model, providers="cpu")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="intra-pack-engines-") as tmp:
        seconds, reference = _build(bundle, source, Path(tmp) / "local")
        rows.append({"engine": "local (one process, every core)", "workers": None, "seconds": seconds, "max_difference": 0.0})
        for workers in worker_counts:
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            started = time.perf_counter() - t0
            try:
                seconds, vectors = _build(bundle, source, Path(tmp) / f"ray{workers}", engine="ray", workers=workers)
            finally:
                ray.shutdown()
            rows.append({"engine": "ray", "workers": workers, "seconds": seconds, "ray_start_s": started,
                         "max_difference": float(np.abs(vectors - reference).max())})
    count = len(reference)
    for r in rows:
        r["stickers_per_s"] = count / r["seconds"]
    return {"machine": machine(), "stickers": count, "precision": bundle.precision, "source": str(source), "rows": rows}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Building a {r['stickers']}-sticker pack: one process against Ray", "",
             f"CPU: {r['machine']['cpu']} ({r['machine']['cores']} cores); precision {r['precision']}; one run, "
             "Ray's own start-up timed apart.", "",
             "| engine | workers | seconds | stickers/s | largest vector difference from the one-process build |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {x['engine']} | {x['workers'] or '—'} | {x['seconds']:.1f} | {x['stickers_per_s']:.1f} | {x['max_difference']:.1e} |"
              for x in r["rows"]]
    starts = ", ".join(f"{x['ray_start_s']:.1f} s with {x['workers']}" for x in r["rows"] if "ray_start_s" in x)
    lines += ["", f"Starting the local Ray took {starts}.", ""]
    return "\n".join(lines)


def main(model: Path = typer.Option(..., "--model", help="An exported bundle."),
         source: Path = typer.Option(..., "--source", help="What to build the pack from (a dataset, a folder, a JSON list)."),
         out: Path = typer.Option(..., "--out", help="Directory for pack_engines.json and pack_engines.md.")) -> None:
    """Time the one-process pack build against Ray with 1 and 2 workers on the same source."""
    result = pack_engines(model, source)
    write_result(out, "pack_engines", result, markdown(result))


if __name__ == "__main__":
    typer.run(main)
