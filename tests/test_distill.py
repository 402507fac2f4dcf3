"""`intra distill`: a shallower student of a trained run, exportable and rankable like any run."""

from __future__ import annotations

import json

import pytest

from sdk.errors import OutputError
from training.config import ConfigError


def test_student_has_fewer_layers_learns_and_exports(tiny_run_dir, synthetic_dir, tmp_path):
    import sdk
    from export.exporter import export_run
    from training.distill import DistillConfig, distill, kept_layers, read_record
    from training.run_dir import load_run

    student = distill(tiny_run_dir, tmp_path / "student", DistillConfig(layers=1, epochs=3, lr=1e-3), synthetic_dir,
                      progress=False)
    conf = json.loads((student / "config.json").read_text())
    assert conf["text_encoder"]["num_hidden_layers"] == 1
    record = read_record(student)
    assert record["kept_layers"] == kept_layers(2, 1) == [1]
    assert record["epoch_losses"][-1] < record["epoch_losses"][0]  # it learns the teacher
    assert (student / "scoring.json").is_file()  # weights chosen again on validation
    model, _, _, _ = load_run(student)
    assert len(model.text.encoder.layer) == 1

    export_run(student, tmp_path / "bundle", precisions=("fp32",), data=synthetic_dir, progress=False)
    sdk.build_pack(synthetic_dir, tmp_path / "bundle", tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    result = sdk.rank(["see you tomorrow!"], tmp_path / "pack", model=tmp_path / "bundle", top_k=3)
    assert len(result.matches) == 3


def test_distill_refuses_bad_layers_and_a_used_directory(tiny_run_dir, synthetic_dir, tmp_path):
    from training.distill import DistillConfig, distill

    with pytest.raises(ConfigError, match="layers must be between 1 and 1"):
        distill(tiny_run_dir, tmp_path / "s", DistillConfig(layers=2), synthetic_dir, progress=False)
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a distilled run"):
        distill(tiny_run_dir, used, DistillConfig(layers=1, epochs=1), synthetic_dir, progress=False)
    assert (used / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="is the input"):
        distill(tiny_run_dir, tiny_run_dir, DistillConfig(layers=1, epochs=1), synthetic_dir, progress=False)


def test_distill_command_is_listed_and_says_what_is_wrong(tiny_run_dir, tmp_path):
    from typer.testing import CliRunner

    from sdk.cli import app

    runner = CliRunner()
    assert "distill" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["distill", "--run", str(tiny_run_dir), "--out", str(tmp_path / "s"), "--layers", "5"])
    assert result.exit_code == 2 and "layers must be between 1 and 1" in result.output
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_distilled_benchmark_measures_teacher_and_student(tiny_run_dir, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from experiments.distilled import app

    args = ["--teacher", str(tiny_run_dir), "--out", str(tmp_path), "--layers", "1", "--epochs", "1", "--repeat", "2",
            "--data", str(synthetic_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "distilled.json").read_text())
    row = report["rows"][0]
    assert set(row["quality"]) == {"teacher", "student"} and set(row["quality"]["student"]) == {"validation", "test"}
    assert all(0 <= v <= 100 for q in row["quality"].values() for m in q.values() for v in m.values())
    assert row["rank_ms"]["teacher"] > 0 and row["speedup"] == row["rank_ms"]["teacher"] / row["rank_ms"]["student"]
    assert report["summary"]["kept"] in (True, False) and "Kept (>= 2.0x" in (tmp_path / "distilled.md").read_text()
    # --retime: the same rows, timed again
    assert CliRunner().invoke(app, ["--out", str(tmp_path), "--retime", "--repeat", "2"]).exit_code == 0
    again = json.loads((tmp_path / "distilled.json").read_text())["rows"][0]
    assert again["quality"] == row["quality"] and again["rank_ms"]["student"] > 0


def test_fake_quant_rounds_like_dynamic_int8_and_comes_off_again():
    import torch
    from transformers import BertConfig, BertModel

    from training.fake_quant import FakeQuantLinear, add_fake_quant, fake_quant_activations, remove_fake_quant

    x = torch.randn(2, 5, 8) * torch.tensor([1.0, 50.0]).view(2, 1, 1)  # two contexts, very different ranges
    q = fake_quant_activations(x)
    for row, qrow in zip(x, q):  # per context: 256 levels over its own range (zero exact)
        step = (row.max().clamp(min=0) - row.min().clamp(max=0)) / 255
        assert (qrow - row).abs().max() <= step / 2 + 1e-6 and len(torch.unique(qrow)) <= 256
    x.requires_grad_(True)
    fake_quant_activations(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight through

    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert add_fake_quant(model) == 2 * 6  # Q, K, V, attention output, feed-forward in and out, per layer
    assert isinstance(model.encoder.layer[0].attention.self.query, FakeQuantLinear)
    ids = torch.randint(0, 50, (2, 7))
    quantized = model(input_ids=ids).last_hidden_state
    assert remove_fake_quant(model) == 12
    plain = model(input_ids=ids).last_hidden_state
    assert not torch.allclose(quantized, plain) and torch.nn.functional.cosine_similarity(
        quantized.flatten(), plain.flatten(), dim=0) > 0.99
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # same weights, same names


def test_quantization_aware_distillation_keeps_every_layer(tiny_run_dir, synthetic_dir, tmp_path):
    from training.distill import DistillConfig, distill, read_record
    from training.run_dir import load_run

    student = distill(tiny_run_dir, tmp_path / "qat", DistillConfig(layers=2, epochs=1, fake_quant=True), synthetic_dir,
                      progress=False)
    assert read_record(student)["fake_quant"] is True
    model, _, _, _ = load_run(student)  # plain Linears again: loads as an ordinary run
    assert len(model.text.encoder.layer) == 2
    assert type(model.text.encoder.layer[0].attention.self.query).__name__ == "Linear"
