"""Who said each turn: the speakers an app passes, which turns are the user's own, the markers a
model trained with them reads, and the same ids in training and in the SDK."""

import json

import numpy as np
import pytest

from sdk.context import ContextError, own_turns, parse_context, parse_turns
from sdk.errors import ArgumentError, IntraError
from sdk.textprep import SPEAKER_MARKERS, ContextTokenizer, TextSettings, alternating

CHAT = [("A", "I failed the exam"), ("B", "oh no"), ("A", "but I passed the retake!")]


def test_turns_keep_their_speakers_in_every_accepted_form():
    assert parse_turns(CHAT) == list(CHAT)
    assert parse_turns([{"speaker": "A", "text": "hi"}, {"role": "user", "content": [{"type": "text", "text": "yo"}]},
                        "plain", {"text": "no one"}]) == [("A", "hi"), ("user", "yo"), (None, "plain"), (None, "no one")]
    assert parse_context(CHAT) == [t for _, t in CHAT]
    with pytest.raises(ContextError, match=r"context\[0\].speaker"):
        parse_turns([{"speaker": 3, "text": "hi"}])


def test_own_turns_default_to_the_newest_speaker_and_follow_me():
    speakers = [s for s, _ in CHAT]
    assert own_turns(speakers) == [True, False, True]  # A said the newest turn: A replies
    assert own_turns(speakers, me="B") == [False, True, False]
    assert own_turns(speakers, me="C") == [False, False, False]  # the user has not spoken yet
    assert own_turns([None, None, None]) == alternating(3) == [True, False, True]
    assert own_turns([None, None]) == [False, True]
    with pytest.raises(ContextError, match="me"):
        own_turns(speakers, me=1)  # type: ignore[arg-type]


def test_markers_travel_in_the_settings_and_leave_unmarked_settings_as_they_were():
    marked = TextSettings(speaker_markers=SPEAKER_MARKERS)
    assert marked.to_json()["speaker_markers"] == list(SPEAKER_MARKERS)
    assert TextSettings.from_json(json.loads(json.dumps(marked.to_json())), "m", IntraError) == marked
    # an unmarked model's settings keep their older form, so the fingerprints of its bundles hold
    assert TextSettings().to_json() == {"max_length": 64, "turn_separator": "[SEP]", "truncation_side": "left"}
    with pytest.raises(IntraError, match="speaker_markers"):
        TextSettings.from_json({**marked.to_json(), "speaker_markers": ["me:"]}, "m", IntraError)


def test_a_marked_tokenizer_reads_who_said_each_turn(tiny_run_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_run_dir / "tokenizer.json"))
    plain = ContextTokenizer(tok, TextSettings())
    marked = ContextTokenizer(tok, TextSettings(speaker_markers=SPEAKER_MARKERS))
    texts = [t for _, t in CHAT]
    assert plain.context_string(texts, [True, False, True]) == plain.context_string(texts)
    assert marked.context_string(texts, [True, False, True]) == "me: I failed the exam [SEP] them: oh no [SEP] me: but I passed the retake!"
    assert marked.context_string(texts) == marked.context_string(texts, alternating(3))
    mine, theirs = marked.encode_contexts([texts, texts], own=[[True, False, True], [False, True, False]])[0]
    assert not np.array_equal(mine, theirs)
    for tokenizer in (plain, marked):  # a flag list of another length is refused, never zipped short
        with pytest.raises(ArgumentError, match="own marks 2 turns, the context has 3"):
            tokenizer.context_string(texts, [True, False])


def test_a_model_trained_with_markers_ranks_by_who_speaks_and_the_sdk_reads_as_training(synthetic_dir, tmp_path):
    import torch

    import sdk
    from export.exporter import export_run
    from sdk.dataset import load_dataset
    from training.config import preset
    from training.model_inputs import context_batch, refresh_label_table
    from training.run_dir import load_run
    from training.trainer import train

    train(preset("tiny", epochs=1, speaker_markers="on"), synthetic_dir, tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "model", data=synthetic_dir, progress=False, precisions=("fp32",))
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["text"]["speaker_markers"] == list(SPEAKER_MARKERS)
    sdk.build_pack(synthetic_dir, tmp_path / "model", tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    ranker = sdk.Ranker(tmp_path / "model", tmp_path / "pack", precision="fp32", providers="cpu")
    # the SDK reads a dataset conversation's (speaker, text) turns into the ids training read
    model, tokenizer, _, _ = load_run(tmp_path / "run")
    refresh_label_table(model, tokenizer)
    convs = list(load_dataset(synthetic_dir).split("test")[:8])
    ids, mask = context_batch(convs, tokenizer, use_knowledge=False)
    parsed, _, own = ranker._rows([c.turns() for c in convs], None)
    sdk_ids, _ = ranker.bundle.tokenizer.encode_contexts(parsed, None, own)
    assert np.array_equal(ids.numpy(), sdk_ids)
    with torch.no_grad():
        _, torch_q = model.query(model.encode_text(ids, mask))
    _, sdk_q = ranker.query([c.turns() for c in convs])
    assert np.allclose(torch_q.numpy(), sdk_q, atol=1e-4)
    # who replies changes the query; unnamed turns alternate back from the newest, the user's
    as_a, as_b = ranker.query([CHAT], me="A")[1], ranker.query([CHAT], me="B")[1]
    assert not np.allclose(as_a, as_b)
    assert np.allclose(ranker.query([CHAT])[1], as_a, atol=1e-6)
    assert np.allclose(ranker.query([[t for _, t in CHAT]])[1], as_a, atol=1e-6)
    assert sdk.rank(CHAT, tmp_path / "pack", me="B", precision="fp32", providers="cpu").matches


def test_markers_are_on_by_default_where_training_chats_have_several_speakers(synthetic_dir, tiny_bundle):
    from sdk.dataset import Conversation, Turn
    from training.config import ConfigError, preset
    from training.trainer import marks_speakers

    class OneSpeaker:  # a dataset whose every chat has one speaker (tweets, comments)
        def split(self, name):
            return [Conversation(id=f"c{i}", context=(Turn("user", "hi"), Turn("user", "again")), label=None, sticker_id="s") for i in range(3)]

    from sdk.dataset import load_dataset

    world = load_dataset(synthetic_dir)
    assert marks_speakers(preset("tiny"), world) and not marks_speakers(preset("tiny"), OneSpeaker())
    assert not marks_speakers(preset("tiny", speaker_markers="off"), world)
    assert marks_speakers(preset("tiny", speaker_markers="on"), OneSpeaker())
    with pytest.raises(ConfigError, match="speaker_markers"):
        preset("tiny", speaker_markers="yes")
    # the session's tiny bundle was trained on the world with the default: its manifest says so
    assert json.loads((tiny_bundle / "manifest.json").read_text())["text"]["speaker_markers"] == list(SPEAKER_MARKERS)


def test_an_unmarked_bundle_ignores_me(synthetic_dir, tmp_path):
    import sdk
    from export.exporter import export_run
    from training.config import preset
    from training.trainer import train

    train(preset("tiny", epochs=1, speaker_markers="off"), synthetic_dir, tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "model", data=synthetic_dir, progress=False, precisions=("fp32",))
    assert "speaker_markers" not in json.loads((tmp_path / "model" / "manifest.json").read_text())["text"]
    sdk.build_pack(synthetic_dir, tmp_path / "model", tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    ranker = sdk.Ranker(tmp_path / "model", tmp_path / "pack", precision="fp32", providers="cpu")
    assert np.array_equal(ranker.query([CHAT], me="A")[1], ranker.query([CHAT], me="B")[1])


def test_a_config_may_say_true_or_false_for_markers():
    from training.config import TrainConfig

    assert TrainConfig.from_dict({"speaker_markers": False}).speaker_markers == "off"
    assert TrainConfig.from_dict({"speaker_markers": True}).speaker_markers == "on"
