"""Animated stickers: GIF, WebP, TGS and WebM give their first, middle and last frames, bounded."""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np
import pytest
from PIL import Image

from sdk import animation
from sdk.imageprep import ImageError, load_image
from sdk.labels import ATTRIBUTES
from sdk.pack_build import per_sticker

COLOURS = ("red", "yellow", "lime", "cyan", "blue")  # frame i; 0, 2 and 4 represent the sticker


def _rgb(img):
    return img.getpixel((8, 8))[:3]


def _frames():
    return [Image.new("RGB", (16, 16), c) for c in COLOURS]


def lottie(frames: int = 30, size: int = 64) -> dict:
    """A red square that fades in: transparent (white on the chat) at the first frame, red at the last."""
    opacity = {"a": 1, "k": [{"t": 0, "s": [0], "i": {"x": [1], "y": [1]}, "o": {"x": [0], "y": [0]}}, {"t": frames - 1, "s": [100]}]}
    layer = {"ddd": 0, "ind": 1, "ty": 1, "sc": "#ff0000", "sw": size, "sh": size, "ip": 0, "op": frames, "st": 0,
             "ks": {"o": opacity, "r": {"a": 0, "k": 0}, "p": {"a": 0, "k": [size / 2, size / 2, 0]},
                    "a": {"a": 0, "k": [size / 2, size / 2, 0]}, "s": {"a": 0, "k": [100, 100, 100]}}}
    return {"v": "5.5.2", "fr": 30, "ip": 0, "op": frames, "w": size, "h": size, "ddd": 0, "assets": [], "layers": [layer]}


def write_webm(path, colours=COLOURS, size=32):
    import av

    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libvpx-vp9", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for c in colours:
            frame = av.VideoFrame.from_image(Image.new("RGB", (size, size), c))
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_gif_and_webp_give_first_middle_and_last(tmp_path, fmt):
    path = tmp_path / f"anim.{fmt.lower()}"
    frames = _frames()
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    loaded = load_image(path)
    assert loaded.animated and len(loaded.frames) == 3 and f"animated {fmt} (5 frames" in loaded.notes[0]
    got = [_rgb(f) for f in loaded.frames]
    assert got[0][0] > 200 > got[0][2] and got[2][2] > 200 > got[2][0]  # red first, blue last
    assert loaded.image is loaded.frames[0] and not load_image(_still(tmp_path)).animated
    assert len(load_image(path, frames=1).frames) == 1  # the first frame alone, when asked


def _still(tmp_path):
    path = tmp_path / "still.png"
    Image.new("RGB", (16, 16), "red").save(path)
    return path


def test_frame_spread_and_the_decoding_bound(tmp_path, monkeypatch):
    assert animation.spread(1) == [0] and animation.spread(2) == [0, 1] and animation.spread(25) == [0, 12, 24]
    path = tmp_path / "long.gif"
    frames = _frames() * 4  # 20 frames
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    monkeypatch.setattr(animation, "MAX_DECODED_PIXELS", 16 * 16 * 5)  # room for 5 frames of 16 x 16
    loaded = load_image(path)
    assert "(5 frames looked at)" in loaded.notes[0] and _rgb(loaded.frames[-1])[2] > 200  # frame 4: blue


def test_a_tgs_sticker_is_rendered_with_its_extra(tmp_path):
    pytest.importorskip("rlottie_python", reason="the 'tgs' extra (rlottie-python) is not installed")
    path = tmp_path / "fade.tgs"
    path.write_bytes(gzip.compress(json.dumps(lottie()).encode()))
    loaded = load_image(path)
    assert loaded.animated and len(loaded.frames) == 3 and "animated TGS (31 frames" in loaded.notes[0]  # rlottie counts frames 0 to 30
    first, last = _rgb(loaded.frames[0]), _rgb(loaded.frames[-1])
    assert min(first) > 240  # transparent on the first frame: white, as a chat shows it
    assert last[0] > 200 and last[1] < 60  # red once faded in: a first frame alone would have missed it


def test_a_tgs_that_decompresses_to_gigabytes_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.tgs"
    path.write_bytes(gzip.compress(b" " * 2_000_000))
    monkeypatch.setattr(animation, "MAX_LOTTIE_BYTES", 1_000_000)
    with pytest.raises(ImageError, match="bomb.tgs: TGS sticker decompresses to more than 1,000,000 bytes"):
        load_image(path)
    (tmp_path / "cut.tgs").write_bytes(path.read_bytes()[:40])
    with pytest.raises(ImageError, match="cut.tgs: unreadable TGS sticker"):
        load_image(tmp_path / "cut.tgs")


def test_a_webm_sticker_is_decoded_with_its_extra_and_bounded(tmp_path, monkeypatch):
    pytest.importorskip("av", reason="the 'webm' extra (PyAV) is not installed")
    path = write_webm(tmp_path / "clip.webm")
    loaded = load_image(path)
    assert loaded.animated and len(loaded.frames) == 3 and "animated WebM (5 frames" in loaded.notes[0]
    assert _rgb(loaded.frames[0])[0] > 180 and _rgb(loaded.frames[-1])[2] > 180  # red first, blue last (lossy)
    monkeypatch.setattr(animation, "MAX_VIDEO_FRAMES", 3)  # a file may claim a million frames
    assert "(3 frames looked at)" in load_image(path).notes[0]
    (tmp_path / "cut.webm").write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageError, match="cut.webm"):
        load_image(tmp_path / "cut.webm")


@pytest.mark.parametrize("module, suffix, extra", [("rlottie_python", "tgs", "tgs"), ("av", "webm", "webm")])
def test_a_missing_decoder_names_its_extra(tmp_path, monkeypatch, module, suffix, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    path = tmp_path / f"s.{suffix}"
    path.write_bytes(gzip.compress(json.dumps(lottie()).encode()) if suffix == "tgs" else animation.EBML_MAGIC + b"\0" * 60)
    with pytest.raises(ImageError, match=rf"needs the '{extra}' extra .*pip install -e '\.\[{extra}\]'"):
        load_image(path)


def test_frames_are_pooled_into_one_unit_vector_per_sticker():
    vecs = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], np.float32)  # sticker 0: three frames, sticker 1: one
    shares = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], np.float32)
    pooled, pooled_shares = per_sticker(vecs, shares, np.array([0, 0, 0, 1]), 2)
    assert np.allclose(pooled[0], np.array([2, 1]) / np.sqrt(5)) and np.allclose(pooled[1], [0.6, 0.8])
    assert np.allclose(pooled_shares, [[2 / 3, 1 / 3], [0.5, 0.5]])
    same, none = per_sticker(vecs, None, np.arange(4), 4)
    assert same is vecs and none is None


def test_a_pack_holds_the_mean_of_an_animated_stickers_frames(tiny_bundle, tmp_path):
    import sdk
    from sdk.imageprep import to_pixels

    folder = tmp_path / "stickers"
    folder.mkdir()
    frames = _frames()
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (16, 16), "red").save(folder / "still.png")
    pack = sdk.build_pack(folder, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    bundle = sdk.Bundle(tiny_bundle, precision="fp32", providers="cpu")
    shown = load_image(folder / "anim.gif").frames
    each, _ = bundle.sticker_side(np.stack([to_pixels(f, bundle.image_settings) for f in shown]), [[""] * len(ATTRIBUTES)] * len(shown))
    mean = each.mean(0) / np.linalg.norm(each.mean(0))
    row = pack.embeddings[pack.ids.index("anim")]
    assert np.allclose(row, mean, atol=2e-3) and not np.allclose(row, each[0], atol=2e-3)
    assert any("animated GIF" in n for n in pack.stickers[pack.ids.index("anim")].notes)
