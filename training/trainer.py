"""The training loop: epochs with progress bars, validation, best checkpoint, resume, DDP.

Under ``torchrun --nproc_per_node N`` (WORLD_SIZE > 1) the same code joins a gloo process group,
wraps the model in DistributedDataParallel and gives each process its slice of every global
batch; rank 0 alone writes the run directory. Each epoch reseeds from (seed, epoch), so a run
resumed after epoch k continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tokenizers import Tokenizer
from tqdm import tqdm

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.labels import LABEL_INDEX, LABELS
from sdk.scoring import DEFAULT_SMOOTHING, log_prior, usage_vector
from sdk.textprep import ContextTokenizer, TextSettings

from . import run_dir as rd
from .config import TEXT_TINY, VISION_DEFAULT, VISION_EFFNET, ConfigError, TrainConfig
from .encoders import (
    build_text_encoder,
    build_vision_encoder,
    extend_cjk,
    freeze_lower_layers,
    is_cjk,
    load_tokenizer,
    text_model_dir,
    train_wordpiece,
)
from .features import all_texts, context_batch, encode_attribute_table, freeze_regions, refresh_label_table, sticker_inputs, sticker_labels
from .intention_pretrain import pretrain_intention
from .metrics import classification_metrics, retrieval_metrics
from .model import IntRA
from .score_weights import OBJECTIVE, calibrate_run, choose_weights
from .scoring import score_conversations
from .vision_pretrain import pretrain_vision


def distributed() -> tuple[int, int]:
    """(rank, world size); joins a gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank() if world > 1 else 0), world


def unk_rates(tokenizer: ContextTokenizer, texts: list[str]) -> dict[str, float]:
    """[UNK] rate of the tokenizer on English-only and Chinese-containing texts."""
    zh = [t for t in texts if any(is_cjk(ch) for ch in t)]
    en = [t for t in texts if not any(is_cjk(ch) for ch in t)]
    return {"en": round(tokenizer.unk_rate(en), 4), "zh": round(tokenizer.unk_rate(zh), 4), "n_en": len(en), "n_zh": len(zh)}


def _prepare_tokenizer(cfg: TrainConfig, ds, run: Path, resuming: bool) -> tuple[Tokenizer, list[int], dict[str, Any]]:
    model_dir = text_model_dir(cfg.text_model)
    texts = all_texts(ds)
    if model_dir is None:
        base = train_wordpiece(texts, cfg.tiny_text.vocab_size)
    else:
        base = load_tokenizer(model_dir)
    tok, added = (extend_cjk(base, texts) if cfg.extend_cjk_vocab else (base, []))
    if resuming:
        tok = Tokenizer.from_file(str(run / rd.TOKENIZER))
    added_ids = [tok.token_to_id(ch) for ch in added]
    settings = TextSettings(max_length=cfg.max_length)
    held_out = [t.text for name in ("validation", "test") for c in ds.splits.get(name, ()) for t in c.context]
    report = {
        "cjk_tokens_added": len(added),
        "unk_rate_before": unk_rates(ContextTokenizer(base, settings), held_out),
        "unk_rate_after": unk_rates(ContextTokenizer(tok, settings), held_out),
    }
    return tok, added_ids, report


def _param_groups(model: IntRA, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Pretrained encoders learn at `lr`; everything trained from scratch (heads, projections,
    the selector and a vision encoder built from a config) at `head_lr`."""
    pretrained = [model.text] if cfg.text_model != TEXT_TINY else []
    if cfg.vision_model not in (VISION_DEFAULT, VISION_EFFNET):  # EfficientNet-Lite0 is frozen
        pretrained.append(model.vision)
    slow = [p for m in pretrained for p in m.parameters() if p.requires_grad]
    ids = {id(p) for p in slow}
    fast = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": slow, "lr": cfg.lr}, {"params": fast, "lr": cfg.head_lr}]


def evaluate_split(model: IntRA, tokenizer: ContextTokenizer, stickers, ds, split: str, labels: list[int],
                   mode: str | None = None, attr_table: torch.Tensor | None = None,
                   text_frozen: bool = False, final: bool = False) -> dict[str, float]:
    """Retrieval metrics (and intention accuracy / macro-F1 when the model has a head).

    With `final`, also the metrics of the final score (cosine plus the prior and label term with
    the weights that are best on these scores), as ``final_*``."""
    convs = ds.split(split)
    scores, logits = score_conversations(model, tokenizer, stickers, convs, mode, attr_table, text_frozen)
    index = ds.sticker_index()
    gold = np.array([index[c.sticker_id] for c in convs])
    out = retrieval_metrics(scores, gold, labels)
    if final:
        _, tried = choose_weights(scores, logits, ds, gold)
        best = max(tried, key=lambda t: t["objective"])
        out.update({f"final_{k}": best[k] for k in ("objective", "prior_weight", "label_weight", *OBJECTIVE)})
    if logits is not None:
        cls = classification_metrics(logits.argmax(1), np.array([LABEL_INDEX[c.label] for c in convs]), len(LABELS))
        out.update({"intention_accuracy": cls["accuracy"], "intention_macro_f1": cls["macro_f1"]})
    return out


def lr_scale(cfg: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """Learning-rate factor at a step: cosine decay to 5% over the whole run (a pure function of
    the position, so a resumed run follows the same schedule)."""
    if cfg.schedule == "constant":
        return 1.0
    progress = (epoch * steps + step) / max(1, cfg.epochs * steps)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def extra_subset(ds, cfg: TrainConfig) -> list:
    """The extra intention-only comments used by a run: all of them, or a fixed random subset of
    `extra_intention_max` drawn from the seed (the same on every process and on resume)."""
    extra = list(ds.splits.get("extra_intention", ()))
    if len(extra) <= cfg.extra_intention_max:
        return extra
    keep = sorted(random.Random(f"{cfg.seed}-extra").sample(range(len(extra)), cfg.extra_intention_max))
    return [extra[i] for i in keep]


def candidates(gold: list[int], n_stickers: int, cfg: TrainConfig, rng: random.Random, labels: list[int],
               same_label: dict[int, list[int]]) -> list[int]:
    """The stickers a batch is scored against: its gold stickers (in-batch negatives for each
    other), `sampled_negatives` random ones (-1: the whole catalog) and `hard_negatives` that
    share a gold sticker's label."""
    n_neg = n_stickers if cfg.sampled_negatives < 0 else min(cfg.sampled_negatives, n_stickers)
    sampled = rng.sample(range(n_stickers), n_neg)
    if cfg.hard_negatives > 0:
        pool = sorted({j for g in gold if labels[g] >= 0 for j in same_label[labels[g]] if j != g})
        sampled += rng.sample(pool, min(cfg.hard_negatives, len(pool)))
    return list(dict.fromkeys(gold + sampled))


class TextCache:
    """Pooled text-encoder outputs of every training context, once the encoder is frozen.

    Each context is cached with and without its knowledge, so knowledge dropout still applies.
    """

    def __init__(self, with_k: torch.Tensor, without_k: torch.Tensor, has_k: torch.Tensor, extra: torch.Tensor) -> None:
        self.with_k, self.without_k, self.has_k, self.extra = with_k, without_k, has_k, extra

    @classmethod
    @torch.no_grad()
    def build(cls, model: IntRA, tokenizer: ContextTokenizer, convs, use_knowledge: bool, extra, progress: bool) -> TextCache:
        for p in model.text.parameters():
            p.requires_grad_(False)
        model.eval()

        def encode(items, knowledge: bool) -> torch.Tensor:
            # batches of similar length pad little (42k GoEmotions comments: minutes saved)
            order = sorted(range(len(items)), key=lambda i: sum(len(t.text) for t in items[i].context))
            out = torch.zeros(len(items), model.label_table.shape[1])
            for k in tqdm(range(0, len(items), 64), desc="caching frozen text encoder", disable=not progress, leave=False):
                rows = order[k:k + 64]
                ids, mask = context_batch([items[i] for i in rows], tokenizer, knowledge)
                out[rows] = model.encode_text(ids, mask)
            return out

        without_k = encode(convs, False)
        has_k = torch.tensor([bool(use_knowledge and c.knowledge) for c in convs])
        with_k = encode(convs, True) if use_knowledge and bool(has_k.any()) else without_k
        model.train()
        return cls(with_k, without_k, has_k, encode(extra, False))

    def pooled(self, idx: list[int], dropout: float, rng: random.Random) -> torch.Tensor:
        keep = torch.tensor([bool(self.has_k[i]) and rng.random() >= dropout for i in idx])
        return torch.where(keep[:, None], self.with_k[idx], self.without_k[idx])


def train(cfg: TrainConfig, data: Path | str, out: Path | str, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Train Int-RA (or an ablation / the dual encoder) on a dataset directory into a run directory."""
    cfg.validate()
    rank, world = distributed()
    run = Path(out)
    ds = load_dataset(data)
    for split in ("train", "validation"):
        ds.split(split)
    resuming = resume and (run / rd.STATE).is_file()
    start_epoch, best, history = 0, -1.0, []
    if resuming:
        saved = TrainConfig.from_dict(rd.read_config(run)["train"])
        if {**saved.to_dict(), "epochs": 0} != {**cfg.to_dict(), "epochs": 0}:
            raise rd.RunError(f"{run} holds a run with another config; resume needs the same flags (or use a new --out)")
        state = json.loads((run / rd.STATE).read_text())
        start_epoch, best = state["epoch"], state["best"]
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)

    tok, added_ids, tok_report = _prepare_tokenizer(cfg, ds, run, resuming)
    text, text_conf = build_text_encoder(cfg, tok.get_vocab_size(), text_model_dir(cfg.text_model))
    vision, vision_conf, image_settings = build_vision_encoder(cfg)
    model = IntRA(cfg, text, text_conf, vision, vision_conf)
    freeze_lower_layers(model.text, cfg.train_text_layers, added_ids)
    optimizer = torch.optim.Adam(_param_groups(model, cfg), weight_decay=cfg.weight_decay)
    if resuming:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(run / rd.LAST)))
        rd.load_optimizer(run / rd.OPTIMIZER, optimizer)
    ctx_tok = ContextTokenizer(tok, TextSettings(max_length=cfg.max_length))
    labels, label_rule = sticker_labels(ds)
    if rank == 0 and not resuming:
        run.mkdir(parents=True, exist_ok=True)
        atomic.write_text(run / rd.TOKENIZER, tok.to_str())
        rd.write_config(run, cfg, text_conf, vision_conf, ctx_tok.settings, image_settings,
                        {k: ds.info.get(k) for k in ("name", "synthetic", "source")} | {"path": str(Path(data).resolve())},
                        {"tokenizer": tok_report, "label_rule": label_rule})
        (run / rd.LOG).unlink(missing_ok=True)

    stickers = sticker_inputs(ds, image_settings)
    if cfg.vision_model == VISION_EFFNET:
        freeze_regions(stickers, model.vision)
    index = ds.sticker_index()
    train_convs = ds.split("train")
    extra = extra_subset(ds, cfg) if cfg.extra_intention and model.intention else []
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    n_stickers = len(ds.stickers)
    same_label: dict[int, list[int]] = {}  # label -> stickers with it, for hard negatives
    for j, lab in enumerate(labels):
        same_label.setdefault(lab, []).append(j)
    train_log_prior = torch.from_numpy(log_prior(usage_vector(ds.usage_counts(), ds.sticker_ids),
                                                 DEFAULT_SMOOTHING).astype(np.float32)) if cfg.prior_adjusted else None
    step_size = cfg.batch_size * world
    steps = max(1, len(train_convs) // step_size)

    warmup: list[float] = []
    if not resuming and cfg.vision_warmup_steps > 0 and cfg.vision_model == VISION_DEFAULT and model.attributes:
        refresh_label_table(model, ctx_tok)
        warmup = pretrain_vision(model, stickers, encode_attribute_table(model, ctx_tok, stickers.attribute_texts),
                                 cfg.vision_warmup_steps, cfg.vision_warmup_batch, cfg.head_lr, cfg.temperature,
                                 cfg.seed, progress and rank == 0)
        if rank == 0 and progress:
            tqdm.write(f"vision warm-up: InfoNCE {warmup[0]:.3f} -> {warmup[-1]:.3f}")

    intention_stage: list[float] = []
    if start_epoch == 0 and cfg.intention_pretrain_epochs > 0 and model.intention:
        if world > 1:
            raise ConfigError("the intention stage (intention_pretrain_epochs) runs in one process, not under torchrun")
        labelled = list(train_convs) + list(ds.splits.get("extra_intention", ()))
        intention_stage = pretrain_intention(model, ctx_tok, labelled, cfg, added_ids, progress and rank == 0)
        if rank == 0 and progress:
            tqdm.write(f"intention stage on {len(labelled)} comments: loss per epoch {[round(x, 3) for x in intention_stage]}")

    cache: TextCache | None = None
    attr_table: torch.Tensor | None = None
    frozen_tables = False
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        if cache is None and 0 <= cfg.text_epochs <= epoch:
            cache = TextCache.build(model, ctx_tok, train_convs, cfg.use_knowledge, extra, progress and rank == 0)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        order_rng = random.Random(f"{cfg.seed}-{epoch}")
        local_rng = random.Random(f"{cfg.seed}-{epoch}-{rank}")
        order = order_rng.sample(range(len(train_convs)), len(train_convs))
        if not frozen_tables:
            # once the text encoder is frozen, H^Y and H^A no longer change: compute them once
            refresh_label_table(model, ctx_tok)
            attr_table = encode_attribute_table(model, ctx_tok, stickers.attribute_texts) if model.attributes else None
            frozen_tables = cache is not None
        model.train()
        sums: dict[str, float] = {}
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0, unit="step")
        for step in bar:
            scale = lr_scale(cfg, epoch, step, steps)
            for group, base in zip(optimizer.param_groups, (cfg.lr, cfg.head_lr)):
                group["lr"] = base * scale
            begin = step * step_size + rank * cfg.batch_size
            convs = [train_convs[i % len(train_convs)] for i in order[begin:begin + cfg.batch_size]] or [train_convs[0]]
            text_args: dict[str, Any]
            if cache is None:
                ids, mask = context_batch(convs, ctx_tok, cfg.use_knowledge, cfg.knowledge_dropout, local_rng)
                text_args = {"ids": ids, "mask": mask}
            else:
                idx = order[begin:begin + cfg.batch_size] or [0]
                text_args = {"ids": None, "mask": None, "pooled": cache.pooled(idx, cfg.knowledge_dropout, local_rng)}
            gold = [index[c.sticker_id] for c in convs]
            cand = candidates(gold, n_stickers, cfg, local_rng, labels, same_label)
            col = {s: i for i, s in enumerate(cand)}
            positive = torch.tensor([col[g] for g in gold])
            negative = torch.tensor([[s != g for s in cand] for g in gold])
            extra_args: dict[str, Any] = {}
            if extra:
                per_batch = cfg.extra_intention_per_batch if cache is None else cfg.extra_intention_cached_per_batch
                chosen = local_rng.sample(range(len(extra)), min(per_batch, len(extra)))
                extra_args = {"extra_labels": torch.tensor([LABEL_INDEX[extra[i].label] for i in chosen])}
                if cache is None:
                    e_ids, e_mask = context_batch([extra[i] for i in chosen], ctx_tok, False)
                    extra_args.update(extra_ids=e_ids, extra_mask=e_mask)
                else:
                    extra_args["extra_pooled"] = cache.extra[chosen]
            loss, parts = ddp(gold_label=torch.tensor([LABEL_INDEX[c.label] for c in convs]), pixels=stickers.pixels[cand],
                              attr_emb=attr_table[cand] if attr_table is not None else None,
                              attr_mask=stickers.attribute_mask[cand], positive=positive, negative_mask=negative,
                              log_prior=train_log_prior[cand] if train_log_prior is not None else None,
                              raw_regions=stickers.regions_of(cand),
                              **text_args, **extra_args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix({k: f"{v / (step + 1):.3f}" for k, v in sums.items()})
        val = evaluate_split(model, ctx_tok, stickers, ds, "validation", labels,
                             attr_table=attr_table if frozen_tables else None, text_frozen=frozen_tables,
                             final=cfg.select_on == "final")
        record = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - t0, 1),
                  **{f"train_{k}": round(v / steps, 4) for k, v in sums.items()},
                  **{f"val_{k}": round(v, 4) for k, v in val.items()}}
        history.append(record)
        chosen = val["mAP"] if cfg.select_on == "mAP" else val["final_objective"]
        improved = chosen > best
        best = max(best, chosen)
        if rank == 0:
            if improved:
                rd.save_weights(run / rd.BEST, model)
                atomic.write_json(run / "metrics.json", {"epoch": epoch + 1, "validation": val})
            rd.save_weights(run / rd.LAST, model)
            rd.save_optimizer(run / rd.OPTIMIZER, optimizer)
            with open(run / rd.LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            atomic.write_json(run / rd.STATE, {"epoch": epoch + 1, "best": best})
            if progress:
                tqdm.write(f"epoch {epoch + 1}: val mAP {val['mAP']:.4f} P@1 {val['P@1']:.4f} R@1 {val['R@1']:.4f} "
                           f"MRR {val['MRR']:.4f}" + (f" final {val['final_objective']:.4f}" if "final_objective" in val else "")
                           + (" (best, saved)" if improved else ""))
        if world > 1:
            dist.barrier()
    scoring = calibrate_run(run, data).to_json() if rank == 0 else {}
    return {"run": str(run), "best_val": best, "select_on": cfg.select_on, "scoring": scoring, "intention_stage": intention_stage, "vision_warmup": warmup[:1] + warmup[-1:], "history": history, "tokenizer": tok_report, "image_settings": image_settings.to_json()}
