"""Personal history on simulated users of the synthetic world.

    python -m experiments.history --model BUNDLE --data DIR --out DIR [--users 200]

Each simulated user likes two of the five characters and either captioned stickers or plain ones.
For a conversation of intention L the user sends a sticker of L drawn with weight
``(4 if its character is liked else 1) * (2 if its caption matches the taste else 1)``: the
model's ranking knows the intention, not the user. A user first sends n stickers (n = 0, 5, 20,
100; intentions of random training conversations), each recorded in an in-memory `sdk.History`;
then 100 test conversations are ranked (the SDK's scores, plus the history term exactly as
`Ranker` adds it) and R@1/R@5 of the user's own pick are counted.

Taste change: a user sends 100 stickers with one taste, then switches to another (new characters,
the other caption style) and sends m more (0, 5, 20, 100); ranked against the new taste, with the
default half-life and with none (frequency only).

The weight is chosen on the validation conversations (mean of R@1 and R@5 over n = 5, 20, 100,
steady taste, half-life DEFAULT_HALF_LIFE), then the half-life with that weight (the same mean over
steady and changed tastes); test figures use both. Writes DIR/history.json and DIR/history.md.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks.output import write_result
from sdk.temp_pack import temporary_ranker

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
USES = (0, 5, 20, 100)
WEIGHTS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
HALF_LIVES = (10.0, 50.0, 1e9)
EVAL_CONVERSATIONS = 100


@dataclass(frozen=True)
class Taste:
    species: frozenset[str]
    captions: bool


@dataclass
class World:
    """The pack's stickers by intention with their character and caption, and the split's scores."""

    ids: tuple[str, ...]
    by_label: dict[str, list[int]]
    species: list[str]
    captioned: list[bool]
    train_labels: list[str]
    scores: dict[str, np.ndarray]  # split -> (N, S) SDK scores without history
    labels: dict[str, list[str]]

    def pick(self, taste: Taste, label: str, rng: random.Random) -> int:
        cands = self.by_label[label]
        w = [(4.0 if self.species[i] in taste.species else 1.0) * (2.0 if self.captioned[i] == taste.captions else 1.0) for i in cands]
        return rng.choices(cands, weights=w)[0]


def load_world(model: Path, data: Path) -> World:
    with temporary_ranker(model, data) as ranker:
        return _world(ranker, data)


def _world(ranker: Any, data: Path) -> World:
    from sdk.dataset import load_dataset
    from training.data.synthetic import sticker_species

    ds = load_dataset(data)
    species = sticker_species(data)
    stickers = {s.id: s for s in ds.stickers}
    ids = ranker.pack.ids
    by_label: dict[str, list[int]] = {}
    for i, sid in enumerate(ids):
        by_label.setdefault(stickers[sid].label or "", []).append(i)
    scores, labels = {}, {}
    for split in ("validation", "test"):
        convs = ds.split(split)
        ctx = [c.turns() for c in convs]
        know = [c.knowledge_dict() for c in convs]
        scores[split] = ranker.score_matrix(ctx, know)[1]
        labels[split] = [c.label or "" for c in convs]
    return World(ids, by_label, [species[s] for s in ids], ["verbal" in stickers[s].attributes for s in ids],
                 [c.label or "" for c in ds.split("train")], scores, labels)


def random_taste(rng: random.Random, species: Sequence[str], avoid: Taste | None = None) -> Taste:
    pool = sorted(set(species) - (avoid.species if avoid else set()))
    return Taste(frozenset(rng.sample(pool, 2)), (not avoid.captions) if avoid else rng.random() < 0.5)


def send(world: World, history: Any, taste: Taste, n: int, rng: random.Random) -> None:
    for _ in range(n):
        history.record(world.ids[world.pick(taste, rng.choice(world.train_labels), rng)])


def evaluate(world: World, split: str, history: Any, taste: Taste, weight: float, rng: random.Random) -> tuple[float, float]:
    """R@1 and R@5 of the user's own picks on EVAL_CONVERSATIONS conversations of `split`."""
    from training.metrics import gold_ranks

    rows = rng.sample(range(len(world.labels[split])), min(EVAL_CONVERSATIONS, len(world.labels[split])))
    scores = world.scores[split][rows].copy()
    term = history.term({sid: i for i, sid in enumerate(world.ids)}, weight)
    if term is not None:
        scores[:, term[0]] += term[1][None, :]
    targets = np.array([world.pick(taste, world.labels[split][r], rng) for r in rows])
    rank = gold_ranks(scores, targets)
    return float((rank <= 1).mean()), float((rank <= 5).mean())


def simulate(world: World, split: str, weight: float, users: int, half_life: float, change: bool = False,
             seed: int = 0) -> dict[int, list[float]]:
    """{uses: [R@1, R@5]} averaged over users; with `change`, each first sends 100 stickers with
    another taste, and `uses` counts those sent since the change."""
    from sdk.history import History

    out = {}
    for n in USES:
        rng = random.Random(seed)
        vals = []
        for _ in range(users):
            taste, h = random_taste(rng, world.species), History(None, half_life)
            if change:
                send(world, h, taste, 100, rng)
                taste = random_taste(rng, world.species, avoid=taste)
            send(world, h, taste, n, rng)
            vals.append(evaluate(world, split, h, taste, weight, rng))
        out[n] = np.mean(vals, axis=0).tolist()
    return out


def stable(world: World, split: str, weight: float, users: int, half_life: float) -> dict[int, list[float]]:
    return simulate(world, split, weight, users, half_life)


def changed(world: World, split: str, weight: float, users: int, half_life: float) -> dict[int, list[float]]:
    return simulate(world, split, weight, users, half_life, change=True)


def _goal(table: dict[int, list[float]]) -> float:
    return float(np.mean([sum(table[n]) / 2 for n in USES[1:]]))


def run(model: Path, data: Path, users: int) -> dict[str, Any]:
    from sdk.history import DEFAULT_HALF_LIFE

    world = load_world(model, data)
    val = {w: stable(world, "validation", w, users, DEFAULT_HALF_LIFE) for w in WEIGHTS}
    w = max(WEIGHTS, key=lambda x: _goal(val[x]))
    val_hl = {hl: (stable(world, "validation", w, users, hl), changed(world, "validation", w, users, hl)) for hl in HALF_LIVES}
    hl = max(HALF_LIVES, key=lambda x: _goal(val_hl[x][0]) + _goal(val_hl[x][1]))
    return {
        "model": str(model), "data": str(data), "users": users, "weights": list(WEIGHTS), "chosen_weight": w,
        "half_lives": list(HALF_LIVES), "chosen_half_life": hl, "default_half_life": DEFAULT_HALF_LIFE,
        "validation": {str(x): v for x, v in val.items()},
        "validation_half_life": {str(x): {"steady": v[0], "changed": v[1]} for x, v in val_hl.items()},
        "test": {"none": stable(world, "test", 0.0, users, hl), "history": stable(world, "test", w, users, hl)},
        "test_change": {"none": changed(world, "test", 0.0, users, hl), "history": changed(world, "test", w, users, hl),
                        "no decay": changed(world, "test", w, users, 1e9)},
    }


def _row(name: str, table: dict[Any, list[float]]) -> str:
    return f"| {name} | " + " | ".join(f"{100 * table[n][0]:.1f} / {100 * table[n][1]:.1f}" for n in USES) + " |"


def _hl(x: float) -> str:
    return f"half-life {x:g}" if x < 1e8 else "no decay"


def markdown(r: dict[str, Any]) -> str:
    head = "| | " + " | ".join(f"{n} uses" for n in USES) + " |\n|---|" + "---|" * len(USES)
    w, hl = r["chosen_weight"], r["chosen_half_life"]
    lines = [f"# Personal history: simulated users of {r['data']}", "",
             f"{r['users']} users per cell; cells are R@1 / R@5 (%) of the user's own pick on 100 conversations each. "
             f"Chosen on validation: weight **{w}**, **{_hl(hl)}** uses.", "",
             "## Test, steady taste", "", head, _row("model alone", r["test"]["none"]), _row("with history", r["test"]["history"]), "",
             "## Test, taste changed after 100 uses (columns: uses since the change)", "", head,
             _row("model alone", r["test_change"]["none"]), _row(f"history, {_hl(hl)}", r["test_change"]["history"]),
             _row("history, no decay", r["test_change"]["no decay"]), "",
             f"## Validation: the weight (steady taste, {_hl(r['default_half_life'])})", "", head]
    lines += [_row(f"w = {x}", t) for x, t in r["validation"].items()]
    lines += ["", f"## Validation: the half-life (w = {w}; steady taste, then changed taste)", "", head]
    for x, t in r["validation_half_life"].items():
        lines += [_row(f"{_hl(float(x))}, steady", t["steady"]), _row(f"{_hl(float(x))}, changed", t["changed"])]
    return "\n".join(lines) + "\n"


@app.command()
def main(model: Path = typer.Option(..., help="Model bundle."), data: Path = typer.Option(..., help="Synthetic dataset directory."),
         out: Path = typer.Option(..., help="Directory for history.json and history.md."),
         users: int = typer.Option(200, min=1, help="Simulated users per cell.")) -> None:
    """Simulate users with a taste and measure what their history adds to R@1/R@5."""
    r = run(model, data, users)
    write_result(out, "history", r, markdown(r))


if __name__ == "__main__":
    app()
