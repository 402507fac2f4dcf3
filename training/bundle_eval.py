"""Score a split through an exported bundle and the SDK, exactly as apps rank.

A pack is built from the dataset directory with the bundle (so it carries the training split's
usage counts and labels, as `intra pack build DATASET` does) in a temporary directory, and
:meth:`sdk.Ranker.score_matrix` scores every sticker for every conversation: the prior and the
label term with the bundle's weights, at the precision the SDK picks (or `precision`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdk.bundle import Bundle
from sdk.dataset import Conversation, load_dataset
from sdk.pack_build import build_pack
from sdk.ranker import Ranker


def sdk_scores(bundle: Path | str, data: Path | str, convs: Sequence[Conversation], precision: str | None = None,
               progress: bool = False) -> tuple[str, np.ndarray]:
    """(row name, (Q, S) scores in the dataset's sticker order) through `sdk.Ranker`."""
    model = Bundle(bundle, precision=precision, providers="cpu")
    ds = load_dataset(data)
    with tempfile.TemporaryDirectory(prefix="intra-eval-pack-") as tmp:
        pack_dir = Path(tmp) / "pack"
        build_pack(data, model, pack_dir, progress=progress)
        ranker = Ranker(model, pack_dir)
        contexts = [[(t.speaker, t.text) for t in c.context] for c in convs]
        knowledge = [dict(c.knowledge) if c.knowledge else None for c in convs]
        _, scores = ranker.score_matrix(contexts, knowledge)
        column = {sid: i for i, sid in enumerate(ranker.pack.ids)}
    order = [column[s.id] for s in ds.stickers]
    return f"int-ra (sdk {model.precision})", scores[:, order]
