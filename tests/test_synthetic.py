import hashlib
import json
from collections import Counter
from pathlib import Path

from sdk.dataset import load_dataset
from sdk.labels import LABELS
from training.data.synthetic import SyntheticConfig, generate
from training.data.synthetic_spec import EXPRESSIONS


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    cfg = SyntheticConfig(seed=7, stickers=30, conversations=60)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    generate(tmp_path / "c", SyntheticConfig(seed=8, stickers=30, conversations=60))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_every_label_has_stickers_and_training_conversations(synthetic_dir):
    ds = load_dataset(synthetic_dir)
    assert Counter(s.label for s in ds.stickers).keys() == set(LABELS)
    assert {c.label for c in ds.split("train")} == set(LABELS)
    for conv in ds.split("train"):
        gold = ds.stickers[ds.sticker_index()[conv.sticker_id]]
        assert gold.label == conv.label
        assert 2 <= len(conv.context) <= 8


def test_world_is_bilingual_varied_and_says_it_is_synthetic(synthetic_dir):
    ds = load_dataset(synthetic_dir)
    assert ds.info.synthetic is True and "SYNTHETIC" in ds.info.notes and ds.info.details["generator"]["seed"] == 3
    assert (synthetic_dir / "SYNTHETIC.txt").is_file()
    convs = [c for split in ("train", "validation", "test") for c in ds.split(split)]
    chinese = [c for c in convs if any("\u4e00" <= ch <= "\u9fff" for ch in c.context[-1].text)]
    assert 0.2 < len(chinese) / len(convs) < 0.6
    # The same intention is worded in several ways, and earlier turns often voice another
    # intention: a lookup of the whole context's words cannot simply read the label off.
    by_label = {}
    for c in convs:
        by_label.setdefault(c.label, set()).add(c.context[-1].text)
    assert min(len(v) for v in by_label.values()) >= 3
    phrases = {p: label for label, (en, zh) in EXPRESSIONS.items() for p in (*en, *zh)}
    distracted = sum(1 for c in convs if any(p in t.text and phrases[p] != c.label for t in c.context[:-1] for p in phrases))
    assert distracted / len(convs) > 0.2
    # Attributes are masked where a part is not drawn: not every sticker has every attribute.
    counts = Counter(k for s in ds.stickers for k in s.attributes)
    assert counts["facial_expression"] == len(ds.stickers)
    assert 0 < counts["verbal"] < len(ds.stickers) and 0 < counts["gesture"] < len(ds.stickers)


def test_images_are_real_drawings(synthetic_dir):
    import numpy as np
    from PIL import Image

    ds = load_dataset(synthetic_dir)
    arrays = [np.asarray(Image.open(ds.image_path(s)).convert("RGB"), dtype=np.float32) for s in ds.stickers[:10]]
    assert all(a.shape == (96, 96, 3) and a.std() > 10 for a in arrays)
    assert len({a.tobytes() for a in arrays}) == 10


def test_counts_in_metadata(synthetic_dir):
    info = json.loads((synthetic_dir / "dataset.json").read_text())
    assert info["stickers"] == 56 and sum(info["splits"].values()) == 800
