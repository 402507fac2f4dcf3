"""Score a split through an exported bundle and the SDK, exactly as apps rank.

A pack is built from the dataset directory with the bundle (so it carries the training split's
usage counts and labels, as `intra pack build DATASET` does) in a temporary directory, and
:meth:`sdk.Ranker.score_matrix` scores every sticker for every conversation: the prior and the
label term with the bundle's weights, at the precision the SDK picks (or `precision`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdk.bundle import Bundle
from sdk.dataset import Conversation, load_dataset
from sdk.ranker import Ranker
from sdk.temp_pack import temporary_ranker

#: conversations a gallery shows (the first of the split): a page of pictures, not the whole split
GALLERY_SIZE = 40


def sdk_scores(bundle: Path | str, data: Path | str, convs: Sequence[Conversation], precision: str | None = None,
               progress: bool = False, html: Path | None = None) -> tuple[str, np.ndarray]:
    """(row name, (Q, S) scores in the dataset's sticker order) through `sdk.Ranker`; `html`: also
    write a gallery of the first GALLERY_SIZE conversations (top 5, why, gold marked)."""
    model = Bundle(bundle, precision=precision, providers="cpu")
    ds = load_dataset(data)
    with temporary_ranker(model, data, progress=progress) as ranker:
        contexts = [c.turns() for c in convs]
        knowledge = [c.knowledge_dict() for c in convs]
        _, scores = ranker.score_matrix(contexts, knowledge)
        if html is not None:
            write_eval_gallery(ranker, convs[:GALLERY_SIZE], contexts[:GALLERY_SIZE], knowledge[:GALLERY_SIZE], html,
                               f"intra eval: {ds.info.name}, {model.precision}")
        column = {sid: i for i, sid in enumerate(ranker.pack.ids)}
    order = [column[s.id] for s in ds.stickers]
    return f"int-ra (sdk {model.precision})", scores[:, order]


def write_eval_gallery(ranker: Ranker, convs: Sequence[Conversation], contexts: list, knowledge: list, path: Path,
                       title: str) -> None:
    """The gallery of `convs` as the SDK ranks them, each gold sticker and intention marked."""
    from sdk.gallery import Entry, write_gallery

    results = ranker.rank_many(contexts, 5, knowledge, explain=True)
    write_gallery(path, [Entry(ctx, r, c.sticker_id, c.label) for ctx, r, c in zip(contexts, results, convs)], title)
