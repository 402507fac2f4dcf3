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
    assert loaded.animated and "animated GIF" in loaded.notes[0] and len(loaded.frames) == 2
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


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored on its side (orientation 6: turn 90 degrees clockwise) is shown upright."""
    stored = Image.new("RGB", (40, 20), "white")
    stored.paste(Image.new("RGB", (10, 20), "red"), (0, 0))  # the red band is the photo's top
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _write(tmp_path / "phone.jpg", stored, exif=exif.tobytes(), quality=95)
    upright = load_image(path).image
    assert upright.size == (20, 40)
    assert upright.getpixel((10, 2))[1] < 80 and upright.getpixel((10, 37))[1] > 200  # red on top now
    assert load_image(_write(tmp_path / "plain.jpg", stored, quality=95)).image.size == (40, 20)


def test_a_long_thin_image_is_refused_before_it_is_decoded(tmp_path):
    """Inside the pixel cap, but one side beyond any sticker: refused from its header."""
    path = _write(tmp_path / "thin.png", Image.new("1", (1, 20_000)))
    with pytest.raises(ImageError, match="thin.png: image is too large .*16,384 a side"):
        load_image(path)


def test_only_sticker_formats_are_opened(tmp_path):
    """Pillow identifies by content: a TIFF or EPS named .png is refused, never handed to its decoder."""
    img = Image.new("RGB", (16, 16), "blue")
    img.save(tmp_path / "tiff.png", format="TIFF")
    (tmp_path / "eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n")
    for name in ("tiff.png", "eps.png"):
        with pytest.raises(ImageError, match=f"{name}: not a readable image .*PNG, JPEG, GIF, WEBP, and TGS and WebM"):
            load_image(tmp_path / name)
    for fmt in ("PNG", "JPEG", "GIF", "WEBP"):
        img.save(tmp_path / f"ok.{fmt.lower()}", format=fmt)
        assert load_image(tmp_path / f"ok.{fmt.lower()}").image.size == (16, 16)
