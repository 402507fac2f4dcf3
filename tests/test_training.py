"""Int-RA on tiny models built from configs: shapes, masking, learning, checkpoints, resume, DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sdk.labels import ATTRIBUTES, LABELS
from training.config import preset
from training.run_dir import load_run
from training.selector import RelationSelector
from training.trainer import train


@pytest.fixture(scope="module")
def tiny_run(synthetic_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    result = train(preset("tiny", epochs=2), synthetic_dir, run, progress=False)
    return run, result


def test_run_directory_holds_config_weights_tokenizer_and_log(tiny_run):
    run, result = tiny_run
    for name in ("config.json", "tokenizer.json", "model.safetensors", "last.safetensors", "optimizer.safetensors", "state.json", "log.jsonl"):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.pt")) and not list(run.glob("*.bin"))
    conf = json.loads((run / "config.json").read_text())
    assert conf["labels"] == list(LABELS) and conf["text_settings"]["truncation_side"] == "left"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(0.0 <= r["val_mAP"] <= 1.0 for r in log)


def test_shapes_and_normalisation(tiny_run, synthetic_dir):
    run, _ = tiny_run
    model, tok, image_settings, conf = load_run(run)
    ids, mask = tok.encode_contexts([["hello", "so happy"], ["我好难过"]])
    h = model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask))
    logits, q = model.query(h)
    assert logits.shape == (2, len(LABELS)) and q.shape == (2, conf["train"]["dim"])
    assert torch.allclose(q.norm(dim=-1), torch.ones(2), atol=1e-5)
    pixels = torch.randn(3, 3, image_settings.image_size, image_settings.image_size)
    attrs = torch.randn(3, len(ATTRIBUTES), model.label_table.shape[1])
    v = model.sticker_vectors(pixels, attrs, torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]))
    assert v.shape == (3, conf["train"]["dim"]) and torch.allclose(v.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_selector_masks_attributes():
    torch.manual_seed(0)
    sel = RelationSelector(dim=8, key_dim=4)
    regions, attrs = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = sel(regions, attrs, mask)
    changed = attrs.clone()
    changed[:, 1] += 10.0  # a masked attribute: must not matter
    assert torch.allclose(sel(regions, changed, mask), out)
    changed[:, 0] += 10.0  # a present attribute: must matter
    assert not torch.allclose(sel(regions, changed, mask)[0], out[0])
    w = sel.region_weights(regions, attrs, mask)
    assert torch.allclose(w[1], torch.full((5,), 0.2))  # nothing present: uniform
    single = sel.region_weights(regions, attrs, torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0]]))
    assert torch.allclose(single[0].sum(), torch.tensor(1.0))  # one attribute: its softmax
    both = sel.region_weights(regions, attrs, torch.tensor([[1.0, 0, 1, 0], [1, 0, 1, 0]]))
    assert torch.all(both >= single - 1e-6)  # max over attributes


def test_loss_decreases_on_a_fixed_batch(tiny_run, synthetic_dir):
    from sdk.dataset import load_dataset
    from training.model_inputs import context_batch, encode_attribute_table, refresh_label_table, sticker_inputs

    run, _ = tiny_run
    model, tok, image_settings, _ = load_run(run)
    ds = load_dataset(synthetic_dir)
    stickers = sticker_inputs(ds, image_settings)
    convs = ds.split("train")[:8]
    index = ds.sticker_index()
    refresh_label_table(model, tok)
    table = encode_attribute_table(model, tok, stickers.slots)
    gold = [index[c.sticker_id] for c in convs]
    cand = list(dict.fromkeys(gold + list(range(10))))
    args = dict(pixels=stickers.pixels[cand], attr_emb=table[cand], attr_mask=stickers.attribute_mask[cand],
                positive=torch.tensor([cand.index(g) for g in gold]), negative_mask=torch.tensor([[s != g for s in cand] for g in gold]),
                gold_label=torch.tensor([LABELS.index(c.label) for c in convs]))
    ids, mask = context_batch(convs, tok, True)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss, _ = model(ids, mask, **args)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_same_seed_same_weights_and_resume_is_exact(synthetic_dir, tmp_path, monkeypatch):
    from training import trainer

    cfg = preset("tiny", epochs=2)
    train(cfg, synthetic_dir, tmp_path / "a", progress=False)
    real, calls = trainer.evaluate_split, {"n": 0}

    def interrupted(*a, **k):  # dies at the end of epoch 2, before anything of it is saved
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(trainer, "evaluate_split", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, synthetic_dir, tmp_path / "b", progress=False)
    monkeypatch.setattr(trainer, "evaluate_split", real)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["epoch"] == 1
    train(cfg, synthetic_dir, tmp_path / "b", progress=False)  # resumes at epoch 2
    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(tmp_path / "b" / "last.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [json.loads(x)["epoch"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_resume_refuses_another_config(synthetic_dir, tmp_path):
    from training.run_dir import RunError

    train(preset("tiny", epochs=1), synthetic_dir, tmp_path / "r", progress=False)
    with pytest.raises(RunError, match="another config"):
        train(preset("tiny", epochs=2, mode="soft"), synthetic_dir, tmp_path / "r", progress=False)


def test_checkpoint_round_trip_gives_the_saved_validation_metrics(tiny_run, synthetic_dir):
    from sdk.dataset import load_dataset
    from training.model_inputs import sticker_inputs, sticker_labels
    from training.trainer import evaluate_split

    run, _ = tiny_run
    model, tok, image_settings, _ = load_run(run)
    ds = load_dataset(synthetic_dir)
    val = evaluate_split(model, tok, sticker_inputs(ds, image_settings), ds, "validation", sticker_labels(ds)[0])
    saved = json.loads((run / "metrics.json").read_text())["validation"]
    for key in ("mAP", "P@1", "MRR", "intention_accuracy"):
        assert val[key] == pytest.approx(saved[key], abs=1e-6)


def test_cached_epochs_validate_like_a_fresh_evaluation(synthetic_dir, tmp_path):
    """Once the text encoder is frozen, validation reuses H^Y and H^A; the figures must not move."""
    from sdk.dataset import load_dataset
    from training.model_inputs import sticker_inputs, sticker_labels
    from training.run_dir import LAST
    from training.trainer import evaluate_split

    result = train(preset("tiny", epochs=3, text_epochs=1), synthetic_dir, tmp_path / "r", progress=False)
    last = result["history"][-1]
    model, tok, image_settings, _ = load_run(tmp_path / "r", LAST)
    ds = load_dataset(synthetic_dir)
    val = evaluate_split(model, tok, sticker_inputs(ds, image_settings), ds, "validation", sticker_labels(ds)[0])
    for key in ("mAP", "P@1", "MRR", "intention_accuracy"):
        assert val[key] == pytest.approx(last[f"val_{key}"], abs=1e-4)


def test_the_tuned_text_schedule_anneals_the_encoder_before_it_is_frozen(synthetic_dir, tmp_path):
    from training.config import ConfigError
    from training.trainer import lr_scale, lr_scales

    cfg = preset("tweet-full", text_schedule="tuned")  # one tuned epoch of eight
    steps = 100
    text = [lr_scales(cfg, 0, s, steps)[0] for s in range(steps)]
    assert text[0] == 0.0 and max(text) == pytest.approx(1.0) and text[-1] < 0.02  # warm-up, peak, decayed
    assert text.index(max(text)) == 6 and all(a >= b for a, b in zip(text[6:], text[7:]))
    assert lr_scales(cfg, 3, 10, steps)[0] == 0.0  # frozen epochs: nothing left to anneal
    # everything else, and the encoder under the default, follows the whole run's cosine
    for epoch, step in ((0, 0), (0, 50), (4, 10)):
        assert lr_scales(cfg, epoch, step, steps)[1] == lr_scale(cfg, epoch, step, steps)
        run = preset("tweet-full")
        assert lr_scales(run, epoch, step, steps) == (lr_scale(run, epoch, step, steps),) * 2
    with pytest.raises(ConfigError, match="text_schedule"):
        preset("tiny", text_schedule="linear")
    # and a run trains with it
    result = train(preset("tiny", epochs=2, text_epochs=1, text_schedule="tuned"), synthetic_dir, tmp_path / "r", progress=False)
    assert 0.0 <= result["best_val"] <= 1.0


@pytest.mark.parametrize("flags", [dict(use_knowledge=False), dict(use_attributes=False), dict(use_intention=False),
                                   dict(dual_encoder=True), dict(mode="paper"), dict(mode="soft")])
def test_ablations_and_modes_train(synthetic_dir, tmp_path, flags):
    result = train(preset("tiny", epochs=1, **flags), synthetic_dir, tmp_path / "r", progress=False)
    assert 0.0 <= result["best_val"] <= 1.0
    model, *_ = load_run(tmp_path / "r")
    assert hasattr(model, "head") == (flags.get("use_intention", True) and not flags.get("dual_encoder", False))
    if not model.attributes:  # a sticker side that reads no descriptions still exports every graph's inputs
        from export.exporter import export_run
        from sdk.temp_pack import temporary_ranker

        export_run(tmp_path / "r", tmp_path / "m", precisions=("fp32",), data=synthetic_dir, progress=False)
        with temporary_ranker(tmp_path / "m", synthetic_dir, precision="fp32") as ranker:
            assert len(ranker.rank("so happy today", top_k=3).matches) == 3


def test_local_clip_and_text_directories_load(synthetic_dir, tmp_path):
    from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

    from training.encoders import train_wordpiece

    clip_dir = tmp_path / "clip"
    CLIPVisionModel(CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=1, num_attention_heads=2)).save_pretrained(clip_dir)
    text_dir = tmp_path / "bert"
    tok = train_wordpiece(["hello there", "so happy today"], 200)
    BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(text_dir)
    tok.save(str(text_dir / "tokenizer.json"))
    result = train(preset("tiny", epochs=1, vision_model=str(clip_dir), text_model=str(text_dir)), synthetic_dir, tmp_path / "r", progress=False)
    conf = json.loads((tmp_path / "r" / "config.json").read_text())
    assert conf["vision_encoder"]["model_type"] == "clip_vision_model"
    assert conf["image_settings"]["mean"][0] == pytest.approx(0.48145466)
    assert conf["tokenizer"]["cjk_tokens_added"] > 0  # the Chinese turns of the world were [UNK] before
    assert conf["tokenizer"]["unk_rate_after"]["zh"] < conf["tokenizer"]["unk_rate_before"]["zh"]
    load_run(tmp_path / "r")
    assert result["best_val"] >= 0


def test_bad_encoder_directory_is_named(synthetic_dir, tmp_path):
    from training.encoders import EncoderError

    with pytest.raises(EncoderError, match="not a Hugging Face model directory"):
        train(preset("tiny", text_model=str(tmp_path)), synthetic_dir, tmp_path / "r", progress=False)


def test_minilm_cjk_extension_removes_unknowns():
    from tokenizers import Tokenizer

    from sdk.textprep import ContextTokenizer, TextSettings
    from training.encoders import default_text_model_dir, extend_cjk

    base = Tokenizer.from_file(str(default_text_model_dir() / "tokenizer.json"))
    ext, added = extend_cjk(base, ["我太难过了", "今天好开心"])
    s = TextSettings()
    assert ContextTokenizer(base, s).unk_rate(["我太难过了"]) > 0.5
    assert ContextTokenizer(ext, s).unk_rate(["我太难过了"]) == 0.0
    assert "难" in added and ext.get_vocab_size() == base.get_vocab_size() + len(added)


def test_two_process_ddp_training(synthetic_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "training.cli", "train", "--data", str(synthetic_dir), "--out", str(tmp_path / "ddp"), "--preset", "tiny", "--epochs", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    log = [json.loads(x) for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and np.isfinite(log[0]["train_loss"])
    load_run(tmp_path / "ddp")


def test_eval_command_writes_the_report(tiny_run, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from sdk.cli import app

    run, _ = tiny_run
    result = CliRunner().invoke(app, ["eval", "--run", str(run), "--data", str(synthetic_dir), "--out", str(tmp_path / "rep"),
                                      "--compare", f"again={run}"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["split"] == "test" and report["n"] > 0 and "label_rule" in report
    assert {"int-ra", "again", "random", "popular", "intention-only"} <= set(report["models"])
    for m in report["models"].values():
        assert set(m) >= {"P@1", "P@3", "P@5", "mAP", "R@1", "R@5", "R@10", "MRR"}
        assert all(0.0 <= v <= 1.0 for v in m.values())
    assert report["models"]["again"] == report["models"]["int-ra"]
    assert {"accuracy", "macro_f1"} <= set(report["intention"])
    assert (tmp_path / "rep" / "pr_curve.png").stat().st_size > 1000
    assert "SYNTHETIC" in (tmp_path / "rep" / "report.md").read_text()


def test_extra_intention_data_trains_the_head(synthetic_dir, tmp_path):
    import shutil

    from sdk.dataset import load_dataset

    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    ds = load_dataset(data)
    extra = [c.to_json() for c in ds.split("train")[:60]]
    for rec in extra:
        rec.pop("sticker_id")
        rec["id"] = "extra-" + rec["id"]
    (data / "extra_intention.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in extra))
    result = train(preset("tiny", epochs=2, extra_intention=True, text_epochs=1), data, tmp_path / "r", progress=False)
    log = result["history"]
    assert [r["epoch"] for r in log] == [1, 2] and all(np.isfinite(r["train_int"]) for r in log)
    assert load_run(tmp_path / "r")[3]["train"]["extra_intention"] is True

    from training.trainer import extra_subset

    ds = load_dataset(data)
    capped = preset("tiny", extra_intention=True, extra_intention_max=20)
    subset = extra_subset(ds, capped)
    assert len(subset) == 20 and [c.id for c in subset] == [c.id for c in extra_subset(ds, capped)]
    assert len({c.id for c in subset}) == 20 and {c.id for c in subset} <= {r["id"] for r in extra}
    assert [c.id for c in extra_subset(ds, preset("tiny", extra_intention_max=20, seed=1))] != [c.id for c in subset]
    assert len(extra_subset(ds, preset("tiny", extra_intention_max=100))) == 60
    with pytest.raises(ValueError, match="extra_intention_max"):
        preset("tiny", extra_intention_max=0)


def test_reports_name_the_command_as_a_user_would_retype_it():
    from pathlib import Path

    import experiments.paper_table
    from training.evaluate import command_line

    script = str(Path(experiments.paper_table.__file__).resolve())
    assert command_line([script, "--data", "my data"]) == "python -m experiments.paper_table --data 'my data'"
    assert command_line(["/somewhere/.venv/bin/intra", "eval", "--run", "r"]) == "intra eval --run r"


def test_final_selection_and_the_losses_train(synthetic_dir, tmp_path):
    from training.score_weights import read_weights

    cfg = preset("tiny", epochs=2, select_on="final", retrieval_loss="infonce", sampled_negatives=-1, prior_adjusted=True,
                 hard_negatives=4)
    result = train(cfg, synthetic_dir, tmp_path / "r", progress=False)
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    # the checkpoint is chosen by the final score's objective, which the log records per epoch
    assert result["best_val"] == pytest.approx(max(e["val_final_objective"] for e in log), abs=1e-4)  # the log rounds
    assert all(e["val_final_objective"] >= (e["val_MRR"] + e["val_R@10"] + e["val_mAP"]) / 3 - 1e-3 for e in log)
    assert read_weights(tmp_path / "r").to_json() == {k: result["scoring"][k] for k in result["scoring"]}
    with pytest.raises(ValueError, match="retrieval_loss"):
        preset("tiny", retrieval_loss="triplet")
    with pytest.raises(ValueError, match="prior_adjusted"):
        preset("tiny", prior_adjusted=True)


def test_intention_stage_trains_the_top_layers_and_the_head_first(synthetic_dir, tmp_path):
    cfg = preset("tiny", epochs=1, intention_pretrain_epochs=2, intention_pretrain_layers=1, intention_pretrain_batch=32)
    result = train(cfg, synthetic_dir, tmp_path / "r", progress=False)
    first, second = result["intention_stage"]
    assert second < first  # the head and the top layer learn the labels
    model, *_ = load_run(tmp_path / "r")
    assert 0.0 <= result["best_val"] <= 1.0 and hasattr(model, "head")
