"""TweetEval emoji: the adapter (leak removal, split rules, held-out emoji), the official scorer and
the predictions file, on a tiny source directory built here; and once on the shared data."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdk.dataset import load_dataset
from sdk.errors import DatasetError
from training.data.tweeteval import build, clean_context, task_sticker_ids
from training.tweeteval_scoring import closed_metrics, official_macro_f1, predicted_labels, read_predictions, write_predictions

# (unified code points, name, subcategory): the three task emoji and one distractor
EMOJI = [("2764-FE0F", "red heart", "heart"), ("1F602", "face with tears of joy", "face-smiling"),
         ("2600-FE0F", "sun", "sky & weather"), ("1F44D", "thumbs up", "hand-fingers-closed")]


def tiny_source(root: Path, with_test: bool = False) -> Path:
    """A shared-data-shaped directory: 4 emoji, 3 task labels, 20 train and 6 val tweets."""
    emoji = root / "emoji"
    (emoji / "png64").mkdir(parents=True)
    (emoji / "annotations").mkdir()
    meta = []
    for unified, name, sub in EMOJI:
        image = f"{unified.lower()}.png"
        Image.new("RGBA", (64, 64), (200, 30, 30, 255)).save(emoji / "png64" / image)
        meta.append({"unified": unified, "name": name.upper(), "image": image, "subcategory": sub})
    (emoji / "emoji.json").write_text(json.dumps(meta), encoding="utf-8")
    for lang in ("en", "zh"):
        (emoji / "annotations" / f"{lang}.json").write_text("[]", encoding="utf-8")
    te = root / "tweeteval-emoji"
    te.mkdir()
    (te / "mapping.txt").write_text("0\t❤\t_red_heart_\n1\t😂\t_face_with_tears_of_joy_\n2\t☀\t_sun_\n", encoding="utf-8")
    train = [(f"love you {i} \ufe0f \ufe0f", 0) if i % 3 == 0 else (f"lol {i} 😂", 1) if i % 3 == 1 else (f"beach day {i}\ufe0f", 2)
             for i in range(20)]
    val = [("so much love \ufe0f", 0), ("haha 😂😂", 1), ("sunny\u2028day ☀️", 2), ("\ufe0f \ufe0f", 0), ("ok lol", 1), ("sun", 2)]
    splits = {"train": train, "val": val} | ({"test": val[:3]} if with_test else {})
    for name, rows in splits.items():
        (te / f"{name}_text.txt").write_text("".join(t + "\n" for t, _ in rows), encoding="utf-8")
        (te / f"{name}_labels.txt").write_text("".join(f"{y}\n" for _, y in rows), encoding="utf-8")
    ge = root / "goemotions"
    ge.mkdir()
    (ge / "train.tsv").write_text("thanks a lot\t15\tc1\nwhat a day 😂\t1\tc2\nthis is fine\t27\tc3\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("raw,clean", [
    ("Love love love all these people \ufe0f \ufe0f \ufe0f #friends", "Love love love all these people #friends"),
    ("sunny \ufe0e day", "sunny day"),
    ("family \u200d time 🏽", "family time"),
    ("keycap \u20e3 and 😂 left", "keycap and left"),
    ("flag 🇺🇸 here \U000e0067", "flag here"),
    ("♡ stays, text too: café", "♡ stays, text too: café"),
])
def test_clean_context_removes_the_leak_and_emoji_residue(raw, clean):
    assert clean_context(raw) == clean
    assert "\ufe0f" not in clean_context(raw)


def test_adapter_splits_leak_and_unlabelled_contexts(tmp_path):
    src = tiny_source(tmp_path / "src")
    counts = build(src, tmp_path / "ds", catalog="full", seed=3, validation_fraction=0.25)
    ds = load_dataset(tmp_path / "ds")
    assert len(ds.stickers) == 4 and counts["dropped_empty_val"] == 1  # "\ufe0f \ufe0f" is empty once cleaned
    assert (len(ds.split("train")), len(ds.split("validation")), len(ds.split("test"))) == (15, 5, 5)
    for conv in (*ds.split("train"), *ds.split("validation"), *ds.split("test")):
        assert conv.label is None and "\ufe0f" not in conv.context[0].text and "😂" not in conv.context[0].text
    assert [c.context[0].text for c in ds.split("test")][:3] == ["so much love", "haha", "sunny day"]  # a line separator is whitespace
    assert counts["train_had_fe0f"] == 13
    # the test split is val_text in order; validation is carved out of train, the same per seed
    again = build(src, tmp_path / "ds2", seed=3, validation_fraction=0.25)
    assert again == counts
    assert [c.id for c in load_dataset(tmp_path / "ds2").split("validation")] == [c.id for c in ds.split("validation")]
    other = build(src, tmp_path / "ds3", seed=4, validation_fraction=0.25)
    assert other["validation"] == 5
    assert {c.id for c in load_dataset(tmp_path / "ds3").split("validation")} != {c.id for c in ds.split("validation")}
    assert [c.label for c in ds.split("extra_intention")] == ["gratitude", "neutral"]  # comments with emoji are not extra
    assert task_sticker_ids(ds.info.details) == ["emoji-2764-fe0f", "emoji-1f602", "emoji-2600-fe0f"]
    assert "U+FE0F" in ds.info.details["rules"]["leak"]


def test_task_catalog_test_file_and_held_out(tmp_path):
    src = tiny_source(tmp_path / "src", with_test=True)
    build(src, tmp_path / "task", catalog="task")
    ds = load_dataset(tmp_path / "task")
    assert sorted(s.id for s in ds.stickers) == sorted(task_sticker_ids(ds.info.details))
    # with test_text.txt: val becomes validation, test_text the test split
    assert (len(ds.split("train")), len(ds.split("validation")), len(ds.split("test"))) == (20, 5, 3)
    build(src, tmp_path / "held", catalog="task", held_out=1, seed=0)
    held = load_dataset(tmp_path / "held")
    (gone,) = held.info.details["held_out"]
    assert all(c.sticker_id != gone for c in (*held.split("train"), *held.split("validation")))
    assert held.split("test") and all(c.sticker_id == gone for c in held.split("test"))
    assert len(held.stickers) == 3  # ranked among all the task emoji
    with pytest.raises(DatasetError, match="hold-out"):
        build(src, tmp_path / "bad", catalog="task", held_out=3)


def test_adapter_errors_name_the_file(tmp_path):
    src = tiny_source(tmp_path / "src")
    (src / "tweeteval-emoji" / "val_labels.txt").write_text("0\n1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="val_text.txt: 6 tweets but val_labels.txt has 2"):
        build(src, tmp_path / "ds")
    (src / "tweeteval-emoji" / "val_labels.txt").write_text("0\n1\n7\n0\n1\n2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"val_labels.txt:3: label '7'"):
        build(src, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_cli_writes_the_dataset(tmp_path):
    from sdk.cli import app

    src = tiny_source(tmp_path / "src")
    result = CliRunner().invoke(app, ["data", "tweeteval", "--source", str(src), "--out", str(tmp_path / "ds"), "--catalog", "task"])
    assert result.exit_code == 0, result.output
    assert "rule leak" in result.output and len(load_dataset(tmp_path / "ds").stickers) == 3
    bad = CliRunner().invoke(app, ["data", "tweeteval", "--source", str(src), "--out", str(tmp_path / "x"), "--catalog", "all"])
    assert bad.exit_code == 2


def test_official_macro_f1_against_a_hand_computed_case():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 0, 2]
    # label 0: P 1/2 R 1/2 F 1/2; label 1: P 2/3 R 1 F 0.8; label 2: P 1 R 1/2 F 2/3
    assert official_macro_f1(gold, pred) == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)
    # a label never predicted has F1 0 and still counts in the macro average
    assert official_macro_f1([0, 1, 2], [0, 0, 0]) == pytest.approx(100 * (0.5 + 0 + 0) / 3)


def test_closed_protocol_and_predictions_file(tmp_path):
    # 3 queries over 5 pack columns; the task's labels 0, 1, 2 sit in columns 4, 0, 2
    scores = np.array([[0.1, 0.0, 0.2, 0.9, 0.5],   # task scores (0.5, 0.1, 0.2): predicts 0
                       [0.7, 0.0, 0.7, 0.0, 0.1],   # (0.1, 0.7, 0.7): tie, argmax takes label 1
                       [0.3, 0.0, 0.1, 0.0, 0.2]])  # (0.2, 0.3, 0.1): predicts 1
    columns = [4, 0, 2]
    assert list(predicted_labels(scores, columns)) == [0, 1, 1]
    m = closed_metrics(scores, [0, 2, 2], columns)
    assert m["accuracy"] == pytest.approx(100 / 3)
    assert m["mrr"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 3)  # the tie ranks gold 2 second (pessimistic)
    assert m["top5"] == 100.0 and m["n"] == 3
    write_predictions(tmp_path / "predictions.txt", predicted_labels(scores, columns))
    assert (tmp_path / "predictions.txt").read_text() == "0\n1\n1\n"
    assert read_predictions(tmp_path / "predictions.txt") == [0, 1, 1]
    (tmp_path / "bad.txt").write_text("0\n20\n")
    with pytest.raises(DatasetError, match="bad.txt:2"):
        read_predictions(tmp_path / "bad.txt")


def test_tweeteval_from_shared_data(shared_data, tmp_path):
    if not (shared_data / "tweeteval-emoji" / "train_text.txt").is_file():
        pytest.skip("../shared/data/tweeteval-emoji is absent")
    counts = build(shared_data, tmp_path / "te", catalog="task", extra_intention=False)
    assert counts["train"] + counts["validation"] == 45_000 and counts["test"] == 5_000 and counts["stickers"] == 20
    ds = load_dataset(tmp_path / "te")
    assert not any("\ufe0f" in c.context[0].text for c in ds.split("test"))


@pytest.mark.parametrize("extra", [False, True])
def test_trains_on_unlabelled_tweets_with_and_without_extra_intention(tmp_path, extra):
    from training.config import preset
    from training.trainer import train

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "ds", catalog="task", validation_fraction=0.25)
    cfg = preset("tiny", epochs=2, text_epochs=1, extra_intention=extra, mode="paper" if extra else "fused")
    result = train(cfg, tmp_path / "ds", tmp_path / "run", progress=False)
    first = result["history"][0]
    assert np.isfinite(first["train_loss"]) and np.isfinite(first["val_mAP"])
    # the intention head learns only where labels exist: the extra GoEmotions comments
    assert ("train_int" in first) == extra
    assert "val_intention_accuracy" not in first  # tweets have no labels to score it on


def test_classic_baselines_on_tiny_tweets(tmp_path):
    from training.tweeteval_baselines import baseline_rows, majority_scores, markdown

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "ds", catalog="task", validation_fraction=0.25)
    result = baseline_rows(load_dataset(tmp_path / "ds"), grid=(0.1, 1.0))
    assert result["chosen_C"] in (0.1, 1.0) and result["n_test"] == 5
    (svm_name,) = [n for n in result["rows"] if n.startswith("tfidf-svm")]
    # the words of each label ("love", "lol", "sun"/"beach") are in the test tweets: the SVM beats majority
    assert result["rows"][svm_name]["accuracy"] > result["rows"]["majority"]["accuracy"]
    assert "U+FE0F" in markdown(result)
    assert list(majority_scores(np.array([1, 1, 2]), 2, 3)[0]) == [0.0, 2.0, 1.0]


def test_sdk_protocols_write_the_official_predictions(tiny_bundle, tmp_path):
    from benchmarks.tweeteval import closed_protocol, markdown, open_protocol
    from training.tweeteval_scoring import read_predictions

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "task", catalog="task", validation_fraction=0.25)
    build(src, tmp_path / "full", catalog="full", validation_fraction=0.25)
    closed = closed_protocol(tiny_bundle, tmp_path / "task", tmp_path)
    predicted = read_predictions(tmp_path / "predictions.txt", n_labels=3)
    assert len(predicted) == closed["n"] == 5
    gold = [0, 1, 2, 1, 2]  # val_text's labels, the empty fourth tweet dropped
    assert closed["accuracy"] == pytest.approx(100 * np.mean(np.array(predicted) == np.array(gold)))
    opened = open_protocol(tiny_bundle, tmp_path / "full")
    assert opened["stickers"] == 4 and 0 < opened["mrr"] <= 100 and opened["R@10"] == 100.0
    assert "macro-F1" in markdown({"closed": closed, "open": opened})
    # an app's setting: the usage prior's weight replaced, every other weight the bundle's
    weighted = closed_protocol(tiny_bundle, tmp_path / "task", tmp_path, prior=0.5)
    assert weighted["weights"]["prior_weight"] == 0.5
    assert weighted["weights"]["label_weight"] == closed["weights"]["label_weight"]


def test_label_bias_is_fitted_on_validation_and_carried_by_the_pack(tiny_bundle, tmp_path):
    from benchmarks.tweeteval import closed_protocol, label_bias, main

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "task", catalog="task", validation_fraction=0.25)
    fitted = label_bias(tiny_bundle, tmp_path / "task")
    task_ids = task_sticker_ids(load_dataset(tmp_path / "task").info.details)
    assert list(fitted["bias"]) == task_ids
    assert fitted["validation_macro_f1"]["fitted"] >= fitted["validation_macro_f1"]["plain"]
    assert set(fitted["held_out_halves"]) == {"plain", "bias"}
    # a bias that lifts one emoji far above the rest makes it every prediction, through the SDK's pack
    lifted = closed_protocol(tiny_bundle, tmp_path / "task", tmp_path / "lifted", bias={task_ids[2]: 50.0})
    assert read_predictions(tmp_path / "lifted" / "predictions.txt", n_labels=3) == [2] * lifted["n"]
    CliRunner().invoke(typer_app(main), ["--model", str(tiny_bundle), "--task", str(tmp_path / "task"), "--out",
                                         str(tmp_path / "bench"), "--label-bias"], catch_exceptions=False)
    written = json.loads((tmp_path / "bench" / "tweeteval.json").read_text())
    assert written["label_bias"]["bias"].keys() == fitted["bias"].keys()
    assert "fitted on one half" in (tmp_path / "bench" / "tweeteval.md").read_text()
    # bias.json is what an app builds its pack with: that pack predicts what the benchmark wrote
    assert json.loads((tmp_path / "bench" / "bias.json").read_text()) == written["label_bias"]["bias"]
    import sdk

    pack = sdk.build_pack(tmp_path / "task", tiny_bundle, tmp_path / "app-pack", bias=tmp_path / "bench" / "bias.json",
                          progress=False)
    ranker = sdk.Ranker(tiny_bundle, pack.root, precision=written["closed"]["precision"], providers="cpu")
    column = {s.id: i for i, s in enumerate(ranker.pack.stickers)}
    scores = ranker.score_matrix([c.turns() for c in load_dataset(tmp_path / "task").split("test")])[1]
    app_predicted = scores[:, [column[sid] for sid in task_ids]].argmax(1).tolist()
    assert app_predicted == read_predictions(tmp_path / "bench" / "predictions.txt", n_labels=3)


def test_a_fitted_bias_recovers_a_label_the_scores_never_predict():
    from benchmarks.tweeteval import held_out_gain
    from training.label_bias import fit_label_bias, score_grid
    from training.metrics import macro_f1

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 600)
    scores = rng.normal(0, 0.05, (600, 3)) + 0.2 * np.eye(3)[gold]
    scores[:, 2] -= 0.6  # label 2 is never the argmax
    assert (scores.argmax(1) != 2).all()
    bias = fit_label_bias(scores, gold, grid=score_grid(scores))
    assert macro_f1(gold, (scores + bias).argmax(1)) > macro_f1(gold, scores.argmax(1)) + 20
    gain = held_out_gain(scores, gold)
    assert gain["bias"] > gain["plain"] + 20


def typer_app(function):
    import typer

    app = typer.Typer()
    app.command()(function)
    return app


def tiny_text_model(path: Path, texts: list[str]) -> Path:
    """A 1-layer BERT and its WordPiece tokenizer saved as a local Hugging Face directory."""
    from transformers import BertConfig, BertModel

    from training.encoders import train_wordpiece

    tok = train_wordpiece(texts, 200)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(path))
    tok.save(str(path / "tokenizer.json"))
    return path


def test_fine_tuned_classifier_and_label_bias(tmp_path):
    from training.label_bias import fit_label_bias
    from training.metrics import macro_f1
    from training.tweeteval_baselines import text_and_labels
    from training.tweeteval_classifier import ClassifierConfig, run

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "ds", catalog="task", validation_fraction=0.25)
    texts, _ = text_and_labels(load_dataset(tmp_path / "ds"), "train")
    model = tiny_text_model(tmp_path / "bert", texts)
    cfg = ClassifierConfig(epochs=30, batch_size=8, lr=3e-3, head_lr=3e-2, warmup=0.0)
    result = run(tmp_path / "ds", tmp_path / "clf", cfg, model, progress=False)
    # each label has its own words: the classifier learns them
    assert result["validation"]["plain"]["accuracy"] == 100.0
    assert len(read_predictions(tmp_path / "clf" / "predictions.txt", n_labels=3)) == result["test"]["plain"]["n"] == 5
    assert np.load(tmp_path / "clf" / "test_logits.npy").shape == (5, 3)
    # the bias moves only when it raises validation macro-F1: label 2 starts never predicted
    logits = np.array([[2.0, 0.0, 1.5], [0.0, 2.0, 1.5], [2.0, 0.0, 1.9], [0.0, 2.0, 1.9]])
    gold = np.array([0, 1, 2, 2])
    bias = fit_label_bias(logits, gold)
    assert macro_f1(gold, (logits + bias).argmax(1)) == 100.0 > macro_f1(gold, logits.argmax(1))


def test_numpy_macro_f1_matches_the_official_scorer_and_the_paired_bootstrap():
    from training.metrics import macro_f1, paired_macro_f1

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 20, 400)
    good = np.where(rng.random(400) < 0.6, gold, rng.integers(0, 20, 400))
    bad = np.where(rng.random(400) < 0.2, gold, rng.integers(0, 17, 400))
    assert macro_f1(gold, good) == pytest.approx(official_macro_f1(gold, good), abs=1e-9)
    assert macro_f1(gold, bad) == pytest.approx(official_macro_f1(gold, bad), abs=1e-9)
    far = paired_macro_f1(gold, good, bad, rounds=300)
    assert far["beyond_noise"] and far["interval"][0] > 0
    assert not paired_macro_f1(gold, good, good, rounds=50)["beyond_noise"]


def test_one_table_pairs_every_row_against_int_ra(tiny_bundle, tmp_path):
    from benchmarks.tweeteval import closed_protocol
    from experiments.tweeteval_table import build_table, markdown
    from sdk import atomic
    from sdk.errors import DatasetError

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "task", catalog="task", validation_fraction=0.25)
    benches = [tmp_path / "seed0", tmp_path / "seed1"]
    for bench in benches:  # two seeds of one bundle: equal rows, so their std is 0
        bench.mkdir()
        atomic.write_json(bench / "tweeteval.json", {"closed": closed_protocol(tiny_bundle, tmp_path / "task", bench)})
    gold = np.array([0, 1, 2, 1, 2])
    clf = tmp_path / "clf"
    clf.mkdir()
    np.save(clf / "test_logits.npy", np.eye(3)[gold])  # a classifier that is always right
    atomic.write_json(clf / "result.json", {"label_bias": [0.0, 0.0, 0.0]})
    result = build_table(tmp_path / "task", benches, [clf], rounds=50, intra_setting=benches[:1], setting_name="other",
                         others={"another": benches[1:]}, probe_seeds=2)
    rows = result["rows"]
    assert rows["other"]["reference_minus_row"]["mean"] == 0.0 and set(result["open"]) == set()
    assert rows["another"]["macro_f1"]["seeds"] == 1 and rows["another"]["reference_minus_row"]["mean"] == 0.0
    probe = rows["probe-emoji (frozen MiniLM)"]  # softmax regression on the frozen encoder, one per seed
    assert probe["macro_f1"]["seeds"] == 2 and 0.0 <= probe["accuracy"]["mean"] <= 100.0
    assert probe["mrr"]["mean"] >= 100.0 / 3 - 1e-9  # the gold is never below the last of 3 emoji
    intra = rows["Int-RA (SDK)"]
    assert intra["macro_f1"]["seeds"] == 2 and intra["macro_f1"]["std"] == 0.0
    assert rows["MiniLM classifier, plain"]["macro_f1"]["mean"] == pytest.approx(100.0)
    gap = rows["MiniLM classifier, plain"]["reference_minus_row"]
    assert gap["mean"] == pytest.approx(intra["macro_f1"]["mean"] - 100.0)
    assert "reference_minus_row" not in intra and any(n.startswith("tfidf-svm") for n in rows)
    assert "| Int-RA (SDK) | 2 |" in markdown(result) and "U+FE0F" in markdown(result)
    np.save(clf / "test_logits.npy", np.eye(3)[gold[:4]])
    with pytest.raises(DatasetError, match="test_logits.npy: 4 predictions"):
        build_table(tmp_path / "task", benches, [clf], rounds=10)


def test_speed_rows_time_every_pack_and_precision(tiny_bundle, tmp_path):
    from benchmarks.tweeteval_speed import markdown, pack_speed

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "task", catalog="task", validation_fraction=0.25)
    row = pack_speed(tiny_bundle, tmp_path / "task", "fp32", calls=5, batch=2)
    assert row["stickers"] == 3 and row["precision"] == "fp32" and row["test_contexts"] == 5
    assert row["batch1"]["n"] == 5 and row["batch1"]["p99_ms"] >= row["batch1"]["p50_ms"] > 0
    assert row["contexts_per_second_batch32"] > 0 and row["whole_test_split_seconds"] > 0
    table = markdown({"machine": {"cpu": "test cpu", "cores": 2, "onnxruntime": "x"}, "rows": [row]})
    assert "| 3 emoji | fp32 |" in table and "test cpu" in table


def test_a_student_is_timed_against_its_teacher_in_turn(tiny_bundle, tmp_path):
    from benchmarks.tweeteval_speed import head_to_head, markdown

    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "task", catalog="task", validation_fraction=0.25)
    h = head_to_head({"model": tiny_bundle, "student": tiny_bundle}, tmp_path / "task", calls=5, rounds=2)
    assert set(h["p50_ms"]) == {"model", "student"} and all(0 < v < float("inf") for v in h["p50_ms"].values())
    assert h["precision"]["model"] == h["precision"]["student"]
    table = markdown({"machine": {"cpu": "c", "cores": 2, "onnxruntime": "x"}, "rows": [], "student": h})
    assert f"{h['p50_ms']['model'] / h['p50_ms']['student']:.2f}x faster" in table


def test_unseen_emoji_rows_against_zero_shot(tiny_bundle, tmp_path):
    from experiments.tweeteval_unseen import english_description, markdown, unseen_rows

    assert english_description("two hearts: love, xoxo | 两颗心：爱情") == "two hearts: love, xoxo"
    src = tiny_source(tmp_path / "src")
    build(src, tmp_path / "held", catalog="task", held_out=1, seed=0, validation_fraction=0.25)
    ds = load_dataset(tmp_path / "held")
    texts = [c.context[0].text for c in ds.split("train")] + [s.attributes.get("verbal", "x") for s in ds.stickers]
    encoder = tiny_text_model(tmp_path / "bert", texts)
    # the same bundle as "trained without" and "with": equal rows, a zero gap
    result = unseen_rows(tiny_bundle, tmp_path / "held", tmp_path / "out", seen_model=tiny_bundle, text_model=encoder)
    rows = result["rows"]
    n = len(ds.split("test"))
    assert result["n_test"] == n and all(r["n"] == n for r in rows.values())
    assert rows["Int-RA, trained without them"]["weights"]["prior_weight"] == 0.0  # no usage counts for a new pack
    assert result["mrr_gap_vs_unseen_int_ra"]["Int-RA, trained with them"]["mean"] == 0.0
    assert 0 < rows["zero-shot (frozen MiniLM, descriptions)"]["mrr"] <= 100
    assert "never saw" in markdown(result)
    with pytest.raises(DatasetError, match="no held-out emoji"):
        build(src, tmp_path / "all", catalog="task", validation_fraction=0.25)
        unseen_rows(tiny_bundle, tmp_path / "all", tmp_path / "out2")
