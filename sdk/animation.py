"""Animated stickers: which frames stand for one, and the decoders of the formats Pillow lacks.

Real sticker platforms ship animations: Telegram's packs are animated WebP, TGS (gzipped Lottie
JSON) and WebM video; WhatsApp's are animated WebP; GIF is everywhere. An animated sticker is
represented by a few frames (:data:`FRAMES`: the first, the middle and the last), whose sticker
vectors the pack builder averages, so a sticker that fades in or ends on its punchline is not
judged by a blank first frame alone.

- GIF and animated WebP: Pillow (always installed).
- TGS: rlottie-python, the ``tgs`` extra. The gzip stream is read up to
  :data:`MAX_LOTTIE_BYTES` (a small file may decompress to gigabytes) and rendered at most
  :data:`MAX_RENDER_SIDE` pixels a side.
- WebM: PyAV, the ``webm`` extra. At most :data:`MAX_VIDEO_FRAMES` frames are decoded (a file
  may claim a million).

Every decoder is bounded in what it decodes; a missing extra raises ImageError naming it.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from PIL import Image

#: how many frames represent an animated sticker: the first, the middle and the last
FRAMES = 3
#: decoded pixels spent finding the middle and the last frame of a GIF or WebP (a GIF of 10^6
#: frames is cut there: its frames after the bound are never decoded)
MAX_DECODED_PIXELS = 256_000_000
#: the largest Lottie JSON a TGS may decompress to (Telegram's own limit is 64 KB compressed)
MAX_LOTTIE_BYTES = 16_000_000
MAX_RENDER_SIDE = 512
MAX_VIDEO_FRAMES = 600
GZIP_MAGIC = b"\x1f\x8b"
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska / WebM


def spread(count: int, frames: int = FRAMES) -> list[int]:
    """Indices of `frames` frames spread over `count` (first, middle, last), without repeats."""
    if count <= 1 or frames <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (frames - 1)) for i in range(frames)})


def pillow_frames(img: Image.Image, flatten: Callable[[Image.Image], Image.Image],
                  frames: int = FRAMES) -> tuple[list[Image.Image], int]:
    """The spread frames of an animated Pillow image (each flattened), and how many frames were
    looked at: counting stops at MAX_DECODED_PIXELS."""
    limit = max(1, MAX_DECODED_PIXELS // max(1, img.size[0] * img.size[1]))
    count = 1
    while count < limit:
        try:
            img.seek(count)
        except EOFError:
            break
        count += 1
    shown = []
    for index in spread(count, frames):
        img.seek(index)
        img.load()
        shown.append(flatten(img))
    return shown, count


def _missing(path: Path, kind: str, extra: str, package: str) -> Exception:
    from .imageprep import ImageError

    return ImageError(f"{path}: a {kind} sticker needs the '{extra}' extra ({package}): pip install -e '.[{extra}]'")


def read_lottie(path: Path) -> str:
    """The Lottie JSON of a TGS file, refused when it decompresses beyond MAX_LOTTIE_BYTES."""
    from .imageprep import ImageError

    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_LOTTIE_BYTES + 1)
    except (OSError, EOFError) as e:
        raise ImageError(f"{path}: unreadable TGS sticker ({e})") from None
    if len(data) > MAX_LOTTIE_BYTES:
        raise ImageError(f"{path}: TGS sticker decompresses to more than {MAX_LOTTIE_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ImageError(f"{path}: TGS sticker is not UTF-8 Lottie JSON") from None


def tgs_frames(path: Path, frames: int = FRAMES) -> tuple[list[Image.Image], int]:
    """The spread frames of a TGS sticker as RGBA images, and its frame count."""
    from .imageprep import ImageError

    try:
        from rlottie_python import LottieAnimation
    except ImportError:
        raise _missing(path, "TGS", "tgs", "rlottie-python") from None
    anim = LottieAnimation.from_data(read_lottie(path))
    try:
        count = int(anim.lottie_animation_get_totalframe())
        w, h = anim.lottie_animation_get_size()
        if count < 1 or w < 1 or h < 1:
            raise ImageError(f"{path}: TGS sticker has no frames to draw ({count} frames, {w}x{h})")
        scale = min(1.0, MAX_RENDER_SIDE / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return [anim.render_pillow_frame(frame_num=i, width=size[0], height=size[1]).convert("RGBA")
                for i in spread(count, frames)], count
    finally:
        anim.lottie_animation_destroy()


def _decode_video(path: Path, check_size: Callable[[int, int], None], keep: set[int] | None) -> tuple[list[Image.Image], int]:
    """One pass over the first video stream: the frames whose index is in `keep` (RGBA), and how
    many frames there are, counting at most MAX_VIDEO_FRAMES and MAX_DECODED_PIXELS."""
    import av

    from .imageprep import ImageError

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ImageError(f"{path}: WebM file has no video stream")
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        check_size(w, h)
        limit = min(MAX_VIDEO_FRAMES, max(1, MAX_DECODED_PIXELS // max(1, w * h)))
        kept, count = [], 0
        for frame in container.decode(stream):
            if keep is not None and count in keep:
                kept.append(frame.to_image().convert("RGBA"))
            count += 1
            if count >= limit:
                break
    return kept, count


def webm_frames(path: Path, check_size: Callable[[int, int], None], frames: int = FRAMES) -> tuple[list[Image.Image], int]:
    """The spread frames of a WebM sticker's first video stream (RGBA), and how many frames were
    looked at (two bounded passes: one counts, one keeps); `check_size` vets the frame size first."""
    from .imageprep import ImageError

    try:
        import av
    except ImportError:
        raise _missing(path, "WebM", "webm", "PyAV") from None
    try:
        _, count = _decode_video(path, check_size, None)
        if count == 0:
            raise ImageError(f"{path}: WebM sticker has no frames")
        shown, _ = _decode_video(path, check_size, set(spread(count, frames)))
    except ImageError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise ImageError(f"{path}: unreadable WebM sticker ({e})") from None
    return shown, count
