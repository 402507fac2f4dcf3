"""The suggest head: does this moment call for a sticker at all?

A logistic regression on H^T (the run's pooled text encoding, frozen), so the exported intention
graph answers it from the pass it already makes. Learnt from GoEmotions: comments whose writer
attached an emoji (the emoji removed from the text) against comments without. Negatives are
all used by default; when they are subsampled (`negatives`), the intercept is moved by log(kept
share) so that probabilities stay at the data's real base rate. The weight decay is chosen on validation (by ROC AUC),
then the threshold: the lowest confidence whose validation precision, with negatives counted at
their real share, reaches `target_precision`. The dev comments give the test figures.

The run directory gets ``suggest.safetensors`` (weight, bias) and ``suggest.json`` (threshold,
figures); `intra-export` puts the head into the intention graph as ``suggest_logit``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from sdk import atomic
from sdk.errors import ArgumentError
from sdk.suggest import SuggestSettings

from .run_dir import CONFIG, RunError, save_weights

SUGGEST_WEIGHTS = "suggest.safetensors"
SUGGEST_FILE = "suggest.json"
SUGGEST_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SuggestConfig:
    """How the suggest head is fitted."""

    target_precision: float = 0.05
    #: comments without an emoji kept for training and validation (0: all of them)
    negatives: int = 0
    validation_negatives: int = 0
    validation_fraction: float = 0.15
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    epochs: int = 300
    lr: float = 0.05
    seed: int = 0

    def check(self) -> None:
        if not 0 < self.target_precision < 1:
            raise ArgumentError(f"target_precision must be in (0, 1), got {self.target_precision}")
        if self.negatives < 0 or self.validation_negatives < 0 or self.epochs < 1:
            raise ArgumentError("negatives and validation_negatives must be >= 0 (0: all) and epochs >= 1")


@dataclass
class Texts:
    """Texts with 1 (a sticker was attached) or 0, per split, and the real count of negatives."""

    texts: list[str]
    labels: np.ndarray
    negatives_total: int

    @property
    def kept_share(self) -> float:
        kept = int((self.labels == 0).sum())
        return kept / max(self.negatives_total, 1)


def in_validation(key: str, fraction: float) -> bool:
    """A stable carve of train into train/validation by the comment id's hash."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def subsample(pos: list[str], neg: list[str], keep: int, rng: random.Random) -> Texts:
    """All positives and `keep` negatives (0: all), remembering how many negatives there were."""
    kept = neg if keep == 0 or len(neg) <= keep else rng.sample(neg, keep)
    return Texts(pos + kept, np.array([1] * len(pos) + [0] * len(kept), np.float32), len(neg))


def goemotions_texts(source: Path, cfg: SuggestConfig) -> dict[str, Texts]:
    """train / validation (carved from train.tsv) / test (dev.tsv, every comment) from GoEmotions."""
    from .data.goemoji import emoji_clusters, read_tsv, strip_emoji

    def split(path: Path) -> dict[str, tuple[list[str], list[str]]]:
        out: dict[str, tuple[list[str], list[str]]] = {"train": ([], []), "validation": ([], [])}
        for text, _, cid in read_tsv(path):
            bucket = out["validation" if in_validation(cid, cfg.validation_fraction) else "train"]
            stripped = strip_emoji(text) if emoji_clusters(text) else None
            if stripped is None:
                bucket[1].append(text)
            elif stripped:
                bucket[0].append(stripped)
        return out

    rng = random.Random(cfg.seed)
    train = split(source / "goemotions" / "train.tsv")
    dev = split(source / "goemotions" / "dev.tsv")
    dev_pos, dev_neg = dev["train"][0] + dev["validation"][0], dev["train"][1] + dev["validation"][1]
    return {"train": subsample(*train["train"], cfg.negatives, rng),
            "validation": subsample(*train["validation"], cfg.validation_negatives, rng),
            "test": subsample(dev_pos, dev_neg, 0, rng)}


@torch.no_grad()
def encode(model: Any, tokenizer: Any, texts: Sequence[str], batch: int = 64, progress: bool = True) -> np.ndarray:
    """H^T of each text as a one-turn context, exactly as the SDK encodes a context."""
    from tqdm import tqdm

    out = []
    for k in tqdm(range(0, len(texts), batch), desc="encoding", unit="batch", disable=not progress):
        ids, mask = tokenizer.encode_contexts([[t] for t in texts[k:k + batch]])
        out.append(model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half: tied scores share their mean rank)."""
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_logistic(x: np.ndarray, y: np.ndarray, weight_decay: float, cfg: SuggestConfig) -> nn.Linear:
    torch.manual_seed(cfg.seed)
    head = nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(head(xt).squeeze(-1), yt).backward()
        opt.step()
    return head


def logits_of(head: nn.Linear, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(x)).squeeze(-1).numpy()


def precision_at(conf: np.ndarray, y: np.ndarray, t: float, neg_weight: float) -> tuple[float, float]:
    """(precision, recall) of conf >= t, negatives counted `neg_weight` times (their real share)."""
    hit = conf >= t
    tp, fp = float((hit & (y == 1)).sum()), float((hit & (y == 0)).sum()) * neg_weight
    return (tp / (tp + fp) if tp + fp else 0.0), tp / max(float((y == 1).sum()), 1.0)


def choose_threshold(conf: np.ndarray, y: np.ndarray, target: float, neg_weight: float) -> tuple[float, bool]:
    """(lowest threshold reaching `target` precision, whether any did; else the most precise one)."""
    candidates = np.unique(conf[y == 1])
    best, best_p = float(candidates.max()) if len(candidates) else 1.0, -1.0
    for t in candidates:  # ascending: the first that reaches the target keeps the most recall
        p, _ = precision_at(conf, y, float(t), neg_weight)
        if p >= target:
            return float(t), True
        if p > best_p:
            best, best_p = float(t), p
    return best, False


def calibration(conf: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table over equal-count bins of confidence, and the expected calibration error."""
    order = np.argsort(conf)
    rows, ece = [], 0.0
    for part in np.array_split(order, bins):
        if len(part) == 0:
            continue
        mean_c, rate = float(conf[part].mean()), float(y[part].mean())
        rows.append({"confidence": mean_c, "observed": rate, "n": len(part)})
        ece += len(part) / len(conf) * abs(mean_c - rate)
    return {"bins": rows, "ece": ece}


def plot_reliability(cal: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [b["confidence"] for b in cal["bins"]]
    ys = [b["observed"] for b in cal["bins"]]
    top = max(xs + ys + [0.01]) * 1.1
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, top], [0, top], "--", color="grey", label="perfect calibration")
    ax.plot(xs, ys, "o-", label=f"suggest head (ECE {cal['ece']:.3f})")
    ax.set(xlabel="mean confidence (equal-count bins)", ylabel="share with a sticker", xlim=(0, top), ylim=(0, top),
           title="Reliability on GoEmotions dev")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fit(run: Path, data: dict[str, Texts], cfg: SuggestConfig = SuggestConfig(), progress: bool = True) -> dict[str, Any]:
    """Fit the head on `data` with the run's encoder, write it into the run, return the figures."""
    from .run_dir import load_run

    cfg.check()
    if not (run / CONFIG).is_file():
        raise RunError(f"{run}: not a run directory made by `intra train` (no {CONFIG})")
    model, tokenizer, _, _ = load_run(run)
    x = {k: encode(model, tokenizer, v.texts, progress=progress) for k, v in data.items()}
    y = {k: v.labels for k, v in data.items()}
    shift = math.log(data["train"].kept_share)  # back to the real base rate
    by_wd = {}
    for wd in cfg.weight_decays:
        head = fit_logistic(x["train"], y["train"], wd, cfg)
        by_wd[wd] = (roc_auc(logits_of(head, x["validation"]), y["validation"]), head)
    wd = max(by_wd, key=lambda k: by_wd[k][0])
    head = by_wd[wd][1]
    with torch.no_grad():
        head.bias.add_(shift)
    conf = {k: 1.0 / (1.0 + np.exp(-logits_of(head, v))) for k, v in x.items()}
    val_weight = 1.0 / data["validation"].kept_share
    threshold, reached = choose_threshold(conf["validation"], y["validation"], cfg.target_precision, val_weight)
    test_p, test_r = precision_at(conf["test"], y["test"], threshold, 1.0 / data["test"].kept_share)
    base_rate = float(y["train"].sum() / (y["train"].sum() + data["train"].negatives_total))
    figures = {
        "format_version": SUGGEST_FORMAT_VERSION, "config": asdict(cfg), "weight_decay": wd,
        "settings": SuggestSettings(threshold, cfg.target_precision, base_rate).to_json(), "target_reached_on_validation": reached,
        "counts": {k: {"with_sticker": int(v.labels.sum()), "without_kept": int((v.labels == 0).sum()),
                       "without_total": v.negatives_total} for k, v in data.items()},
        "validation": {"auc_by_weight_decay": {str(k): v[0] for k, v in by_wd.items()},
                       "precision_recall": precision_at(conf["validation"], y["validation"], threshold, val_weight)},
        "test": {"auc": roc_auc(conf["test"], y["test"]), "precision": test_p, "recall": test_r,
                 "calibration": calibration(conf["test"], y["test"])},
    }
    save_weights(run / SUGGEST_WEIGHTS, head)
    atomic.write_json(run / SUGGEST_FILE, figures)
    return figures


def attach(model: Any, run: Path) -> SuggestSettings | None:
    """Give `model` the run's suggest head (model.suggest_head), if it has one; its settings."""
    path, info = run / SUGGEST_WEIGHTS, run / SUGGEST_FILE
    if not path.is_file() or not info.is_file():
        return None
    try:
        settings = SuggestSettings.from_json(json.loads(info.read_text(encoding="utf-8")).get("settings"), str(info), RunError)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise RunError(f"{info}: not the JSON object `intra suggest` writes; run it again") from None
    if settings is None:
        raise RunError(f"{info}: field 'settings' is missing; run `intra suggest` again")
    weights = load_file(str(path))
    head = nn.Linear(weights["weight"].shape[1], 1)
    head.load_state_dict(weights)
    model.suggest_head = head.eval()
    return settings


def markdown(f: dict[str, Any]) -> str:
    s, t, c = f["settings"], f["test"], f["counts"]
    lines = ["# When to suggest a sticker: the suggest head on GoEmotions", "",
             f"Trained on {c['train']['with_sticker']} comments with an emoji against {c['train']['without_kept']} of "
             f"{c['train']['without_total']} without (train.tsv minus a 15% validation carve of {c['validation']['with_sticker']} "
             f"with and {c['validation']['without_kept']} without); base rate {100 * s['base_rate']:.2f}%.",
             "", "| split | ROC AUC | precision at threshold | recall at threshold |", "|---|---|---|---|",
             f"| validation | {max(f['validation']['auc_by_weight_decay'].values()):.3f} | "
             f"{f['validation']['precision_recall'][0]:.3f} | {f['validation']['precision_recall'][1]:.3f} |",
             f"| test (GoEmotions dev, {c['test']['with_sticker']} with / {c['test']['without_total']} without) | {t['auc']:.3f} | "
             f"{t['precision']:.3f} | {t['recall']:.3f} |", "",
             f"Threshold {s['threshold']:.4f}, chosen on validation for precision {s['target_precision']} "
             f"({'reached' if f['target_reached_on_validation'] else 'not reached: the most precise point instead'}); "
             f"weight decay {f['weight_decay']} (by validation AUC). Calibration on test: ECE {t['calibration']['ece']:.4f}.", "",
             "| mean confidence | share with a sticker | comments |", "|---|---|---|"]
    lines += [f"| {b['confidence']:.4f} | {b['observed']:.4f} | {b['n']} |" for b in t["calibration"]["bins"]]
    return "\n".join(lines) + "\n"
