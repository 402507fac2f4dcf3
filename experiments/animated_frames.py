"""Question: does an animated sticker ranked by three of its frames (first, middle, last) beat the same
sticker ranked by its first frame alone?

``python -m experiments.animated_frames --model BUNDLE --data DIR --out docs/results/animated-frames.md``
turns every sticker of a synthetic world into an animated GIF of two kinds an app meets,
in a copy of the dataset:

- **pop-in**: the sticker grows from 15% of its size to full size over the first half of
  12 frames, then holds (the first frame is a small dot of it);
- **tilt**: the sticker tilts from +25 degrees to -25 degrees over 12 frames, upright in the
  middle.

For each kind it builds one pack with `frames=1` and one with `frames=3`, ranks the test split
through `sdk.Ranker` against each, and pairs the per-conversation reciprocal ranks (MRR) with a
bootstrap. The still images' pack is the reference the animations are judged against.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer
from PIL import Image

from sdk import atomic
from sdk.bundle import Bundle
from sdk.dataset import CATALOG_FILE, load_dataset
from sdk.pack_build import build_pack
from sdk.ranker import Ranker
from training.metrics import gold_ranks, paired_difference

FRAME_COUNT = 12


def pop_in(img: Image.Image, i: int) -> Image.Image:
    scale = 0.15 + 0.85 * min(1.0, i / (FRAME_COUNT / 2))
    w, h = img.size
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    frame = Image.new("RGB", img.size, "white")
    frame.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    return frame


def tilt(img: Image.Image, i: int) -> Image.Image:
    angle = 25.0 * (1 - 2 * i / (FRAME_COUNT - 1))
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor="white")


ANIMATIONS: dict[str, Callable[[Image.Image, int], Image.Image]] = {"pop-in": pop_in, "tilt": tilt}


def animated_copy(data: Path, out: Path, frame: Callable[[Image.Image, int], Image.Image]) -> Path:
    """A copy of dataset `data` whose sticker images are animated GIFs made by `frame`."""
    shutil.copytree(data, out)
    records = []
    for line in (data / CATALOG_FILE).read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        with Image.open(data / rec["image"]) as still:
            still = still.convert("RGB")
        gif = Path(rec["image"]).with_suffix(".gif")
        frames = [frame(still, i) for i in range(FRAME_COUNT)]
        frames[0].save(out / gif, save_all=True, append_images=frames[1:], duration=80, loop=0)
        (out / rec["image"]).unlink()
        records.append(json.dumps({**rec, "image": gif.as_posix()}, ensure_ascii=False))
    (out / CATALOG_FILE).write_text("\n".join(records) + "\n", encoding="utf-8")
    return out


def reciprocal_ranks(bundle: Bundle, data: Path, pack_dir: Path, frames: int) -> np.ndarray:
    """1 / rank of the gold sticker for every test conversation, through the SDK."""
    build_pack(data, bundle, pack_dir, progress=False, frames=frames)
    ranker = Ranker(bundle, pack_dir)
    convs = load_dataset(data, splits=["test"]).split("test")
    column = {sid: j for j, sid in enumerate(ranker.pack.ids)}
    _, scores = ranker.score_matrix([c.turns() for c in convs], [c.knowledge_dict() for c in convs])
    return 1.0 / gold_ranks(scores, np.array([column[c.gold] for c in convs]))


def animated_frames(model: Path, data: Path, rounds: int = 2000) -> dict[str, Any]:
    """MRR of the still pack, and of each animation with one and with three frames, paired."""
    bundle = Bundle(model, providers="cpu")
    with tempfile.TemporaryDirectory(prefix="intra-frames-") as tmp:
        still = reciprocal_ranks(bundle, data, Path(tmp) / "still-pack", 1)
        rows: dict[str, Any] = {}
        for name, frame in ANIMATIONS.items():
            copy = animated_copy(data, Path(tmp) / name, frame)
            one, three = (reciprocal_ranks(bundle, copy, Path(tmp) / f"{name}-{f}", f) for f in (1, 3))
            rows[name] = {"first frame": 100 * float(one.mean()), "three frames": 100 * float(three.mean()),
                          "three minus first": paired_difference(100 * three, 100 * one, rounds=rounds)}
    return {"model": str(model), "data": str(data), "precision": bundle.precision, "n_test": len(still),
            "still_mrr": 100 * float(still.mean()), "animations": rows}


def markdown(r: dict[str, Any]) -> str:
    lines = ["# Animated stickers: three frames or the first alone", "",
             f"{r['n_test']} test conversations of the synthetic world, ranked through `sdk.Ranker` ({r['precision']}); "
             f"MRR in percent. The still images give {r['still_mrr']:.1f}. Each sticker animated over "
             f"{FRAME_COUNT} frames (see `experiments/animated_frames.py`).", "",
             "| animation | first frame | three frames | three minus first (paired 95%) |", "| --- | --- | --- | --- |"]
    for name, row in r["animations"].items():
        d = row["three minus first"]
        lines.append(f"| {name} | {row['first frame']:.1f} | {row['three frames']:.1f} | {d['mean']:+.1f} "
                     f"({d['interval'][0]:+.1f} to {d['interval'][1]:+.1f}){' beyond noise' if d['beyond_noise'] else ', within noise'} |")
    lines += ["", "Command: `python -m experiments.animated_frames --model BUNDLE --data DIR --out FILE.md`", ""]
    return "\n".join(lines)


def main(model: Path = typer.Option(..., "--model", help="A bundle trained on the synthetic world."),
         data: Path = typer.Option(..., "--data", help="The synthetic world's dataset directory."),
         out: Path = typer.Option(..., "--out", help="Markdown file to write (a .json beside it holds the figures)."),
         rounds: int = typer.Option(2000, "--rounds", help="Bootstrap resamples.")) -> None:
    """Rank animated stickers by their first frame and by three frames, on the synthetic world."""
    result = animated_frames(model, data, rounds)
    atomic.write_json(out.with_suffix(".json"), result)
    atomic.write_text(out, markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
