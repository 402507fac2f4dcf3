from collections import Counter

import pytest

from sdk.dataset import load_dataset
from sdk.labels import LABELS
from training.data.goemoji import emoji_clusters, normalize_key, pick_label, strip_emoji


@pytest.mark.parametrize("text,clusters", [
    ("Good job homie 👍🏻", ["👍🏻"]),
    ("family 👨‍👩‍👧 time", ["👨‍👩‍👧"]),
    ("love ❤️ it ❤", ["❤️", "❤"]),
    ("flags 🇺🇸🇬🇧", ["🇺🇸", "🇬🇧"]),
    ("keycap #️⃣ and 🧑🏽‍💻!", ["#️⃣", "🧑🏽‍💻"]),
    ("no emoji here, just text :)", []),
    ("中文😂笑死", ["😂"]),
])
def test_grapheme_clusters(text, clusters):
    assert [c for _, _, c in emoji_clusters(text)] == clusters


def test_strip_and_normalize():
    assert strip_emoji("Good job 👍🏻homie ❤️") == "Good job homie"
    assert normalize_key("👍🏻") == "👍"
    assert normalize_key("❤️") == normalize_key("❤")
    assert normalize_key("🧑🏽‍💻") == "🧑‍💻"


def test_multi_label_rule():
    assert pick_label([27]) == "neutral"
    assert pick_label([27, 15, 1]) == "amusement"


def test_goemoji_from_shared_data(shared_data, tmp_path):
    from training.data.goemoji import build

    counts = build(shared_data, tmp_path / "ge")
    ds = load_dataset(tmp_path / "ge")
    assert len(ds.stickers) == 646 == counts["stickers"]  # the shared catalog: 641 Noto emoji + 5 for TweetEval
    ids = set(ds.sticker_ids)
    for split in ("train", "validation", "test"):
        convs = ds.split(split)
        assert convs and all(c.sticker_id in ids for c in convs)
        assert not any(emoji_clusters(c.context[0].text) for c in convs)
    n = sum(len(ds.split(s)) for s in ("train", "validation", "test"))
    assert 850 <= n <= 1000  # about 950 comments of this copy of GoEmotions contain an emoji
    assert counts["with_emoji"] == n + counts.get("dropped_no_catalog_emoji", 0) + counts.get("dropped_empty_context", 0)
    assert len(ds.split("extra_intention")) > 40000
    assert ds.info.synthetic is False and "several_emoji" in ds.info.details["rules"]
    # the most used reply image on Reddit: face with tears of joy
    top = Counter(c.sticker_id for c in ds.split("train")).most_common(1)[0][0]
    assert top == "emoji-1f602"
    assert {c.label for c in ds.split("train")} <= set(LABELS)
    # attributes follow the subcategories: faces describe expressions, hands gestures
    by_id = {s.id: s for s in ds.stickers}
    assert "facial_expression" in by_id["emoji-1f602"].attributes
    assert "gesture" in by_id["emoji-1f44d"].attributes
    assert "笑" in by_id["emoji-1f602"].attributes["facial_expression"]


def test_goemoji_validation_is_deterministic_per_seed(shared_data, tmp_path):
    from training.data.goemoji import build

    build(shared_data, tmp_path / "a", seed=1)
    build(shared_data, tmp_path / "b", seed=1)
    assert (tmp_path / "a" / "validation.jsonl").read_bytes() == (tmp_path / "b" / "validation.jsonl").read_bytes()


def test_goemoji_names_a_wrong_source(tmp_path):
    from sdk.errors import DatasetError
    from training.data.goemoji import build

    with pytest.raises(DatasetError, match="train.tsv: not found"):
        build(tmp_path / "src", tmp_path / "out")
