"""What a newcomer meets first: the version, chat-message turns, readable summaries and reprs,
install hints that work from a checkout, and the runtime's dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sdk
from sdk.cli import app
from sdk.context import ContextError, parse_context
from sdk.errors import MissingExtraError
from sdk.gallery import write_gallery
from sdk.why import clip

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.startswith(f"intra {sdk.__version__} (onnxruntime ")


def test_chat_messages_are_contexts(tiny_bundle, tiny_pack, tmp_path):
    messages = [{"role": "user", "content": "I failed the exam"},
                {"role": "assistant", "content": [{"type": "text", "text": "oh no"}, {"type": "image_url", "image_url": {}}]},
                {"role": "user", "content": "but I passed the retake!"}]
    assert parse_context(messages) == ["I failed the exam", "oh no", "but I passed the retake!"]
    with pytest.raises(ContextError, match=r"context\[0\]\.content: expected a string or a list of parts"):
        parse_context([{"role": "user", "content": 5}])
    ranker = sdk.Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    plain = ranker.rank([("user", "I failed the exam"), ("assistant", "oh no"), ("user", "but I passed the retake!")])
    chat = ranker.rank(messages)
    assert [m.sticker_id for m in chat.matches] == [m.sticker_id for m in plain.matches]
    from sdk.gallery import Entry

    page = write_gallery(tmp_path / "g.html", [Entry(messages, chat)], title="chat")
    text = Path(page).read_text(encoding="utf-8")
    assert "but I passed the retake!" in text and ">assistant<" in text


def test_summaries_cut_at_a_word_with_an_ellipsis():
    assert clip("eyes closed in happiness and a very wide grin with teeth") == "eyes closed in happiness and a very…"
    assert clip("a wide smile") == "a wide smile"
    assert len(clip("x" * 100)) == 40


def test_a_pack_prints_in_one_line(tiny_pack):
    shown = repr(sdk.load_pack(tiny_pack))
    assert shown.startswith("Pack(") and "stickers" in shown and "\n" not in shown and len(shown) < 300


def test_the_install_hint_works_from_a_checkout():
    message = str(MissingExtraError("`intra train`", "train", "torch"))
    assert "pip install 'intra[train]'" in message and "pip install -e '.[train]'" in message


def test_regex_is_not_a_runtime_dependency(monkeypatch, tmp_path):
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    runtime = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
    assert runtime is not None and "numpy" in runtime.group(1) and "regex" not in runtime.group(1)
    assert re.search(r'^data = \["regex', text, re.M)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "regex" else real(name, *a))
    out = CliRunner().invoke(app, ["data", "goemoji", "--source", str(tmp_path), "--out", str(tmp_path / "d")])
    assert out.exit_code == 2 and "'data' extra" in out.output and not (tmp_path / "d").exists()


def test_the_front_door_holds_what_apps_use():
    import inspect

    from sdk.ranker import RANKER_OPTIONS

    assert not {"Dataset", "Conversation", "Turn", "Sticker", "load_dataset"} & set(sdk.__all__)
    assert all(hasattr(sdk, name) for name in sdk.__all__)
    # rank()'s typed options are exactly the Ranker's own, so editors and mypy see what the cache passes on
    ranker_params = set(inspect.signature(sdk.Ranker).parameters) - {"model", "pack"}
    assert set(RANKER_OPTIONS) == ranker_params


def test_training_says_how_long_is_left():
    from training.trainer import _time_left

    assert _time_left([{"seconds": 10.0}] * 3, 20) == " | 10 s an epoch, about 3 min left"
    assert _time_left([{"seconds": 10.0}] * 18, 20) == " | 10 s an epoch, about 20 s left"
    assert _time_left([{"seconds": 10.0}] * 20, 20) == ""
    tuned = _time_left([{"seconds": 1400.0}], 8, text_epochs=1)  # a tuned epoch says nothing of the cached ones
    assert "frozen from here" in tuned and "min left" not in tuned
    assert "cached its outputs" in _time_left([{"seconds": 1400.0}, {"seconds": 200.0}], 8, text_epochs=1)
    assert _time_left([{"seconds": 1400.0}, {"seconds": 200.0}, {"seconds": 45.0}], 8, text_epochs=1) == " | 45 s an epoch, about 4 min left"
    # the first of two tuned epochs (the demo's preset) says nothing of the cached ones either
    early = _time_left([{"seconds": 54.0}], 20, text_epochs=2)
    assert "1 more with the text encoder tuned" in early and "min left" not in early


def test_the_quickstart_sticker_folder_builds_as_it_says(tiny_bundle, tmp_path):
    """The descriptions.json and usage.json of docs/quickstart.md, used as they are written there."""
    import json

    from PIL import Image

    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8"), re.S)
    descriptions, usage = (json.loads(b) for b in blocks)
    folder = tmp_path / "my_stickers"
    folder.mkdir()
    for i, name in enumerate(descriptions):
        Image.new("RGB", (32, 32), (40 * i, 90, 200 - 40 * i)).save(folder / name)
    (folder / "descriptions.json").write_text(json.dumps(descriptions))
    (tmp_path / "usage.json").write_text(json.dumps(usage))
    pack = sdk.build_pack(folder, model=tiny_bundle, out=tmp_path / "my_pack", usage=tmp_path / "usage.json",
                          precision="fp32", providers="cpu", progress=False)
    labels = {s.id: s.label for s in pack.stickers}
    assert labels == {"cat-ok": "approval", "crying-dog": "sadness", "party": "excitement"}
    assert pack.usage == {"cat-ok": 120.0, "crying-dog": 14.0, "party": 40.0}
    assert dict(next(s for s in pack.stickers if s.id == "crying-dog").attributes)["verbal"] == "why me"
