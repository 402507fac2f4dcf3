"""Small measuring tools: timers with percentiles, the GEMM peak, FLOPs of a BERT-style encoder."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sdk.cpu import cpu_info


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Milliseconds per call: p50, p95, p99, mean over `repeat` calls after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.asarray(times)
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "p99_ms": float(np.percentile(arr, 99)), "mean_ms": float(arr.mean()), "n": repeat}


def gemm_peak_gflops(threads: int | None = None, size: int = 1024, repeat: int = 10) -> float:
    """float32 GEMM throughput of numpy (its BLAS) on this machine, GFLOP/s (best of `repeat`)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)

    def run() -> float:
        a @ b
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        return 2 * size ** 3 / best / 1e9

    if threadpool_limits is not None and threads is not None:
        with threadpool_limits(limits=threads):
            return run()
    return run()


def encoder_flops(config: dict[str, Any], tokens: int) -> float:
    """Multiply-adds x 2 of one BERT-style encoder pass over `tokens` tokens (batch 1)."""
    h = int(config["hidden_size"])
    inter = int(config.get("intermediate_size", 4 * h))
    layers = int(config["num_hidden_layers"])
    dense = 4 * h * h + 2 * h * inter  # Q, K, V, O projections + the feed-forward pair
    attention = 2 * tokens * h  # scores and weighted values, per token
    return 2.0 * layers * tokens * (dense + attention)


def machine() -> dict[str, Any]:
    import onnxruntime as ort

    cpu = cpu_info()  # from the runtime: the SDK keys its precision choice on the same description
    return {"cores": os.cpu_count(), "cpu": cpu["summary"], "cpu_details": cpu, "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
            "numpy": np.__version__}
