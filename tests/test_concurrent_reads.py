"""A pack rebuilt in one process while another loads and ranks from it: never a mix of two builds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sdk import dirread
from sdk.bundle import Bundle, sha256_file
from sdk.pack import PackSticker, load_pack, write_pack
from sdk.ranker import Ranker

STICKERS = 40
#: the rebuilding process: build k has every vector equal to basis vector k % dim and says k in pack.json
REBUILD = """
import sys, time
import numpy as np
from pathlib import Path
from sdk.bundle import sha256_file
from sdk.pack import PackSticker, write_pack
out, src, fingerprint, dim, seconds, pause = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
files = sorted(src.iterdir())
stickers = [PackSticker(f"s{i}", f"images/{i:03d}.png", sha256_file(f), None) for i, f in enumerate(files)]
end, k = time.monotonic() + seconds, 1
while time.monotonic() < end:
    vectors = np.zeros((len(files), dim), np.float32)
    vectors[:, k % dim] = 1
    write_pack(out, stickers, vectors, files, fingerprint, {"source_kind": f"build-{k}"}, "float32")
    k += 1
    time.sleep(pause)
print(k - 1)
"""


def _build(k: int, dim: int) -> np.ndarray:
    vectors = np.zeros((STICKERS, dim), np.float32)
    vectors[:, k % dim] = 1
    return vectors


def _whole(pack) -> bool:
    """The vectors are the ones of the build pack.json names."""
    k = int(pack.meta.source_kind.split("-")[1])
    return bool((pack.embeddings.argmax(1) == k % pack.embeddings.shape[1]).all())


@pytest.mark.parametrize("handle", [True, False], ids=["dir-handle", "no-dir-handle"])
def test_a_reader_sees_one_whole_build_while_another_process_rebuilds(tiny_bundle, tmp_path, monkeypatch, handle):
    """The writer rebuilds in a loop (a real rebuild also embeds every image, so it pauses a little
    between builds: 50 ms here; 200 ms without a directory handle, as on Windows, where a reader
    retries whenever a swap meets it). A reader that meets the deletion of the build it was
    reading reads the next one."""
    monkeypatch.setattr(dirread, "_DIR_FD", handle and dirread._DIR_FD)
    bundle = Bundle(tiny_bundle, precision="fp32", providers="cpu")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(STICKERS):  # sticker files are hashed on load: the files are what a reader reads most
        (src / f"{i:03d}.png").write_bytes(bytes([i]) * 20_000)
    files = sorted(src.iterdir())
    stickers = [PackSticker(f"s{i}", f"images/{i:03d}.png", sha256_file(f), None) for i, f in enumerate(files)]
    out = tmp_path / "pack"
    write_pack(out, stickers, _build(0, bundle.manifest.dim), files, bundle.fingerprint, {"source_kind": "build-0"}, "float32")
    writer = subprocess.Popen([sys.executable, "-c", REBUILD, str(out), str(src), bundle.fingerprint,
                               str(bundle.manifest.dim), "6", "0.05" if handle else "0.2"], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    loads, mixed, errors, builds = 0, 0, [], set()
    end = time.monotonic() + 8
    while writer.poll() is None and time.monotonic() < end:
        verify = loads % 2 == 0
        try:
            pack = load_pack(out, verify=verify)
            ranker = Ranker(bundle, pack)
            assert ranker.rank("so happy today", top_k=3).matches
        except Exception as e:  # any error here is a false one: every build on disk is whole
            errors.append(f"verify={verify}: {type(e).__name__}: {e}")
            continue
        finally:
            loads += 1
        mixed += not _whole(pack)
        builds.add(pack.meta.source_kind)
    rebuilt = int(writer.communicate(timeout=60)[0].strip() or 0)
    assert writer.returncode == 0
    assert not errors, errors[:3]
    assert mixed == 0
    assert rebuilt > 5 and loads > 20 and len(builds) > 3  # the two really overlapped
