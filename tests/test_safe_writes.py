"""Writers replace only what intra wrote, never the input, and no crash leaves a path empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk import atomic
from sdk.cli import app
from sdk.dataset import load_dataset
from sdk.errors import OutputError

runner = CliRunner()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "sub").mkdir()
    (path / "sub" / "photo.png").write_bytes(b"not really a png")
    return path


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_pack_build_refuses_a_folder_it_did_not_write(tiny_bundle, synthetic_dir, tmp_path):
    target = _user_folder(tmp_path / "mine")
    before = _tree(target)
    result = runner.invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(target),
                                 "--precision", "fp32", "--providers", "cpu"])
    assert result.exit_code == 2 and "is not a pack that intra wrote" in result.output
    assert _tree(target) == before
    with pytest.raises(OutputError, match="not a pack"):
        sdk.build_pack(synthetic_dir, tiny_bundle, target, precision="fp32", providers="cpu", progress=False)
    assert _tree(target) == before


def test_pack_build_refuses_its_own_source_and_folders_inside_it(tiny_bundle, synthetic_dir, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for p in sorted((synthetic_dir / "images").iterdir())[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    before = _tree(folder)
    for out in (folder, folder / "pack", tmp_path):
        result = runner.invoke(app, ["pack", "build", str(folder), "--model", str(tiny_bundle), "--out", str(out),
                                     "--precision", "fp32", "--providers", "cpu"])
        assert result.exit_code == 2, (out, result.output)
        assert "input" in result.output
    with pytest.raises(OutputError, match="input"):  # the bundle is an input too
        sdk.build_pack(folder, tiny_bundle, tiny_bundle, precision="fp32", providers="cpu", progress=False)
    assert _tree(folder) == before


def test_merge_refuses_writing_over_one_of_its_shards(tiny_bundle, synthetic_dir, tmp_path):
    a = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "a", shard=(0, 2), precision="fp32", providers="cpu", progress=False)
    b = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "b", shard=(1, 2), precision="fp32", providers="cpu", progress=False)
    before = _tree(a.root)
    result = runner.invoke(app, ["pack", "merge", str(a.root), str(b.root), "--out", str(a.root)])
    assert result.exit_code == 2 and "input" in result.output
    assert _tree(a.root) == before
    sdk.merge_packs([a.root, b.root], tmp_path / "merged")
    assert len(sdk.load_pack(tmp_path / "merged")) == len(a) + len(b)
    # a pack over a pack is fine: that is the writer's own kind
    sdk.merge_packs([a.root, b.root], tmp_path / "merged")


def test_dataset_writer_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    target = _user_folder(tmp_path / "mine")
    before = _tree(target)
    result = runner.invoke(app, ["data", "synthetic", "--out", str(target), "--stickers", "28", "--conversations", "40"])
    assert result.exit_code == 2 and "is not a dataset that intra wrote" in result.output
    assert _tree(target) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    ok = runner.invoke(app, ["data", "synthetic", "--out", str(empty), "--stickers", "28", "--conversations", "40"])
    assert ok.exit_code == 0 and load_dataset(empty).stickers
    again = runner.invoke(app, ["data", "synthetic", "--out", str(empty), "--stickers", "28", "--conversations", "40", "--seed", "1"])
    assert again.exit_code == 0 and load_dataset(empty).info.name == "synthetic-seed1"


def test_export_refuses_a_folder_that_is_not_a_bundle(tiny_run_dir, synthetic_dir, tmp_path):
    from export.cli import app as export_app

    target = _user_folder(tmp_path / "mine")
    before = _tree(target)
    result = runner.invoke(export_app, [str(tiny_run_dir), "--out", str(target), "--data", str(synthetic_dir)])
    assert result.exit_code == 2 and "is not a model bundle that intra wrote" in result.output
    result = runner.invoke(export_app, [str(tiny_run_dir), "--out", str(tiny_run_dir / "model"), "--data", str(synthetic_dir)])
    assert result.exit_code == 2 and "input" in result.output
    assert _tree(target) == before and not (tiny_run_dir / "model").exists()


def test_the_swap_is_one_exchange(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("from a")
    (b / "x").write_text("from b")
    if not atomic.exchange(a, b):
        pytest.skip("this kernel or filesystem has no renameat2(RENAME_EXCHANGE); the fallback is tested below")
    assert (a / "x").read_text() == "from b" and (b / "x").read_text() == "from a"


def test_a_writer_killed_between_the_two_renames_loses_nothing(tiny_pack, tmp_path):
    """Where the exchange is missing, the old pack is renamed away first: a writer killed right
    then leaves no pack at the path. The next load puts it back."""
    pack = tmp_path / "pack"
    sdk.merge_packs([tiny_pack], pack)
    ids = sdk.load_pack(pack).ids
    code = f"""
import os, sys
from sdk import atomic, pack as packmod
atomic.exchange = lambda a, b: False
real = os.replace
def replace(src, dst):
    real(src, dst)
    if str(src).endswith("pack") and ".old-" in str(dst):
        os._exit(9)  # killed between the two renames
atomic.os.replace = replace
packmod.merge_packs([{str(tiny_pack)!r}], {str(pack)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert not pack.exists() and any(p.name.startswith(".pack.old-") for p in tmp_path.iterdir())
    assert sdk.load_pack(pack).ids == ids  # recovered on load
    sdk.merge_packs([tiny_pack], pack)  # the next write clears what the killed writer left
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]


def test_leftovers_of_killed_writers_are_removed_on_the_next_write(tiny_pack, tmp_path):
    pack = tmp_path / "pack"
    sdk.merge_packs([tiny_pack], pack)
    dead = _dead_pid()
    orphans = [tmp_path / f".pack.{dead}.abcd.tmp", tmp_path / f".pack.old-{dead}"]
    live = tmp_path / ".pack.1.efgh.tmp"  # pid 1 is alive: its writer may still be working
    for d in (*orphans, live):
        d.mkdir()
        (d / "junk").write_text("x")
    sdk.merge_packs([tiny_pack], pack)
    assert not any(d.exists() for d in orphans) and live.exists()
    assert sdk.load_pack(pack).ids == sdk.load_pack(tiny_pack).ids


def test_a_failed_write_leaves_the_old_directory_and_no_leftovers(tiny_pack, tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    sdk.merge_packs([tiny_pack], pack)
    before = _tree(pack)
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        sdk.merge_packs([tiny_pack], pack)
    assert _tree(pack) == before and [p.name for p in tmp_path.iterdir()] == ["pack"]


def test_outputs_that_are_files_or_links_are_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(OutputError, match="not a directory"):
        atomic.check_output(f, "pack.json", "pack")
    link = tmp_path / "link"
    os.symlink(tmp_path, link)
    with pytest.raises(OutputError, match="symbolic link"):
        atomic.check_output(link, "pack.json", "pack")
    assert f.read_text() == "keep me" and json.dumps(sorted(p.name for p in tmp_path.iterdir())) == '["file", "link"]'


def _web_app(path: Path, marker: str) -> Path:
    """A folder that merely holds a file named like intra's marker: every web app has a manifest.json."""
    (path / "src").mkdir(parents=True)
    (path / marker).write_text('{"name": "my app"}')
    (path / "index.html").write_text("<html></html>")
    (path / "src" / "app.js").write_text("console.log(1)")
    return path


def test_a_marker_file_name_does_not_make_a_folder_ours(tiny_run_dir, tiny_bundle, synthetic_dir, tmp_path):
    from export.cli import app as export_app

    for marker, argv in (("manifest.json", None), ("pack.json", ["pack", "build", str(synthetic_dir), "--model",
                         str(tiny_bundle), "--precision", "fp32", "--providers", "cpu", "--out"]),
                         ("dataset.json", ["data", "synthetic", "--stickers", "28", "--conversations", "40", "--out"])):
        target = _web_app(tmp_path / marker, marker)
        before = _tree(target)
        if argv is None:
            result = runner.invoke(export_app, [str(tiny_run_dir), "--out", str(target), "--data", str(synthetic_dir)])
        else:
            result = runner.invoke(app, [*argv, str(target)])
        assert result.exit_code == 2 and "that intra wrote" in result.output, (marker, result.output)
        assert _tree(target) == before


def test_our_own_output_is_replaced_but_not_once_a_user_adds_to_it(tmp_path):
    dest = tmp_path / "pack"
    for version in ("one", "two"):
        with atomic.atomic_dir(dest, "pack.json", "pack") as tmp:
            (tmp / "pack.json").write_text(version)
            (tmp / "images").mkdir()
    assert (dest / "pack.json").read_text() == "two"
    record = json.loads((dest / atomic.OWNED_FILE).read_text())
    assert record["kind"] == "pack" and record["entries"] == ["images", "pack.json"]
    (dest / ".precision-abc.json").write_text("{}")  # a runtime cache the writer declares its own
    atomic.check_output(dest, "pack.json", "pack", own=[".precision-*.json"])
    (dest / "images" / "mine.png").write_bytes(b"x")  # the user's file inside our folder
    with pytest.raises(OutputError, match="did not write there: .precision-abc.json, images/mine.png"):
        atomic.check_output(dest, "pack.json", "pack")
    with pytest.raises(OutputError, match="does not record a model bundle"):
        atomic.check_output(dest, "manifest.json", "model bundle")


def test_a_bundle_with_an_older_runtimes_precision_verdict_is_re_exported(tiny_run_dir, synthetic_dir, tmp_path):
    from export.exporter import export_run as export

    out = tmp_path / "bundle"
    export(tiny_run_dir, out, precisions=("fp32", "int8"), data=synthetic_dir, progress=False)
    sdk.Bundle(out, providers="cpu")  # the precision verdict goes to the user cache, not the bundle
    assert not list(out.glob(".precision-*"))
    (out / ".precision-0123456789abcdef.json").write_text('{"precision": "int8"}')  # as runtimes before the cache left it
    export(tiny_run_dir, out, precisions=("fp32", "int8"), data=synthetic_dir, progress=False)
    assert (out / "manifest.json").is_file() and not list(out.glob(".precision-*"))


def test_a_usage_file_inside_the_output_is_refused_and_kept(tiny_bundle, synthetic_dir, tmp_path):
    pack = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    counts = pack.root / "counts.json"
    counts.write_text(json.dumps({pack.stickers[0].id: 3}))
    with pytest.raises(OutputError, match="holds the input"):
        sdk.build_pack(synthetic_dir, tiny_bundle, pack.root, precision="fp32", providers="cpu", progress=False, usage=counts)
    assert json.loads(counts.read_text()) == {pack.stickers[0].id: 3}


def test_a_writer_never_swaps_in_vectors_its_reader_refuses(tiny_pack, tmp_path):
    from sdk.pack import PackError, write_pack

    pack = sdk.load_pack(tiny_pack)
    before = _tree(tiny_pack)
    bad = np.asarray(pack.embeddings, np.float32).copy()
    bad[1] = np.nan
    with pytest.raises(PackError, match="row 1 contains NaN.*nothing was written"):
        write_pack(tiny_pack, pack.stickers, bad, None, pack.meta.fingerprint)
    assert _tree(tiny_pack) == before
    sdk.load_pack(tiny_pack)


def test_non_finite_numbers_in_a_settings_object_are_refused():
    from sdk.imageprep import ImageError, ImageSettings

    obj = {"image_size": 32, "mean": [0.5, 0.5, 0.5], "std": [float("nan"), 0.5, 0.5], "resize": "bicubic-square"}
    with pytest.raises(ImageError, match="std.*finite"):
        ImageSettings.from_json(obj, "manifest.json: image", ImageError)


def test_temporary_files_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    dead, alive = tmp_path / f".h.json.{_dead_pid()}.x1.tmp", tmp_path / f".h.json.{os.getpid()}.x2.tmp"
    other = tmp_path / f".other.json.{_dead_pid()}.x3.tmp"
    for p in (dead, alive, other):
        p.write_text("half a file")
    atomic.write_json(tmp_path / "h.json", {"a": 1})
    assert not dead.exists() and alive.exists() and other.exists()  # only this file's, only dead writers'
    assert json.loads((tmp_path / "h.json").read_text()) == {"a": 1}
