import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk import atomic
from sdk.dataset import Conversation, DatasetInfo, Sticker, Turn, load_dataset, write_dataset_files
from sdk.errors import DatasetError


def _tiny(root: Path) -> Path:
    """A two-sticker dataset, written as intra's writers write one (so they may replace it)."""
    from PIL import Image

    root.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_dir(root, "dataset.json", "dataset") as tmp:
        (tmp / "img").mkdir()
        Image.new("RGB", (8, 8), "red").save(tmp / "img" / "a.png")
        Image.new("RGB", (8, 8), "blue").save(tmp / "img" / "b.png")
        stickers = [Sticker("a", "img/a.png", "joy", {"facial_expression": "big smile"}), Sticker("b", "img/b.png", "sadness")]
        convs = [Conversation("c1", (Turn("A", "hi"), Turn("B", "so happy")), "joy", "a",
                              knowledge={"xReact": ("happy",)}),
                 Conversation("c2", (Turn("A", "bad day"),), "sadness", "b")]
        write_dataset_files(tmp, DatasetInfo("tiny", synthetic=True), stickers, {"train": convs, "test": convs[:1]})
    return root


def test_round_trip(tmp_path):
    ds = load_dataset(_tiny(tmp_path / "d"))
    assert ds.sticker_ids == ("a", "b")
    assert ds.split("train")[0].knowledge == {"xReact": ("happy",)}
    assert ds.split("train")[1].context == (Turn("A", "bad day"),)
    assert ds.info.splits == {"train": 2, "test": 1} and ds.info.stickers == len(ds.stickers)
    with pytest.raises(DatasetError, match="split 'validation' not present"):
        ds.split("validation")


def _edit_line(path: Path, line: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[line - 1])
    change(obj)
    lines[line - 1] = json.dumps(obj, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


CASES = [
    ("train.jsonl", 2, lambda o: o.update(sticker_id="zzz"), r"train.jsonl:2: field 'sticker_id': unknown sticker id 'zzz'"),
    ("train.jsonl", 1, lambda o: o.update(label="happyish"), r"train.jsonl:1: field 'label': unknown label 'happyish'"),
    ("train.jsonl", 1, lambda o: o.update(context=[]), r"train.jsonl:1: field 'context' is empty"),
    ("train.jsonl", 1, lambda o: o.update(context=[{"speaker": "A", "text": "   "}]), r"train.jsonl:1: field 'context' is empty"),
    ("train.jsonl", 1, lambda o: o.update(context="hello"), r"train.jsonl:1: field 'context' must be list"),
    ("train.jsonl", 2, lambda o: o.update(label=""), r"train.jsonl:2: field 'label' is empty"),
    ("train.jsonl", 2, lambda o: o.update(label="happy"), r"train.jsonl:2: field 'label'"),
    ("train.jsonl", 2, lambda o: o.update(id="c1"), r"train.jsonl:2: field 'id': duplicate conversation id 'c1'"),
    ("train.jsonl", 1, lambda o: o.update(knowledge={"xFeel": ["x"]}), r"train.jsonl:1: field 'knowledge': unknown relation 'xFeel'"),
    ("stickers.jsonl", 2, lambda o: o.update(image="img/missing.png"), r"stickers.jsonl:2: field 'image': file 'img/missing.png' not found"),
    ("stickers.jsonl", 2, lambda o: o.update(image="../../etc/passwd"), r"stickers.jsonl:2: field 'image': path '../../etc/passwd' escapes"),
    ("stickers.jsonl", 1, lambda o: o.update(label="glee"), r"stickers.jsonl:1: field 'label': unknown label 'glee'"),
    ("stickers.jsonl", 1, lambda o: o.update(attributes={"colour": "red"}), r"stickers.jsonl:1: field 'attributes': unknown attribute 'colour'"),
    ("stickers.jsonl", 2, lambda o: o.update(id="a"), r"stickers.jsonl:2: field 'id': duplicate sticker id 'a'"),
]


@pytest.mark.parametrize("file,line,change,message", CASES)
def test_each_bad_input_names_file_line_and_field(tmp_path, file, line, change, message):
    root = _tiny(tmp_path / "d")
    _edit_line(root / file, line, change)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace("?", r"\?")):
        load_dataset(root)


def test_a_missing_label_is_unlabelled_except_in_intention_only_data(tmp_path):
    root = _tiny(tmp_path / "d")
    _edit_line(root / "train.jsonl", 2, lambda o: o.pop("label"))
    convs = load_dataset(root).split("train")
    assert convs[1].label is None and convs[0].label is not None
    assert "label" not in convs[1].to_json()
    (root / "extra_intention.jsonl").write_text(json.dumps({"id": "x1", "context": [{"speaker": "A", "text": "hi"}]}) + "\n")
    with pytest.raises(DatasetError, match=r"extra_intention.jsonl:1: field 'label' is missing"):
        load_dataset(root)


def test_bad_utf8_and_bad_json(tmp_path):
    root = _tiny(tmp_path / "d")
    path = root / "train.jsonl"
    data = path.read_bytes().split(b"\n")
    data[1] = data[1].replace(b"bad day", b"bad \xff day")
    path.write_bytes(b"\n".join(data))
    with pytest.raises(DatasetError, match=r"train.jsonl:2: not valid UTF-8"):
        load_dataset(root)
    path.write_text('{"id": "c1", "context": [\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"train.jsonl:1: invalid JSON"):
        load_dataset(root)


def test_missing_or_foreign_directory(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset directory"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="dataset.json: not found"):
        load_dataset(tmp_path / "empty")
    root = _tiny(tmp_path / "d")
    (root / "dataset.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DatasetError, match="'format_version' is 99"):
        load_dataset(root)


def test_intention_only_data_has_no_sticker(tmp_path):
    root = _tiny(tmp_path / "d")
    (root / "extra_intention.jsonl").write_text(json.dumps({"id": "x", "context": [{"speaker": "u", "text": "yay"}], "label": "joy", "sticker_id": "a"}) + "\n")
    with pytest.raises(DatasetError, match="extra_intention.jsonl:1: field 'sticker_id' is not allowed"):
        load_dataset(root)
    (root / "extra_intention.jsonl").write_text(json.dumps({"id": "x", "context": [{"speaker": "u", "text": "yay"}], "label": "joy"}) + "\n")
    assert load_dataset(root).split("extra_intention")[0].sticker_id is None


def test_atomic_dir_keeps_the_old_directory_on_failure(tmp_path):
    dest = _tiny(tmp_path / "d")
    before = sorted(p.name for p in dest.iterdir())
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(dest, "dataset.json", "dataset") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in dest.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    load_dataset(dest)


def test_synthetic_generation_failure_keeps_existing_dataset(tmp_path, monkeypatch):
    from training.data import synthetic

    dest = _tiny(tmp_path / "d")
    monkeypatch.setattr(synthetic, "write_dataset_files", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        synthetic.generate(dest, synthetic.SyntheticConfig(stickers=28, conversations=40))
    assert load_dataset(dest).info.name == "tiny"


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(turns=st.lists(st.tuples(text, text), min_size=0, max_size=5), label=st.sampled_from(["joy", "sadness", "nope"]))
def test_loader_either_loads_exactly_or_raises_dataset_error(tmp_path_factory, turns, label):
    root = _tiny(tmp_path_factory.mktemp("h") / "d")
    rec = {"id": "h1", "context": [{"speaker": s, "text": t} for s, t in turns], "sticker_id": "a", "label": label}
    (root / "test.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    valid = label != "nope" and any(t.strip() for _, t in turns)
    if not valid:
        with pytest.raises(DatasetError, match=r"test.jsonl:1"):
            load_dataset(root)
        return
    conv = load_dataset(root).split("test")[0]
    assert [t.text for t in conv.context] == [t for _, t in turns if t.strip()]
