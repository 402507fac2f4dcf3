"""A writer of every format killed (SIGKILL) at random points: the next load sees the old or the
new version, whole, and nothing the killed writer made is left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdk.bundle import Bundle
from sdk.dataset import load_dataset
from sdk.history import History
from sdk.pack import load_pack

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is a POSIX signal")

#: each writer writes version 1, 2, 3... to argv[1] forever, saying "ready" after the first
WRITERS = {
    "pack": """
import sys
import numpy as np
from pathlib import Path
from sdk.bundle import sha256_file
from sdk.pack import PackSticker, write_pack
out = Path(sys.argv[1])
src = out.parent.parent / "src"
src.mkdir(exist_ok=True)
files = []
for i in range(30):
    (src / f"{i}.png").write_bytes(bytes([i]) * 50_000)
    files.append(src / f"{i}.png")
stickers = [PackSticker(f"s{i}", f"images/{i}.png", sha256_file(f)) for i, f in enumerate(files)]
k = 1
while True:
    vectors = np.zeros((30, 8), np.float32)
    vectors[:, k % 8] = 1
    write_pack(out, stickers, vectors, files, "f" * 32, {"source_kind": f"v{k}"}, "float32")
    if k == 1:
        print("ready", flush=True)
    k += 1
""",
    "dataset": """
import sys
from pathlib import Path
from PIL import Image
from sdk import atomic
from sdk.dataset import Conversation, DatasetInfo, Sticker, Turn, write_dataset_files
out, k = Path(sys.argv[1]), 1
while True:
    with atomic.atomic_dir(out, "dataset.json", "dataset") as tmp:
        (tmp / "img").mkdir()
        Image.new("RGB", (64, 64), "red").save(tmp / "img" / "a.png")
        convs = [Conversation(f"c{i}", (Turn("A", "so happy " * 50),), "joy", "a") for i in range(1 + k % 5)]
        write_dataset_files(tmp, DatasetInfo(f"v{k}", synthetic=True), [Sticker("a", "img/a.png", "joy")], {"train": convs})
    if k == 1:
        print("ready", flush=True)
    k += 1
""",
    "history": """
import sys
from sdk.history import History
h = History(sys.argv[1])
k = 0
while True:
    h.record(f"s{k % 7}")
    if k == 0:
        print("ready", flush=True)
    k += 1
""",
}


def _whole(kind: str, dest: Path) -> None:
    """Load what the killed writer left at `dest` and check it is one version, whole."""
    if kind == "pack":
        pack = load_pack(dest)
        k = int(pack.meta.source_kind[1:])
        assert (pack.embeddings.argmax(1) == k % 8).all()
    elif kind == "dataset":
        ds = load_dataset(dest)
        k = int(ds.info.name[1:])
        assert len(ds.split("train")) == 1 + k % 5 == ds.info.splits["train"]
    else:
        h = History(dest)
        assert sum(u.count for u in h.uses.values()) == h.clock > 0


def _left_behind(dest: Path) -> list[str]:
    allowed = {dest.name, f".{dest.name}.lock", "src"}  # the history's lock file is its own, kept on purpose
    return sorted(p.name for p in dest.parent.iterdir() if p.name not in allowed)


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_writer_killed_at_random_points_leaves_one_whole_version(tmp_path, kind):
    rng = random.Random(kind)
    dest = tmp_path / "out" / ("history.json" if kind == "history" else kind)
    dest.parent.mkdir()
    for attempt in range(4):
        writer = subprocess.Popen([sys.executable, "-c", WRITERS[kind], str(dest)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        _whole(kind, dest)
        assert _left_behind(dest) == [], f"kill {attempt}"


def test_an_export_killed_midway_leaves_the_earlier_bundle(tiny_run_dir, tiny_bundle, synthetic_dir, tmp_path):
    import shutil

    dest = tmp_path / "out" / "model"
    dest.parent.mkdir()
    shutil.copytree(tiny_bundle, dest)
    before = Bundle(dest, precision="fp32", providers="cpu").fingerprint
    script = ("import sys; from pathlib import Path; from export.exporter import export_run; "
              "print('ready', flush=True); export_run(Path(sys.argv[1]), Path(sys.argv[2]), data=Path(sys.argv[3]), progress=False)")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tiny_run_dir), str(dest), str(synthetic_dir)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".tmp") for p in dest.parent.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the export writes into its temporary directory
    time.sleep(random.Random(0).uniform(0.0, 1.0))
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert Bundle(dest, precision="fp32", providers="cpu").fingerprint == before  # whole: every graph verified
    assert _left_behind(dest) == []
