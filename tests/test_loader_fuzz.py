"""Every format's loader, fed arbitrary JSON and arbitrary edits of a valid file, raises only that
format's IntraError (never another exception) and leaves the file as it was."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import JSON_VALUES, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.bundle import Bundle, BundleError
from sdk.dataset import DatasetError, load_dataset
from sdk.history import History, HistoryError
from sdk.manifest import seal
from sdk.pack import PackError, load_pack

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _history(root: Path) -> Path:
    h = History(root / "history.json")
    for sid in ("a", "b", "a"):
        h.record(sid)
    return root


#: format: (its file, how a valid copy is made from the fixtures, its loader, its error)
FORMATS: dict[str, tuple[str, Callable[..., Path], Callable[[Path], Any], type[Exception]]] = {
    "pack.json": ("pack.json", lambda f, dest: shutil.copytree(f["pack"], dest), lambda r: load_pack(r), PackError),
    "manifest.json": ("manifest.json", lambda f, dest: shutil.copytree(f["bundle"], dest),
                      lambda r: Bundle(r, precision="fp32", providers="cpu"), BundleError),
    "history": ("history.json", lambda f, dest: _history(Path(dest)), lambda r: History(r / "history.json"), HistoryError),
    "dataset.json": ("dataset.json", lambda f, dest: shutil.copytree(f["dataset"], dest), lambda r: load_dataset(r), DatasetError),
}


@pytest.fixture(scope="module")
def valid_copies(tiny_pack, tiny_bundle, synthetic_dir, tmp_path_factory) -> dict[str, Path]:
    fixtures = {"pack": tiny_pack, "bundle": tiny_bundle, "dataset": synthetic_dir}
    out = {}
    for name, (_, make, _, _) in FORMATS.items():
        dest = tmp_path_factory.mktemp("fuzz") / "copy"
        if name == "history":
            dest.mkdir()
        make(fixtures, dest)
        out[name] = dest
    return out


def _load_once(name: str, root: Path, text: str) -> None:
    file, _, load, error = FORMATS[name]
    (root / file).write_text(text, encoding="utf-8")
    try:
        load(root)
    except error:
        pass  # refused with the format's own error; anything else fails the test
    assert (root / file).read_text(encoding="utf-8") == text  # a loader never rewrites what it refused


@pytest.mark.parametrize("name", list(FORMATS))
@given(value=JSON_VALUES)
@FUZZ
def test_arbitrary_json_gives_only_the_formats_error(valid_copies, name, value):
    root = valid_copies[name]
    original = (root / FORMATS[name][0]).read_text(encoding="utf-8")
    try:
        _load_once(name, root, json.dumps(value))
    finally:
        (root / FORMATS[name][0]).write_text(original, encoding="utf-8")


@pytest.mark.parametrize("name", list(FORMATS))
@given(data=st.data())
@FUZZ
def test_arbitrary_edits_of_a_valid_file_give_only_the_formats_error(valid_copies, name, data):
    root = valid_copies[name]
    file = FORMATS[name][0]
    original = (root / file).read_text(encoding="utf-8")
    doc = mutate(json.loads(original), data)
    if name == "manifest.json" and isinstance(doc, dict) and data.draw(st.booleans()):
        doc["seal"] = seal(doc)  # a careful forger: the edit reaches the checks behind the seal
    try:
        _load_once(name, root, json.dumps(doc, ensure_ascii=data.draw(st.booleans())))
    finally:
        (root / file).write_text(original, encoding="utf-8")
