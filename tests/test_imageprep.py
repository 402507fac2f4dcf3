"""Loading sticker images: bad files, bombs, animation, high bit depth."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdk.imageprep import ImageError, load_image


def _write(path, img, **kw):
    img.save(path, **kw)
    return path


def test_bad_images_raise_image_error(tmp_path):
    good = _write(tmp_path / "ok.png", Image.new("RGB", (20, 20), "red"))
    assert load_image(good).image.size == (20, 20)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="junk.png: not a readable image"):
        load_image(tmp_path / "junk.png")
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png: unreadable or truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="missing.png: image file not found"):
        load_image(tmp_path / "missing.png")
    huge = _write(tmp_path / "huge.png", Image.new("1", (9000, 9000)))
    with pytest.raises(ImageError, match="huge.png: image is too large"):
        load_image(huge)
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    anim = tmp_path / "anim.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(anim)
    assert loaded.animated and "first frame" in loaded.notes[0]
    assert loaded.image.getpixel((0, 0))[0] > 200  # red: the first frame


def test_16_bit_png_is_scaled_not_blank(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    Image.fromarray((ramp // 257).astype(np.uint8)).save(tmp_path / "g8.png")
    wide = np.asarray(load_image(tmp_path / "g16.png").image, dtype=np.int16)
    narrow = np.asarray(load_image(tmp_path / "g8.png").image, dtype=np.int16)
    assert wide.min() == 0 and wide.max() == 255
    assert np.abs(wide - narrow).max() <= 1
