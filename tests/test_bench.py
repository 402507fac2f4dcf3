"""The benchmark's --quick mode end to end on the tiny bundle (numbers are reported, never asserted on)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdk.cli import app

KEYS = ("default_precision_cpu", "speedup_int8_vs_torch_b1", "speedup_fp32_vs_torch_b1", "top5_agreement_int8", "map_delta_int8",
        "overhead_fraction_10k", "topk_100k_ms", "cold_start_s", "rss_mb_int8", "gemm_peak_fraction", "machine")


def test_quick_benchmark_writes_results(tiny_bundle, tiny_pack, tiny_run_dir, tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "--model", str(tiny_bundle), "--pack", str(tiny_pack), "--run", str(tiny_run_dir),
                                      "--out", str(out), "--quick"])
    assert result.exit_code == 0, result.output
    r = json.loads((out / "results.json").read_text())
    assert set(KEYS) <= set(r)
    assert r["machine"]["cores"] >= 1 and "CPUExecutionProvider" in r["machine"]["providers"]
    assert r["speedup_int8_vs_torch_b1"] > 0 and r["cold_start_s"] > 0 and r["rss_mb_int8"] > 10
    assert {"fp32/cpu/t1", "int8/cpu/t1", "torch-fp32/t1"} <= set(r["latency"])
    assert [row["stickers"] for row in r["pack_scaling"]] == [100, 1000]
    assert 0.0 <= r["pack_scaling"][1]["ann_recall@10"] <= 1.0
    assert r["top5_agreement_int8"] >= 0.95  # from the manifest's parity figures
    assert r["batch_invariant_int8"]["invariant"] is True and r["batch_invariant_int8"]["contexts"] == 64
    chosen = r["default_precision_cpu"]
    assert chosen["precision"] in ("fp32", "int8") and (chosen["why"].get("precision") in (None, chosen["precision"]))
    assert "family" in r["machine"]["cpu"] and isinstance(r["machine"]["cpu_details"]["flags"], list)
    md = (out / "results.md").read_text()
    assert "| target | value | goal | result |" in md and ("pass" in md or "MISS" in md)
    assert (out / "latency.png").stat().st_size > 1000 and (out / "pack_scaling.png").stat().st_size > 1000
    # with --run: the dynamic-int8 floor and the sentence-transformers peer, side by side
    assert r["int8_floor"]["dynamic_ms"] > 0 and r["int8_vs_dynamic_floor"] == r["int8_floor"]["ratio"] > 0
    peer = r["peer"]
    assert peer["peer_b1_ms"] > 0 and peer["peer_b32_ms"] > 0 and r["speedup_vs_peer_b1"] > 0
    assert 0.0 <= r["top5_agreement_peer"] <= 1.0 and peer["top5_agreement_ours"] >= 0.95
    assert "## The peer, side by side" in md and r["default_vs_fp32_b1"] > 0


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_int8_schemes_benchmark_measures_every_scheme(tiny_run_dir, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from experiments.int8_schemes import SWEEP_KEEP, app, compared_schemes

    result = CliRunner().invoke(app, ["--run", str(tiny_run_dir), "--data", str(synthetic_dir), "--out", str(tmp_path),
                                      "--repeat", "3", "--tokens", "16"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "int8_schemes.json").read_text())
    rows = report["schemes"]
    schemes = [s.label for s in compared_schemes()]
    assert [r["scheme"] for r in rows[1:len(schemes) + 1]] == schemes
    assert len(rows) == 1 + len(schemes) + 3 * len(SWEEP_KEEP)  # then the sweep's schemes
    assert {r["kind"] for r in rows} == {"fp32", "dynamic", "weight-only", "static"}
    for r in rows:
        assert 0.0 <= r["top5_agreement"] <= 1.0 and r["ms"] > 0 and r["text_encoder_mb"] > 0
        assert r["top5_agreement"] == min(r["top5_with_prior"], r["top5_without_prior"])
    assert rows[0]["top5_agreement"] == 1.0 and all(r["text_encoder_mb"] < rows[0]["text_encoder_mb"] for r in rows[1:])
    # the sweep: every weighted MatMul of the text encoder kept fp32 once, most sensitive first
    sweep = report["sensitivity"]
    assert len(sweep) == 6 * 2  # 6 MatMuls per layer, 2 layers in the tiny encoder
    assert [r["top5_agreement"] for r in sweep] == sorted((r["top5_agreement"] for r in sweep), reverse=True)
    assert report["cpu"]["model_name"] and "| scheme | top-5 (gated)" in (tmp_path / "int8_schemes.md").read_text()

    # --no-parity: the same schemes, timed only (for a quiet machine)
    result = CliRunner().invoke(app, ["--run", str(tiny_run_dir), "--data", str(synthetic_dir), "--out", str(tmp_path / "t"),
                                      "--repeat", "2", "--tokens", "16", "--no-parity"])
    assert result.exit_code == 0, result.output
    timed = json.loads((tmp_path / "t" / "int8_schemes.json").read_text())["schemes"]
    assert [r["scheme"] for r in timed[1:]] == schemes and all(r["ms"] > 0 and "top5_agreement" not in r for r in timed[1:])


ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
stepping\t: 1
flags\t\t: fpu sse2 avx avx2 fma f16c

processor\t: 1
flags\t\t: fpu
"""


def test_the_cpu_is_named_exactly():
    from benchmarks.measure import machine
    from sdk.cpu import cpu_info

    zen3 = cpu_info(ZEN3)
    assert zen3["model_name"] == "AMD EPYC 7B13" and (zen3["family"], zen3["model"]) == ("25", "1")
    assert zen3["flags"] == ["avx2", "fma", "f16c"] and "avx512f" not in zen3["summary"]
    here = machine()
    assert here["cpu"] == here["cpu_details"]["summary"] and "family" in here["cpu"]


def test_lengths_beyond_the_encoders_positions_are_left_out_and_said():
    from benchmarks.suite import BenchConfig

    full = BenchConfig(quick=False, max_tokens=128)
    assert full.lengths == (16, 64) and "256" in (full.length_note() or "") and "128 positions" in (full.length_note() or "")
    assert BenchConfig(quick=True, max_tokens=512).length_note() is None and BenchConfig().lengths == (16, 64, 256)


def test_gpu_script_says_no_cuda_here_and_its_rows_run_on_the_cpu(tiny_bundle, tiny_pack, synthetic_dir, tmp_path):
    import shutil
    import subprocess

    from benchmarks.gpu_rows import gpu_rows, markdown

    if shutil.which("nvidia-smi") is None:
        script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0 and "no CUDA device" in proc.stdout
    r = gpu_rows(tiny_bundle, tiny_pack, synthetic_dir, providers="cpu", contexts=40, repeat=3)
    assert r["provider"] == "CPUExecutionProvider" and r["contexts"] == 40
    assert r["top5_agreement_vs_fp32_cpu"] >= 0.95 and r["max_score_diff_vs_fp32_cpu"] < 0.05
    assert set(r["encoder_ms_by_batch"]) == {"1", "8", "32", "128"} and r["cpu_int8"]["b1"]["n"] == 3 and "| fp16 on CPUExecutionProvider, " in markdown(r) and "int8 on this machine's CPU" in markdown(r)


def test_gpu_rows_take_a_reference_saved_on_another_machine(tiny_bundle, tiny_pack, synthetic_dir, tmp_path):
    """A GPU machine given only the fp16 graphs compares against fp32 scores saved elsewhere."""
    import numpy as np
    from typer.testing import CliRunner

    from benchmarks.gpu_rows import GpuReferenceError, app, gpu_rows, load_reference

    ref = tmp_path / "ref.npy"
    args = ["--model", str(tiny_bundle), "--pack", str(tiny_pack), "--data", str(synthetic_dir), "--contexts", "30"]
    res = CliRunner().invoke(app, [*args, "--save-reference", str(ref)])
    assert res.exit_code == 0, res.output
    here = gpu_rows(tiny_bundle, tiny_pack, synthetic_dir, providers="cpu", contexts=30, repeat=3)
    saved = gpu_rows(tiny_bundle, tiny_pack, synthetic_dir, providers="cpu", contexts=30, repeat=3, reference=ref)
    assert saved["reference"] == str(ref) and here["reference"] == "computed here"
    for k in ("top5_agreement_vs_fp32_cpu", "max_score_diff_vs_fp32_cpu"):
        assert saved[k] == pytest.approx(here[k], abs=1e-6)
    with pytest.raises(GpuReferenceError, match="shape"):
        load_reference(ref, (31, np.load(ref).shape[1]))
    res = CliRunner().invoke(app, [*args, "--contexts", "31", "--reference", str(ref), "--out", str(tmp_path / "o"), "--repeat", "3",
                                     "--providers", "cpu"])
    assert res.exit_code != 0 and "ref.npy" in res.output and not (tmp_path / "o" / "gpu.json").exists()


def test_the_peer_serves_the_same_encoder_through_sentence_transformers(tiny_run_dir, tiny_bundle, tmp_path):
    """The peer is our trained encoder, not a lookalike: its pooled output equals the bundle's."""
    from sentence_transformers import SentenceTransformer

    from benchmarks.peer import sentence_transformer_dir
    from export.parity import row_cosine
    from sdk.bundle import Bundle

    st = SentenceTransformer(str(sentence_transformer_dir(tiny_run_dir, tmp_path)), device="cpu")
    bundle = Bundle(tiny_bundle, precision="fp32", providers="cpu")
    contexts = [["hi there", "how are you?"], ["see you tomorrow at the station"], ["lol", "no way", "that is so sad"]]
    ours = bundle.encode_contexts(contexts)
    peer = st.encode([bundle.tokenizer.context_string(c) for c in contexts], convert_to_numpy=True)
    assert row_cosine(ours, peer) > 0.9999


def test_diversity_benchmark_counts_changed_top5(tiny_bundle, synthetic_dir, tmp_path):
    from experiments.diversity import app
    from sdk.dataset import load_dataset

    result = CliRunner().invoke(app, ["--model", str(tiny_bundle), "--data", str(synthetic_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    r = json.loads((tmp_path / "diversity.json").read_text())
    assert r["conversations"] == len(load_dataset(synthetic_dir).split("test")) and 0 <= r["changed"] <= r["conversations"]
    assert r["changed_fraction"] == r["changed"] / r["conversations"] and r["near_duplicate_pairs"] >= 0


def test_intra_rank_takes_diverse(tiny_pack, tiny_bundle):
    result = CliRunner().invoke(app, ["rank", "so happy today", "--pack", str(tiny_pack), "--model", str(tiny_bundle),
                                      "--diverse", "--json"])
    assert result.exit_code == 0, result.output
    assert 1 <= len(json.loads(result.output)["matches"]) <= 5
