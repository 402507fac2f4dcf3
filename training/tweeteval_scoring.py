"""TweetEval emoji's closed protocol: the top-1 sticker among the 20 task emoji is the prediction.

Macro-F1 is computed as the official TweetEval scorer does: sklearn's ``classification_report``
over the predicted label ids, its macro average. The predictions file is the official format: one
label id per line, in test order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdk import atomic
from sdk.errors import DatasetError


def predicted_labels(scores: np.ndarray, task_columns: Sequence[int]) -> np.ndarray:
    """(Q,) label id of the best-scored task sticker; `task_columns[i]` is label i's column in `scores`."""
    return np.asarray(scores)[:, list(task_columns)].argmax(1)


def official_macro_f1(gold: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """Macro-F1 in percent, exactly as TweetEval's scorer: classification_report's macro avg."""
    from sklearn.metrics import classification_report

    report = classification_report(list(gold), list(predicted), output_dict=True, zero_division=0)
    return 100.0 * float(report["macro avg"]["f1-score"])


def closed_metrics(scores: np.ndarray, gold: Sequence[int] | np.ndarray, task_columns: Sequence[int]) -> dict[str, Any]:
    """Macro-F1, accuracy, top-5 and MRR (percent) of the 20-way closed protocol."""
    sub = np.asarray(scores)[:, list(task_columns)]
    gold_arr = np.asarray(gold)
    gold_score = sub[np.arange(len(gold_arr)), gold_arr]
    rank = (sub >= gold_score[:, None]).sum(1)  # ties broken pessimistically, as every report of intra
    predicted = sub.argmax(1)
    return {"macro_f1": official_macro_f1(gold_arr, predicted), "accuracy": 100.0 * float((predicted == gold_arr).mean()),
            "top5": 100.0 * float((rank <= 5).mean()), "mrr": 100.0 * float((1.0 / rank).mean()), "n": len(gold_arr)}


def write_predictions(path: Path | str, predicted: Sequence[int] | np.ndarray) -> None:
    """The official predictions file: one label id per line, in test order (written atomically)."""
    atomic.write_text(Path(path), "".join(f"{int(p)}\n" for p in predicted))


def read_predictions(path: Path | str, n_labels: int = 20) -> list[int]:
    """A predictions file read back; DatasetError names the line that is not a label id."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip().isdigit() or not 0 <= int(line) < n_labels:
            raise DatasetError(f"{path}:{number}: {line!r} is not a label id in 0..{n_labels - 1}")
        out.append(int(line))
    return out
