"""The built-in synthetic sticker world: drawn stickers and bilingual conversations, per seed.

Every sticker is a drawn character (cat, bear, bunny, frog or robot) whose face, hands, body and
caption follow its intention's :data:`LOOKS` entry, with random colours, sizes and occasional
features borrowed from another intention. Conversations have 2-8 turns of English or Chinese; the
sender's last turn carries the intention in varied wording, earlier turns are small talk and
distractors voicing other intentions, and some mention a character kind, the cue for which sticker
of the intention the sender picks. Everything written says it is synthetic.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from sdk import atomic
from sdk.dataset import INFO_FILE, Conversation, DatasetInfo, Sticker, Turn, write_dataset_files
from sdk.errors import ArgumentError
from sdk.labels import KNOWLEDGE_RELATIONS, LABELS

from .synthetic_spec import EXPRESSIONS, FEATURE_WORDS, KNOWLEDGE, LOOKS, SMALL_TALK, SPECIES, SPECIES_MENTIONS, WRAPS, Look

IMAGE_SIZE = 96
SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}


@dataclass(frozen=True)
class SyntheticConfig:
    """How big a synthetic world to draw."""

    seed: int = 0
    stickers: int = 140
    conversations: int = 3000
    chinese_fraction: float = 0.4
    knowledge_fraction: float = 0.8
    knowledge_noise: float = 0.25


# ---------------------------------------------------------------------------- drawing

def _hsv(rng: random.Random, sat: tuple[float, float], val: tuple[float, float]) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return int(r * 255), int(g * 255), int(b * 255)


def _draw_eyes(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float) -> None:
    ink = (20, 20, 20)
    for side in (-1, 1):
        x, y, e = cx + side * r * 0.38, cy - r * 0.15, r * 0.13
        if kind == "dots":
            d.ellipse([x - e * 0.6, y - e * 0.6, x + e * 0.6, y + e * 0.6], fill=ink)
        elif kind == "happy":
            d.arc([x - e, y - e, x + e, y + e], 200, 340, fill=ink, width=2)
        elif kind in ("half", "closed"):
            d.line([x - e, y, x + e, y], fill=ink, width=2)
            if kind == "half":
                d.chord([x - e, y - e * 0.2, x + e, y + e], 0, 180, fill=ink)
        elif kind == "uneven":
            s = e * (1.2 if side < 0 else 0.5)
            d.ellipse([x - s, y - s, x + s, y + s], outline=ink, width=2)
        elif kind in ("wide", "tears"):
            d.ellipse([x - e, y - e, x + e, y + e], fill="white", outline=ink, width=2)
            d.ellipse([x - e * 0.4, y - e * 0.4, x + e * 0.4, y + e * 0.4], fill=ink)
            if kind == "tears":
                d.polygon([(x, y + e), (x - e * 0.6, y + e * 2.4), (x + e * 0.6, y + e * 2.4)], fill=(60, 140, 255))
        elif kind == "hearts":
            d.ellipse([x - e, y - e, x, y], fill=(230, 30, 60))
            d.ellipse([x, y - e, x + e, y], fill=(230, 30, 60))
            d.polygon([(x - e, y - e * 0.4), (x + e, y - e * 0.4), (x, y + e)], fill=(230, 30, 60))
        elif kind == "stars":
            pts = [(x + (e * 1.2 if k % 2 == 0 else e * 0.5) * math.cos(k * math.pi / 5 - math.pi / 2),
                    y + (e * 1.2 if k % 2 == 0 else e * 0.5) * math.sin(k * math.pi / 5 - math.pi / 2)) for k in range(10)]
            d.polygon(pts, fill=(255, 200, 0), outline=ink)
        elif kind == "squint":
            d.line([x + side * e, y - e * 0.6, x - side * e * 0.4, y, x + side * e, y + e * 0.6], fill=ink, width=2)


def _draw_brows(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float) -> None:
    ink = (20, 20, 20)
    for side in (-1, 1):
        x, y, e = cx + side * r * 0.38, cy - r * 0.42, r * 0.16
        if kind == "raised":
            d.arc([x - e, y - e * 0.8, x + e, y + e * 0.8], 200, 340, fill=ink, width=2)
        elif kind == "flat":
            d.line([x - e, y, x + e, y], fill=ink, width=2)
        elif kind == "angry":
            d.line([x - e, y - side * e * 0.5, x + e, y + side * e * 0.5], fill=ink, width=3)
        elif kind == "sad":
            d.line([x - e, y + side * e * 0.5, x + e, y - side * e * 0.5], fill=ink, width=2)
        elif kind == "one_raised":
            dy = -e * 0.6 if side > 0 else 0
            d.line([x - e, y + dy, x + e, y + dy], fill=ink, width=2)


def _draw_mouth(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float) -> None:
    ink = (20, 20, 20)
    x, y, w = cx, cy + r * 0.35, r * 0.35
    if kind == "smile":
        d.arc([x - w, y - w * 0.6, x + w, y + w * 0.5], 20, 160, fill=ink, width=2)
    elif kind in ("open_smile", "big_grin"):
        s = 1.0 if kind == "open_smile" else 1.4
        d.chord([x - w * s, y - w * 0.6, x + w * s, y + w * 0.8 * s], 0, 180, fill=(120, 20, 30), outline=ink)
    elif kind == "teeth":
        d.rectangle([x - w, y - w * 0.25, x + w, y + w * 0.25], fill="white", outline=ink, width=2)
        for k in range(1, 4):
            d.line([x - w + k * w / 2, y - w * 0.25, x - w + k * w / 2, y + w * 0.25], fill=ink)
    elif kind == "flat":
        d.line([x - w * 0.8, y, x + w * 0.8, y], fill=ink, width=2)
    elif kind == "wavy":
        pts = [(x - w + k * w / 3, y + (3 if k % 2 else -3)) for k in range(7)]
        d.line(pts, fill=ink, width=2)
    elif kind in ("small_o", "open_o", "cry"):
        s = {"small_o": 0.25, "open_o": 0.55, "cry": 0.7}[kind]
        box = [x - w * s, y - w * s, x + w * s, y + w * s * (1.6 if kind == "cry" else 1.0)]
        d.ellipse(box, fill=(120, 20, 30), outline=ink, width=2)
    elif kind == "tongue":
        d.arc([x - w, y - w * 0.6, x + w, y + w * 0.5], 20, 160, fill=ink, width=2)
        d.ellipse([x - w * 0.3, y + w * 0.2, x + w * 0.3, y + w * 0.9], fill=(240, 110, 140))
    elif kind == "frown":
        d.arc([x - w, y, x + w, y + w], 200, 340, fill=ink, width=2)
    elif kind == "smirk":
        d.line([x - w, y + w * 0.2, x, y + w * 0.2, x + w, y - w * 0.3], fill=ink, width=2)


def _draw_extra(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float) -> None:
    if kind == "blush":
        for side in (-1, 1):
            x, y = cx + side * r * 0.55, cy + r * 0.15
            d.ellipse([x - r * 0.14, y - r * 0.08, x + r * 0.14, y + r * 0.08], fill=(255, 130, 150))
    elif kind == "sweat":
        x, y = cx + r * 0.7, cy - r * 0.6
        d.polygon([(x, y), (x - r * 0.12, y + r * 0.25), (x + r * 0.12, y + r * 0.25)], fill=(90, 170, 255))
    elif kind == "tear":
        x, y = cx - r * 0.6, cy
        d.ellipse([x - r * 0.08, y, x + r * 0.08, y + r * 0.2], fill=(90, 170, 255))
    elif kind == "steam":
        for side in (-1, 1):
            x, y = cx + side * r * 0.8, cy - r * 1.0
            d.arc([x - r * 0.2, y - r * 0.2, x + r * 0.2, y + r * 0.2], 0, 270, fill=(200, 200, 200), width=3)


def _draw_head(d: ImageDraw.ImageDraw, species: str, cx: float, cy: float, r: float, skin, outline) -> None:
    if species == "cat":
        for side in (-1, 1):
            d.polygon([(cx + side * r * 0.9, cy - r * 0.3), (cx + side * r * 0.7, cy - r * 1.2), (cx + side * r * 0.2, cy - r * 0.85)], fill=skin, outline=outline)
    elif species == "bear":
        for side in (-1, 1):
            d.ellipse([cx + side * r * 0.7 - r * 0.3, cy - r * 1.0, cx + side * r * 0.7 + r * 0.3, cy - r * 0.4], fill=skin, outline=outline)
    elif species == "bunny":
        for side in (-1, 1):
            d.ellipse([cx + side * r * 0.4 - r * 0.17, cy - r * 1.9, cx + side * r * 0.4 + r * 0.17, cy - r * 0.6], fill=skin, outline=outline)
    elif species == "frog":
        for side in (-1, 1):
            d.ellipse([cx + side * r * 0.45 - r * 0.3, cy - r * 1.1, cx + side * r * 0.45 + r * 0.3, cy - r * 0.5], fill=skin, outline=outline)
    elif species == "robot":
        d.line([cx, cy - r, cx, cy - r * 1.4], fill=outline, width=2)
        d.ellipse([cx - r * 0.12, cy - r * 1.55, cx + r * 0.12, cy - r * 1.3], fill=(255, 60, 60))
        d.rounded_rectangle([cx - r, cy - r, cx + r, cy + r], radius=r * 0.3, fill=skin, outline=outline, width=2)
        return
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=skin, outline=outline, width=2)


# Stick-figure postures: (torso tilt, left arm, right arm, left leg, right leg, lift) in degrees
# from straight down; lift raises the whole figure (jumping).
POSTURES: dict[str, tuple[float, float, float, float, float, float]] = {
    "standing": (0, 20, -20, 10, -10, 0), "lean_forward": (20, 40, -10, 10, -10, 0),
    "bent": (45, 60, 30, 15, -15, 0), "stomp": (0, 30, -30, 40, -5, 0),
    "arms_crossed": (0, 100, -100, 10, -10, 0), "hug": (0, 80, -80, 10, -10, 0),
    "tilt": (-20, 20, -20, 10, -10, 0), "reach": (10, 120, -20, 10, -10, 0),
    "slumped": (25, 5, -5, 10, -10, 0), "lean_back": (-25, 40, -40, 15, -5, 0),
    "shrink": (30, 150, -150, 50, -50, -4), "jumping": (0, 160, -160, 40, -40, 6),
    "bow": (60, 10, -10, 5, -5, 0), "kneel": (10, 30, -30, 90, -90, -8),
    "dance": (-10, 140, -60, 40, -5, 2), "arms_up": (0, 170, -170, 10, -10, 0),
    "hands_on_hips": (0, 60, -60, 15, -15, 0),
}


def _draw_body(d: ImageDraw.ImageDraw, posture: str, cx: float, top: float, length: float, colour) -> None:
    tilt, la, ra, ll, rl, lift = POSTURES[posture]
    top -= lift
    t = math.radians(tilt)
    hip = (cx + length * math.sin(t), top + length * math.cos(t))
    d.line([(cx, top), hip], fill=colour, width=3)
    shoulder = (cx + length * 0.25 * math.sin(t), top + length * 0.25 * math.cos(t))
    for ang in (la, ra):
        a = math.radians(ang)
        d.line([shoulder, (shoulder[0] + length * 0.6 * math.sin(a), shoulder[1] + length * 0.6 * math.cos(a))], fill=colour, width=3)
    for ang in (ll, rl):
        a = math.radians(ang)
        d.line([hip, (hip[0] + length * 0.7 * math.sin(a), hip[1] + length * 0.7 * math.cos(a))], fill=colour, width=3)


def _draw_gesture(d: ImageDraw.ImageDraw, kind: str, x: float, y: float, s: float, skin, outline) -> None:
    palm = [x - s * 0.5, y - s * 0.4, x + s * 0.5, y + s * 0.6]

    def finger(x0, y0, ang, length):
        a = math.radians(ang)
        d.line([(x0, y0), (x0 + length * math.sin(a), y0 - length * math.cos(a))], fill=outline, width=max(2, int(s * 0.22)))

    if kind in ("thumbs_up", "thumbs_down", "fist", "point", "finger_up"):
        d.rounded_rectangle(palm, radius=s * 0.2, fill=skin, outline=outline, width=2)
        if kind == "thumbs_up":
            finger(x - s * 0.2, y - s * 0.4, 0, s * 0.6)
        elif kind == "thumbs_down":
            finger(x - s * 0.2, y + s * 0.6, 180, s * 0.6)
        elif kind == "point":
            finger(x + s * 0.5, y, 90, s * 0.6)
        elif kind == "finger_up":
            finger(x, y - s * 0.4, 0, s * 0.8)
    elif kind in ("palm_out", "wave", "grab", "fidget"):
        d.ellipse(palm, fill=skin, outline=outline, width=2)
        spread = {"palm_out": 12, "wave": 25, "grab": 35, "fidget": 4}[kind]
        for k in range(-2, 3):
            finger(x + k * s * 0.18, y - s * 0.35, k * spread, s * (0.5 if kind != "grab" else 0.3))
        if kind == "wave":
            d.arc([x + s * 0.5, y - s * 0.8, x + s * 1.1, y], 270, 90, fill=outline, width=2)
    elif kind in ("clap", "pray", "raise_both", "cover"):
        gap = {"clap": s * 0.5, "pray": 0, "raise_both": s * 1.2, "cover": s * 0.8}[kind]
        for side in (-1, 1):
            px = x + side * (gap / 2 + s * 0.3)
            d.ellipse([px - s * 0.3, y - s * 0.5, px + s * 0.3, y + s * 0.5], fill=skin, outline=outline, width=2)
        if kind == "clap":
            for k in (-1, 0, 1):
                d.line([x + k * s * 0.3, y - s * 0.7, x + k * s * 0.5, y - s * 1.0], fill=outline, width=1)
    elif kind == "heart_hands":
        d.ellipse([x - s * 0.6, y - s * 0.5, x, y + s * 0.1], fill=(230, 30, 60))
        d.ellipse([x, y - s * 0.5, x + s * 0.6, y + s * 0.1], fill=(230, 30, 60))
        d.polygon([(x - s * 0.6, y - s * 0.15), (x + s * 0.6, y - s * 0.15), (x, y + s * 0.7)], fill=(230, 30, 60))
    elif kind == "cross":
        d.line([x - s * 0.7, y - s * 0.7, x + s * 0.7, y + s * 0.7], fill=(220, 40, 40), width=max(3, int(s * 0.3)))
        d.line([x - s * 0.7, y + s * 0.7, x + s * 0.7, y - s * 0.7], fill=(220, 40, 40), width=max(3, int(s * 0.3)))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def draw_sticker(look: Look, species: str, parts: dict[str, bool], rng: random.Random) -> Image.Image:
    """Draw one sticker; `parts` says which of gesture, posture and caption it shows."""
    size = IMAGE_SIZE
    bg = _hsv(rng, (0.05, 0.3), (0.85, 1.0))
    skin = _hsv(rng, (0.3, 0.7), (0.7, 1.0))
    outline = tuple(int(c * 0.4) for c in skin)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    body = parts["posture"]
    caption_h = 16 if parts["verbal"] else 0
    r = (15 if body else 25) * rng.uniform(0.85, 1.1)
    cx = size / 2 + rng.uniform(-6, 6) - (8 if parts["gesture"] else 0)
    cy = (r + 14) if body else (size - caption_h) / 2 + 6
    if body:
        _draw_body(d, look.posture, cx, cy + r, (size - caption_h - cy - r) * 0.55, outline)
    _draw_head(d, species, cx, cy, r, skin, outline)
    _draw_brows(d, look.brows, cx, cy, r)
    _draw_eyes(d, look.eyes, cx, cy, r)
    _draw_mouth(d, look.mouth, cx, cy, r)
    _draw_extra(d, look.extra, cx, cy, r)
    if parts["gesture"] and look.gesture != "none":
        s = rng.uniform(9, 13)
        _draw_gesture(d, look.gesture, size - s - 6, size - caption_h - s - 10, s, skin, outline)
    if parts["verbal"]:
        font = _font(12)
        box = d.textbbox((0, 0), look.caption, font=font)
        tx = max(1, (size - (box[2] - box[0])) / 2)
        d.rectangle([0, size - caption_h, size, size], fill=(255, 255, 255))
        d.text((tx, size - caption_h + 1), look.caption, fill=(0, 0, 0), font=font)
    return img


def describe(look: Look, parts: dict[str, bool], rng: random.Random) -> dict[str, str]:
    """Attribute descriptions of a drawn sticker, in varied wording."""

    def word(key: str) -> str:
        return rng.choice(FEATURE_WORDS[key])

    face = [word(f"eyes:{look.eyes}"), word(f"brows:{look.brows}"), word(f"mouth:{look.mouth}")]
    if look.extra != "none":
        face.append(word(f"extra:{look.extra}"))
    rng.shuffle(face)
    attrs = {"facial_expression": ", ".join(face)}
    if parts["gesture"] and look.gesture != "none":
        attrs["gesture"] = word(f"gesture:{look.gesture}")
    if parts["posture"]:
        attrs["posture"] = word(f"posture:{look.posture}")
    if parts["verbal"]:
        attrs["verbal"] = look.caption
    return attrs


def _varied_look(label: str, rng: random.Random) -> Look:
    """The intention's look, sometimes with one feature borrowed from another intention."""
    look = LOOKS[label]
    if rng.random() < 0.3:
        other = LOOKS[rng.choice(LABELS)]
        fieldname = rng.choice(["eyes", "brows", "mouth", "extra"])
        look = Look(**{**look.__dict__, fieldname: getattr(other, fieldname)})
    return look


def make_stickers(cfg: SyntheticConfig, rng: random.Random) -> list[tuple[Sticker, Image.Image, str, float]]:
    """Stickers spread evenly over the labels: (sticker, image, species, popularity weight)."""
    out = []
    species_names = list(SPECIES)
    for i in range(cfg.stickers):
        label = LABELS[i % len(LABELS)]
        look = _varied_look(label, rng)
        species = rng.choice(species_names)
        parts = {"gesture": rng.random() < 0.6, "posture": rng.random() < 0.45, "verbal": rng.random() < 0.4}
        img = draw_sticker(look, species, parts, rng)
        sid = f"syn-{i:05d}"
        sticker = Sticker(id=sid, image=f"images/{sid}.png", label=label, attributes=describe(look, parts, rng), language="en")
        popularity = 1.0 / (1 + (i // len(LABELS))) ** 0.8  # within a label, earlier stickers are more popular
        out.append((sticker, img, species, popularity))
    return out


# ---------------------------------------------------------------------------- conversations

def _say(label: str, lang: int, rng: random.Random) -> str:
    return rng.choice(WRAPS[lang]).format(e=rng.choice(EXPRESSIONS[label][lang]))


def _knowledge(label: str, cfg: SyntheticConfig, rng: random.Random) -> dict[str, tuple[str, ...]]:
    # Commonsense inference is imperfect: sometimes it describes another intention.
    hint = label if rng.random() >= cfg.knowledge_noise else rng.choice(LABELS)
    adj = KNOWLEDGE[hint]
    templates = {
        "xIntent": f"to show they are {adj}", "xNeed": "to react to the message", "xWant": f"to share being {adj}",
        "xEffect": "gets a reply", "xReact": adj,
    }
    return {rel: (templates[rel],) for rel in KNOWLEDGE_RELATIONS}


def make_conversations(cfg: SyntheticConfig, stickers: list[tuple[Sticker, Image.Image, str, float]], rng: random.Random) -> list[Conversation]:
    by_label: dict[str, list[tuple[Sticker, str, float]]] = {}
    for sticker, _, species, pop in stickers:
        if sticker.label is not None:  # every drawn sticker has one
            by_label.setdefault(sticker.label, []).append((sticker, species, pop))
    labels = [label for label in LABELS if label in by_label]
    convs = []
    for i in range(cfg.conversations):
        label = labels[i % len(labels)]
        lang = 1 if rng.random() < cfg.chinese_fraction else 0
        n_turns = rng.randint(2, 8)
        speakers = ["A", "B"] if lang == 0 else ["甲", "乙"]
        # The sender speaks last; turns alternate backwards from there.
        turn_speaker = [speakers[(n_turns - 1 - k) % 2] for k in range(n_turns)]
        texts = []
        distractor_at = rng.randrange(n_turns - 1)
        for k in range(n_turns - 1):
            if k == distractor_at and rng.random() < 0.7:
                texts.append(_say(rng.choice([x for x in LABELS if x != label]), lang, rng))
            else:
                texts.append(rng.choice(SMALL_TALK[lang]))
        candidates = by_label[label]
        mention = None
        if rng.random() < 0.5:
            mention = rng.choice([sp for _, sp, _ in candidates])
        final = _say(label, lang, rng)
        if mention is not None:
            cue = rng.choice(SPECIES_MENTIONS[lang]).format(x=SPECIES[mention][lang])
            final = f"{final} {cue}" if lang == 0 else f"{final}，{cue}"
        texts.append(final)
        weights = [pop * (6.0 if mention is not None and sp == mention else 1.0) for _, sp, pop in candidates]
        gold = rng.choices([s for s, _, _ in candidates], weights=weights)[0]
        knowledge = _knowledge(label, cfg, rng) if rng.random() < cfg.knowledge_fraction else None
        convs.append(Conversation(
            id=f"syn-conv-{i:06d}",
            context=tuple(Turn(s, t) for s, t in zip(turn_speaker, texts)),
            label=label, sticker_id=gold.id, knowledge=knowledge,
        ))
    rng.shuffle(convs)
    return convs


def sticker_species(data: Path | str) -> dict[str, str]:
    """Each sticker's character kind in a world `generate` drew (redrawn from its seed: the
    dataset stores no species). For simulations that need a user's taste in characters."""
    from sdk.dataset import load_dataset

    info = load_dataset(data).info
    gen = (info.details or {}).get("generator")
    if not info.synthetic or not isinstance(gen, dict):
        raise ArgumentError(f"{data}: not a world drawn by intra's synthetic generator")
    cfg = SyntheticConfig(seed=gen["seed"], stickers=gen["stickers"], conversations=gen["conversations"])
    return {s.id: species for s, _, species, _ in make_stickers(cfg, random.Random(cfg.seed))}


def split_conversations(convs: list[Conversation]) -> dict[str, list[Conversation]]:
    n = len(convs)
    n_train = int(n * SPLIT_FRACTIONS["train"])
    n_val = int(n * SPLIT_FRACTIONS["validation"])
    return {"train": convs[:n_train], "validation": convs[n_train:n_train + n_val], "test": convs[n_train + n_val:]}


def generate(out: Path | str, cfg: SyntheticConfig = SyntheticConfig(), progress: bool = False) -> dict[str, int]:
    """Draw the world for `cfg` into the dataset directory `out` (atomically); return counts."""
    if cfg.stickers < len(LABELS):
        raise ArgumentError(f"--stickers must be at least {len(LABELS)} (one per intention label), got {cfg.stickers}")
    if cfg.conversations < 20:
        raise ArgumentError(f"--conversations must be at least 20, got {cfg.conversations}")
    atomic.check_output(Path(out), INFO_FILE, "dataset")  # refuse before drawing anything
    rng = random.Random(cfg.seed)
    stickers = make_stickers(cfg, rng)
    splits = split_conversations(make_conversations(cfg, stickers, rng))
    info = DatasetInfo(
        name=f"synthetic-seed{cfg.seed}", synthetic=True,
        source="intra's built-in procedural generator (SYNTHETIC data: drawn stickers, templated conversations)",
        notes="SYNTHETIC. Not real user data; useful to exercise the pipeline and check learnability.",
        details={"generator": {"seed": cfg.seed, "stickers": cfg.stickers, "conversations": cfg.conversations}},
    )
    with atomic.atomic_dir(Path(out), INFO_FILE, "dataset") as tmp:
        (tmp / "images").mkdir()
        items = stickers
        if progress:
            from tqdm import tqdm

            items = tqdm(stickers, desc="drawing stickers", unit="sticker")
        for sticker, img, _, _ in items:
            img.save(tmp / sticker.image_file, format="PNG")
        (tmp / "SYNTHETIC.txt").write_text("This dataset is synthetic: generated by intra, not collected from people.\n", encoding="utf-8")
        write_dataset_files(tmp, info, [s for s, _, _, _ in stickers], splits)
    return {"stickers": len(stickers), **{k: len(v) for k, v in splits.items()}}
