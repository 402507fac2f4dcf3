"""The execution-provider choice, its fallback, and thread limits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sdk.bundle import Bundle
from sdk.errors import ArgumentError
from sdk.providers import CPU, CUDA, ProviderError, choose_providers
from sdk.ranker import Ranker


def test_provider_choice_and_fallback():
    import onnxruntime as ort

    real = ort.get_available_providers()
    auto = choose_providers("auto")
    assert auto.providers[0] == (CUDA if CUDA in real else CPU)
    if CUDA not in real:
        assert "CUDA not offered" in auto.reason and auto.default_precision == "int8"
        with pytest.raises(ProviderError, match="install onnxruntime-gpu"):
            choose_providers("cuda")
    gpu = choose_providers("auto", available=[CUDA, CPU])
    assert gpu.providers == (CUDA, CPU) and gpu.default_precision == "fp16" and gpu.device == "cuda"
    assert choose_providers("cpu", available=[CUDA, CPU]).providers == (CPU,)
    with pytest.raises(ProviderError, match="unknown providers value 'tpu'"):
        choose_providers("tpu")
    with pytest.raises(ProviderError, match="'FooExecutionProvider' is not available"):
        choose_providers(["FooExecutionProvider"])


def test_unknown_provider_in_rank(tiny_bundle, tiny_pack):
    with pytest.raises(ProviderError):
        Ranker(tiny_bundle, tiny_pack, providers="tpu")


@pytest.mark.parametrize("threads", [0, 1000, -1, "2", 2.0, True])
def test_threads_are_checked_when_the_bundle_is_built(tiny_bundle, threads):
    with pytest.raises(ArgumentError, match="threads must be an integer from 1 to"):
        Bundle(tiny_bundle, precision="fp32", providers="cpu", threads=threads)


def _timings(monkeypatch, ms: dict[str, float]) -> list[str]:
    """Make the text encoders time as `ms`; returns the precisions timed, in order."""
    from sdk import precision_choice

    timed: list[str] = []

    def fake(graphs, ids, mask, threads, repeat=precision_choice.REPEAT):
        timed.extend(Path(path).parent.name for path in graphs.values())
        return {p: ms[Path(path).parent.name] for p, path in graphs.items()}

    monkeypatch.setattr(precision_choice, "time_text_encoders", fake)
    monkeypatch.delenv(precision_choice.ENV, raising=False)
    return timed


def test_the_default_cpu_precision_is_the_faster_here_and_cached(tiny_bundle, tmp_path, monkeypatch):
    bundle = tmp_path / "model"
    shutil.copytree(tiny_bundle, bundle)
    monkeypatch.setenv("INTRA_CACHE_DIR", str(tmp_path / "cache"))
    timed = _timings(monkeypatch, {"fp32": 10.0, "int8": 14.0})  # int8 slower here, as on a Zen 3 EPYC
    assert Bundle(bundle, providers="cpu").precision == "fp32" and sorted(timed) == ["fp32", "int8"]
    verdict = json.loads(next((tmp_path / "cache" / "precision").glob("*.json")).read_text())
    assert verdict["precision"] == "fp32" and verdict["ms"] == {"fp32": 10.0, "int8": 14.0} and "family" in verdict["cpu"]
    timed.clear()
    assert Bundle(bundle, providers="cpu").precision == "fp32" and timed == []  # cached: nothing measured again
    assert Bundle(bundle, providers="cpu", precision="int8").precision == "int8" and timed == []  # asked for: no measuring
    monkeypatch.setenv("INTRA_PRECISION", "int8")
    assert Bundle(bundle, providers="cpu").precision == "int8" and timed == []


def test_precision_timing_alternates_the_candidates(tiny_bundle):
    from sdk import precision_choice
    from sdk.bundle import SPEED_PROBE

    b = Bundle(tiny_bundle, precision="fp32", providers="cpu")
    graphs = {p: tiny_bundle / p / "text_encoder.onnx" for p in ("fp32", "int8")}
    ids, mask = b.tokenizer.encode_contexts([[SPEED_PROBE] * 8])
    ms = precision_choice.time_text_encoders(graphs, ids, mask, 1, repeat=3)
    assert set(ms) == {"fp32", "int8"} and all(v > 0 for v in ms.values())


def test_int8_is_kept_where_it_is_faster_and_ties_go_to_fp32(tiny_bundle, tmp_path, monkeypatch):
    for ms, expected in (({"fp32": 10.0, "int8": 6.0}, "int8"), ({"fp32": 10.0, "int8": 10.0}, "fp32")):
        monkeypatch.setenv("INTRA_CACHE_DIR", str(tmp_path / f"cache-{expected}"))  # one verdict per machine: a fresh one
        _timings(monkeypatch, ms)
        assert Bundle(tiny_bundle, providers="cpu").precision == expected
