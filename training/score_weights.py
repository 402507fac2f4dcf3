"""Choose the weights of the usage prior and the label term on the validation split.

After training, the best checkpoint scores the validation conversations; every pair of weights on
a small grid is tried with :class:`sdk.scoring.ScoreTerms` (the SDK's own scoring) and the pair with
the best objective is kept in the run's ``scoring.json``: the mean of MRR, R@10 and mAP
(``retrieval``, the default), or the macro-F1 of the top-1 sticker (``macro_f1``, the metric of a
closed task such as TweetEval emoji, chosen by the run's ``calibrate_for``). The export copies it into
the bundle's manifest, so apps rank with it. The test split is never looked at.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from sdk import atomic
from sdk.dataset import Dataset
from sdk.scoring import ScoreTerms, ScoreWeights, usage_vector

from .config import TrainConfig
from .metrics import macro_f1, retrieval_metrics

SCORING_FILE = "scoring.json"
PRIOR_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
LABEL_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
OBJECTIVE = ("MRR", "R@10", "mAP")


def objective(metrics: dict[str, float], name: str = "retrieval") -> float:
    """What the weights are chosen for: the mean of MRR, R@10 and mAP, or the top-1 macro-F1."""
    if name == "macro_f1":
        return metrics["macro_F1"]
    return float(np.mean([metrics[k] for k in OBJECTIVE]))


def top1_macro_f1(scores: np.ndarray, gold: np.ndarray) -> float:
    """Macro-F1 (0-1) of the best-scored sticker against the gold one, over the stickers that are
    gold or predicted (as sklearn's classification_report, which TweetEval's scorer uses)."""
    return macro_f1(gold, np.asarray(scores).argmax(1)) / 100.0


def dataset_terms(ds: Dataset) -> tuple[list[int], np.ndarray | None]:
    """What a pack built from `ds` carries, aligned with its catalog: the stickers' labels and the
    training split's usage counts (None when it has none)."""
    labels, _ = ds.sticker_labels()
    return labels, usage_vector(ds.usage_counts() or None, ds.sticker_ids)


def score_terms(ds: Dataset, weights: ScoreWeights, has_head: bool) -> ScoreTerms:
    """The terms a pack built from `ds` gets under `weights`."""
    return ScoreTerms(weights, *dataset_terms(ds), has_head)


def choose_weights(cosines: np.ndarray, logits: np.ndarray | None, ds: Dataset, gold: np.ndarray,
                   objective_name: str = "retrieval") -> tuple[ScoreWeights, list[dict[str, Any]]]:
    """The grid point with the best objective on these (validation) scores, and every point tried.

    Ties keep the smaller weights (the grid is walked from zero up)."""
    labels, counts = dataset_terms(ds)  # once, not per grid point
    label_grid = LABEL_GRID if logits is not None else (0.0,)
    prior_grid = PRIOR_GRID if counts is not None else (0.0,)
    tried, best = [], None
    for prior, label in itertools.product(prior_grid, label_grid):
        w = ScoreWeights(prior=prior, label=label)
        scores = ScoreTerms(w, labels, counts, logits is not None).scores(cosines, logits)
        metrics = {**retrieval_metrics(scores, gold, labels), "macro_F1": top1_macro_f1(scores, gold)}
        value = objective(metrics, objective_name)
        tried.append({"prior_weight": prior, "label_weight": label, "objective": round(value, 5),
                      **{k: round(metrics[k], 5) for k in (*OBJECTIVE, "macro_F1")}})
        if best is None or value > best[1] + 1e-12:
            best = (w, value)
    assert best is not None
    return best[0], tried


def describe(objective_name: str) -> str:
    """How scoring.json names the objective the weights were chosen for."""
    return "top-1 macro-F1" if objective_name == "macro_f1" else "mean of " + ", ".join(OBJECTIVE)


def write_weights(run: Path, weights: ScoreWeights, tried: list[dict[str, Any]], split: str, objective_name: str = "retrieval") -> None:
    atomic.write_json(run / SCORING_FILE, {**weights.to_json(), "chosen_on": split,
                                           "objective": describe(objective_name), "grid": tried})


def read_weights(run: Path | str) -> ScoreWeights:
    """The weights a run chose (no terms for a run trained before they existed)."""
    path = Path(run) / SCORING_FILE
    if not path.is_file():
        return ScoreWeights()
    from .run_dir import RunError

    return ScoreWeights.from_json(json.loads(path.read_text(encoding="utf-8")), str(path), RunError)


def calibrate_run(run: Path | str, data: Path | str, split: str = "validation") -> ScoreWeights:
    """Choose the weights for the run's best checkpoint on `split` and write ``scoring.json``."""
    from sdk.dataset import load_dataset

    from .catalog_scores import score_conversations
    from .model_inputs import sticker_inputs
    from .run_dir import load_run

    ds = load_dataset(data)
    model, tokenizer, image_settings, conf = load_run(run)
    cfg = TrainConfig.from_dict(conf["train"])
    convs = ds.split(split)
    cosines, logits = score_conversations(model, tokenizer, sticker_inputs(ds, image_settings), convs)
    index = ds.sticker_index()
    gold = np.array([index[c.gold] for c in convs])
    weights, tried = choose_weights(cosines, logits, ds, gold, cfg.calibrate_for)
    write_weights(Path(run), weights, tried, split, cfg.calibrate_for)
    return weights
