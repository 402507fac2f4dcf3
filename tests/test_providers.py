"""The execution-provider choice, its fallback, and thread limits."""

from __future__ import annotations

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
