"""Turn a sticker image into the vision encoder's input: shared by training and the SDK.

Stickers are shown whole: the image is resized to a square (no crop), composited on white when
it has transparency, scaled to [0, 1] and normalised with the encoder's mean and std. An animated
sticker (GIF, WebP, TGS, WebM) also gives the few frames that represent it (:mod:`sdk.animation`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .animation import EBML_MAGIC, FRAMES, GZIP_MAGIC, pillow_frames, tgs_frames, webm_frames
from .errors import IntraError
from .schema import Int, ListOf, Obj, OneOf, check

log = logging.getLogger("intra")
MAX_IMAGE_PIXELS = 64_000_000
#: each side is bounded too: a 1 x 64,000,000 PNG is within the pixel cap but decodes one huge row
MAX_IMAGE_SIDE = 16_384
#: the formats a sticker can be; Pillow identifies files by content, and the others (EPS, which
#: would reach Ghostscript, PSD, TIFF...) are never opened, whatever the file is named
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


class ImageError(IntraError, ValueError):
    """A sticker image cannot be used: the message names the file and the cause."""


_TRIPLE = ListOf(float, 3, 3)
IMAGE_SETTINGS_SCHEMA = Obj({"image_size": Int(8, 2048), "mean": _TRIPLE, "std": _TRIPLE, "resize": OneOf(("bicubic-square",))})


@dataclass(frozen=True)
class ImageSettings:
    """How images become pixel arrays; travels in the run config and the bundle."""

    image_size: int = 64
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resize: str = "bicubic-square"

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError]) -> ImageSettings:
        """Parse and check the JSON form; `error` names `where` and the field at fault."""
        check(obj, IMAGE_SETTINGS_SCHEMA, where, error)
        if min(obj["std"]) <= 0:
            raise error(f"{where}: field 'std' must be > 0")
        mean, std = (tuple(float(v) for v in obj[k]) for k in ("mean", "std"))
        return cls(obj["image_size"], (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), obj["resize"])

    def to_json(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std), "resize": self.resize}


@dataclass
class LoadedImage:
    """A sticker as RGB on white: its first frame, and for an animated one the frames that
    represent it (the first, the middle and the last; the image alone for a still)."""

    image: Image.Image
    animated: bool = False
    notes: list[str] = field(default_factory=list)
    frames: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.frames:
            self.frames = [self.image]


def _to_8bit(img: Image.Image) -> Image.Image:
    """High-bit-depth grayscale (16-bit "I;16*", 32-bit "I", float "F") scaled to 8 bits.

    Pillow's own conversion clips these to 0..255, which turns a 16-bit image white.
    """
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = 1.0 if np.nanmax(arr, initial=0.0) <= 1.0 else 255.0
        return Image.fromarray(np.clip(np.nan_to_num(arr) / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "I" or img.mode.startswith("I;16"):
        arr = np.asarray(img).astype(np.int64)
        # a 16-bit PNG opens as "I" in recent Pillow: its range, not its mode, tells the depth
        top = 65535 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255
        return Image.fromarray((np.clip(arr, 0, top) * 255 // top).astype(np.uint8), "L")
    return img


def _check_size(path: Path, w: int, h: int) -> None:
    """Refuse, before decoding, an image whose sides or pixel count would take a device down."""
    if max(w, h) > MAX_IMAGE_SIDE or w * h > MAX_IMAGE_PIXELS:
        raise ImageError(f"{path}: image is too large ({w}x{h} pixels; the limits are {MAX_IMAGE_SIDE:,} a side "
                         f"and {MAX_IMAGE_PIXELS:,} in all)")


def _upright(img: Image.Image, path: Path) -> Image.Image:
    """The image turned as its EXIF orientation says (a phone photo is stored on its side)."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception as e:  # a malformed EXIF block can raise anything from Pillow's parser: keep the pixels
        log.warning("%s: EXIF orientation unreadable (%s); using the image as stored", path, type(e).__name__)
        return img


def _on_white(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (how a chat shows a sticker)."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except OSError as e:
        raise ImageError(f"{path}: unreadable image ({e})") from None


def _animated(path: Path, frames: list[Image.Image], count: int, kind: str) -> LoadedImage:
    flat = [_on_white(f) for f in frames]
    note = f"{path.name}: animated {kind} ({count} frames looked at), represented by {len(flat)} of them"
    return LoadedImage(flat[0], True, [note], flat)


def load_image(path: Path | str, frames: int = FRAMES) -> LoadedImage:
    """Open a sticker as RGB on white: PNG, JPEG, GIF or WebP, and TGS or WebM with their extras
    (:mod:`sdk.animation`); an animated one also gives the `frames` frames that represent it
    (1: its first alone). ImageError for unreadable, truncated or huge files."""
    path = Path(path)
    head = _head(path)
    if head.startswith(GZIP_MAGIC):
        return _animated(path, *tgs_frames(path, frames), "TGS")
    if head.startswith(EBML_MAGIC):
        return _animated(path, *webm_frames(path, lambda w, h: _check_size(path, w, h), frames), "WebM")
    return _load_with_pillow(path, frames)


def _load_with_pillow(path: Path, frames: int) -> LoadedImage:
    def flatten(frame: Image.Image) -> Image.Image:
        return _on_white(_to_8bit(_upright(frame, path)))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as img:
                _check_size(path, *img.size)
                if getattr(img, "is_animated", False):
                    return _animated(path, *pillow_frames(img, flatten, frames), img.format or "image")
                img.load()
                return LoadedImage(flatten(img))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (intra reads {', '.join(IMAGE_FORMATS)}, and TGS and "
                         "WebM with their extras)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None
    except (OSError, EOFError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None


def to_pixels(image: Image.Image, settings: ImageSettings) -> np.ndarray:
    """(3, S, S) float32 array, normalised."""
    s = settings.image_size
    raw = np.asarray(image.convert("RGB").resize((s, s), Image.Resampling.BICUBIC), dtype=np.float32) / np.float32(255.0)
    normalised = (raw - np.asarray(settings.mean, dtype=np.float32)) / np.asarray(settings.std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


def load_pixels(path: Path | str, settings: ImageSettings) -> np.ndarray:
    """load_image + to_pixels."""
    return to_pixels(load_image(path).image, settings)
