"""Which onnxruntime execution providers to use, and which bundle precision goes with them.

`providers="auto"` asks for CUDA when this onnxruntime build offers it and falls back to the CPU
with a logged reason; "cuda" demands it (error if absent); "cpu" never uses a GPU. An explicit
list of onnxruntime provider names is passed through after checking each is available. A CUDA
session that silently fell back is detected by reading what the session really got.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import onnxruntime as ort

from .errors import ArgumentError, IntraError

log = logging.getLogger("intra")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEFAULT_PRECISION = {CPU: "int8", CUDA: "fp16"}
#: What `providers=` takes besides a list of onnxruntime provider names.
PROVIDER_REQUESTS = ("auto", "cpu", "cuda")


class ProviderError(IntraError, ValueError):
    """An unknown or unavailable execution provider was asked for."""


@dataclass(frozen=True)
class ProviderChoice:
    providers: tuple[str, ...]
    reason: str

    @property
    def device(self) -> str:
        return "cuda" if self.providers[0] == CUDA else "cpu"

    @property
    def default_precision(self) -> str:
        return DEFAULT_PRECISION.get(self.providers[0], "fp32")


def choose_providers(providers: str | Sequence[str] = "auto", available: Sequence[str] | None = None) -> ProviderChoice:
    """Resolve a provider request against `available` (default: this onnxruntime's list)."""
    available = list(ort.get_available_providers() if available is None else available)
    if isinstance(providers, str):
        request = providers.lower()
        if request == "auto":
            if CUDA in available:
                return ProviderChoice((CUDA, CPU), "auto: CUDA is available in this onnxruntime build")
            reason = "auto: CUDA not offered by this onnxruntime build (install the 'gpu' extra), using the CPU"
            log.info(reason)
            return ProviderChoice((CPU,), reason)
        if request == "cpu":
            return ProviderChoice((CPU,), "cpu: asked for")
        if request == "cuda":
            if CUDA not in available:
                raise ProviderError(f"providers='cuda' but this onnxruntime offers only {available}; install onnxruntime-gpu (scripts/install-gpu.sh)")
            return ProviderChoice((CUDA, CPU), "cuda: asked for")
        raise ProviderError(f"unknown providers value {providers!r}: use 'auto', 'cpu', 'cuda' or a list of onnxruntime provider names")
    if not isinstance(providers, Sequence) or not all(isinstance(n, str) for n in providers):
        raise ProviderError(f"providers must be 'auto', 'cpu', 'cuda' or a list of onnxruntime provider names, got {providers!r}")
    names = list(providers)
    if not names:
        raise ProviderError("providers list is empty")
    for name in names:
        if name not in available:
            raise ProviderError(f"execution provider {name!r} is not available; this onnxruntime offers {available}")
    return ProviderChoice(tuple(names), "explicit list")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> int | None:
    """`threads` itself when it is None or 1..usable_cpus(); ArgumentError otherwise.

    More onnxruntime threads than CPUs only adds contention: 1,000 took 83 s per call, and 600
    under a memory limit deadlocked thread creation.
    """
    if threads is None:
        return None
    limit = usable_cpus()
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= limit:
        raise ArgumentError(f"threads must be an integer from 1 to {limit} (the CPUs this process may use) or None, got {threads!r}")
    return threads


def session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if check_threads(threads) is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def make_session(path: str, choice: ProviderChoice, threads: int | None) -> tuple[ort.InferenceSession, str]:
    """A session and the provider it really runs on (a CUDA request may have fallen back)."""
    session = ort.InferenceSession(path, sess_options=session_options(threads), providers=list(choice.providers))
    got = session.get_providers()[0]
    if choice.providers[0] == CUDA and got != CUDA:
        log.warning("CUDA was requested but %s runs on %s", path, got)
    return session, got
