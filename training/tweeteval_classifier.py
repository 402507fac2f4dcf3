"""The plain fine-tuned classifier that Int-RA must beat on TweetEval emoji.

The same text encoder as the shipped model (all-MiniLM-L6-v2), every layer trained, a 20-way
linear head on the mean-pooled output, cross-entropy. Optionally one bias per label, fitted on
validation for macro-F1 (:mod:`training.label_bias`), the usual remedy for a skewed label set.

``python -m training.tweeteval_classifier --data DIR --out DIR --seed 0`` writes the validation and
test logits (``.npy``), the official predictions file and ``result.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import typer
from tqdm import tqdm

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.textprep import ContextTokenizer, TextSettings

from .data.tweeteval import task_sticker_ids
from .encoders import default_text_model_dir, load_tokenizer, pooled_text
from .label_bias import fit_label_bias
from .tweeteval_baselines import text_and_labels
from .tweeteval_scoring import closed_metrics, write_predictions


@dataclass(frozen=True)
class ClassifierConfig:
    """Fine-tuning settings (the usual BERT recipe, scaled to 2 cores)."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup: float = 0.06
    max_length: int = 64
    seed: int = 0


class Classifier(torch.nn.Module):
    """MiniLM, mean pooling, one linear layer."""

    def __init__(self, encoder: torch.nn.Module, n_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(int(cast(Any, encoder).config.hidden_size), n_labels)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(pooled_text(self.encoder, ids, mask))


def _schedule(step: int, total: int, warmup: float) -> float:
    """Linear warm-up, then linear decay to zero."""
    ramp = max(1, int(warmup * total))
    return step / ramp if step < ramp else max(0.0, (total - step) / max(1, total - ramp))


@torch.no_grad()
def logits(model: Classifier, tok: ContextTokenizer, texts: list[str], batch: int = 128) -> np.ndarray:
    """(N, labels) logits, batched."""
    model.eval()
    out = []
    for k in range(0, len(texts), batch):
        ids, mask = tok.encode_contexts([[t] for t in texts[k:k + batch]])
        out.append(model(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy())
    return np.concatenate(out)


def fit(cfg: ClassifierConfig, train_x: list[str], train_y: np.ndarray, n_labels: int, model_dir: Path,
        progress: bool = True) -> tuple[Classifier, ContextTokenizer]:
    """Fine-tune every layer of the encoder with a fresh linear head."""
    from transformers import AutoModel

    torch.manual_seed(cfg.seed)
    tok = ContextTokenizer(load_tokenizer(model_dir), TextSettings(max_length=cfg.max_length))
    model = Classifier(AutoModel.from_pretrained(str(model_dir), local_files_only=True), n_labels)
    opt = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": cfg.lr},
                             {"params": model.head.parameters(), "lr": cfg.head_lr}], weight_decay=0.01)
    base = [g["lr"] for g in opt.param_groups]
    rng = np.random.default_rng(cfg.seed)
    steps = math.ceil(len(train_x) / cfg.batch_size)
    total, step = cfg.epochs * steps, 0
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(train_x))
        bar = tqdm(range(steps), desc=f"fine-tune epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for k in bar:
            idx = order[k * cfg.batch_size:(k + 1) * cfg.batch_size]
            ids, mask = tok.encode_contexts([[train_x[i]] for i in idx])
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(ids), torch.from_numpy(mask)),
                                                     torch.from_numpy(train_y[idx]))
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * _schedule(step, total, cfg.warmup)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model, tok


def run(data: Path, out: Path, cfg: ClassifierConfig, model_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Fine-tune, score validation and test, fit the label bias on validation, write everything."""
    ds = load_dataset(data)
    columns = list(range(len(task_sticker_ids(ds.info.details))))
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (text_and_labels(ds, s) for s in ("train", "validation", "test"))
    start = time.perf_counter()
    model, tok = fit(cfg, train_x, train_y, len(columns), model_dir or default_text_model_dir(), progress)
    seconds = time.perf_counter() - start
    val_logits, test_logits = logits(model, tok, val_x), logits(model, tok, test_x)
    bias = fit_label_bias(val_logits, val_y)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_npy(out / "validation_logits.npy", val_logits)
    atomic.write_npy(out / "test_logits.npy", test_logits)
    write_predictions(out / "predictions.txt", (test_logits + bias).argmax(1))
    result = {"config": asdict(cfg), "train_seconds": seconds, "label_bias": bias.tolist(),
              "validation": {"plain": closed_metrics(val_logits, val_y, columns),
                             "bias": closed_metrics(val_logits + bias, val_y, columns)},
              "test": {"plain": closed_metrics(test_logits, test_y, columns),
                       "bias": closed_metrics(test_logits + bias, test_y, columns)}}
    atomic.write_json(out / "result.json", result)
    return result


def main(data: Path = typer.Option(..., "--data", help="A dataset made by `intra data tweeteval --catalog task`."),
         out: Path = typer.Option(..., "--out", help="Folder for the logits, predictions.txt and result.json."),
         seed: int = typer.Option(0, "--seed"),
         epochs: int = typer.Option(ClassifierConfig.epochs, "--epochs"),
         lr: float = typer.Option(ClassifierConfig.lr, "--lr", help="Encoder learning rate."),
         text_model: Path = typer.Option(None, "--text-model", help="A local Hugging Face directory (default: the shipped MiniLM).")) -> None:
    """Fine-tune MiniLM as a plain 20-way classifier on TweetEval emoji."""
    result = run(data, out, ClassifierConfig(epochs=epochs, lr=lr, seed=seed), text_model)
    for name, m in result["test"].items():
        typer.echo(f"{name}: macro-F1 {m['macro_f1']:.1f}  accuracy {m['accuracy']:.1f}  top-5 {m['top5']:.1f}  MRR {m['mrr']:.1f}")


if __name__ == "__main__":
    typer.run(main)
