"""Which precision a bundle loads on the CPU when none is asked for: the faster one, on this CPU.

int8 is not faster everywhere. On an AMD EPYC of the Zen 3 generation (AVX2, no VNNI) the shipped
weight-only int8 text encoder ran at 27.6 ms against fp32's 22.0, while on others it is faster.
So the first time a bundle is loaded on a CPU without a precision, the text encoder of each
candidate (fp32, and int8 when it passed its parity gate) is timed on one context of 64 tokens,
the calls alternating between them, and the faster is kept; never a precision slower than fp32 here. The verdict is cached in the
user's cache directory (:mod:`sdk.cache`), never in the bundle, which an app ships read-only:
``precision/<fingerprint>-<key>.json``, keyed by the bundle's fingerprint, the CPU, the onnxruntime
version and the thread count, so later loads on this machine pay nothing and a re-export (a new
fingerprint) is measured afresh. ``precision=`` or the environment variable ``INTRA_PRECISION``
skip the measurement.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from . import atomic
from .cpu import cpu_info, cpu_key
from .providers import session_options

log = logging.getLogger("intra")

ENV = "INTRA_PRECISION"
REPEAT = 7
#: verdicts that runtimes before the user cache wrote into bundles; a re-export may replace them
LEGACY_CACHE_GLOB = ".precision-*.json"


def cache_path(cache: Path, fingerprint: str, threads: int | None) -> Path:
    """Where the verdict for this bundle, CPU, onnxruntime version and thread count is cached."""
    return cache / "precision" / f"{fingerprint[:16]}-{cpu_key(f'{ort.__version__}|{threads}')}.json"


def time_text_encoders(graphs: dict[str, Path], ids: np.ndarray, mask: np.ndarray, threads: int | None,
                       repeat: int = REPEAT) -> dict[str, float]:
    """Median milliseconds of one call of each text encoder on (ids, mask), after two warm-up calls.

    The calls alternate (one of each per round), so a burst of other work on the machine slows
    every candidate alike instead of deciding the verdict."""
    sessions = {p: ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
                for p, path in graphs.items()}
    feed = {"input_ids": ids, "attention_mask": mask}
    times: dict[str, list[float]] = {p: [] for p in sessions}
    for i in range(repeat + 2):
        for p, session in sessions.items():
            t0 = time.perf_counter()
            session.run(["pooled"], feed)
            if i >= 2:
                times[p].append((time.perf_counter() - t0) * 1000)
    return {p: statistics.median(t) for p, t in times.items()}


def measure(graphs: dict[str, Path], ids: np.ndarray, mask: np.ndarray, threads: int | None) -> dict[str, Any]:
    """Time each candidate's text encoder; the verdict names the fastest (fp32 on a tie)."""
    ms = {p: round(v, 3) for p, v in time_text_encoders(graphs, ids, mask, threads).items()}
    best = min(ms, key=lambda p: (ms[p], p != "fp32"))
    return {"precision": best, "ms": ms, "cpu": cpu_info()["summary"], "onnxruntime": ort.__version__, "threads": threads,
            "tokens": int(ids.shape[1])}


def read_verdict(path: Path, candidates: Sequence[str]) -> str | None:
    """The cached precision when the cache exists, is readable and names one of `candidates`."""
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    precision = verdict.get("precision") if isinstance(verdict, dict) else None
    return precision if precision in candidates else None


def fastest_cpu_precision(cache: Path, fingerprint: str, graphs: dict[str, Path], ids: np.ndarray, mask: np.ndarray,
                          threads: int | None) -> str:
    """The precision to load on this CPU among `graphs` (precision -> text-encoder file) of the
    bundle with `fingerprint`; the verdict is cached under `cache` (:func:`sdk.cache.cache_root`)."""
    forced = os.environ.get(ENV)
    if forced in graphs:
        return forced
    if forced:
        log.warning("%s=%s is not one of %s; choosing by speed", ENV, forced, ", ".join(graphs))
    path = cache_path(cache, fingerprint, threads)
    cached = read_verdict(path, list(graphs))
    if cached is not None:
        return cached
    verdict = measure(graphs, ids, mask, threads)
    log.info("precision on this CPU: %s (text encoder ms %s)", verdict["precision"], verdict["ms"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, verdict)
    except OSError as e:  # no writable cache (a sandboxed app without one): measure again next time
        log.info("could not cache the precision verdict in %s (%s)", path.parent, e)
    return str(verdict["precision"])
