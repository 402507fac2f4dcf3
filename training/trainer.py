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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tokenizers import Tokenizer
from tqdm import tqdm

from sdk import atomic
from sdk.dataset import Conversation, Dataset, load_dataset
from sdk.imageprep import ImageSettings
from sdk.labels import label_id
from sdk.scoring import DEFAULT_SMOOTHING, log_prior, usage_vector
from sdk.textprep import SPEAKER_MARKERS, ContextTokenizer, TextSettings

from . import run_dir as rd
from .catalog_scores import score_conversations
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
from .intention_pretrain import pretrain_intention
from .metrics import classification_metrics, retrieval_metrics
from .model import IntRA
from .model_inputs import (
    StickerInputs,
    all_texts,
    context_batch,
    encode_attribute_table,
    freeze_regions,
    refresh_label_table,
    sticker_inputs,
    sticker_labels,
)
from .score_weights import OBJECTIVE, calibrate_run, choose_weights
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


def marks_speakers(cfg: TrainConfig, ds: Dataset) -> bool:
    """Whether the run reads turns behind their speakers' markers: as configured, or ("auto") when
    some training chat has turns of more than one speaker."""
    if cfg.speaker_markers != "auto":
        return cfg.speaker_markers == "on"
    return any(len({t.speaker for t in c.context}) > 1 for c in ds.split("train"))


def text_settings(cfg: TrainConfig, ds: Dataset) -> TextSettings:
    """How the run's contexts become ids (written to its config, then to the bundle's manifest)."""
    return TextSettings(max_length=cfg.max_length, speaker_markers=SPEAKER_MARKERS if marks_speakers(cfg, ds) else None)


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
    settings = TextSettings(max_length=cfg.max_length)  # the [UNK] rates read plain texts: only the length matters
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
                   text_frozen: bool = False, final: bool = False, objective: str = "retrieval") -> dict[str, float]:
    """Retrieval metrics (and intention accuracy / macro-F1 when the model has a head).

    With `final`, also the metrics of the final score (cosine plus the prior and label term with
    the weights that are best on these scores), as ``final_*``."""
    convs = ds.split(split)
    scores, logits = score_conversations(model, tokenizer, stickers, convs, mode, attr_table, text_frozen)
    index = ds.sticker_index()
    gold = np.array([index[c.gold] for c in convs])
    out = retrieval_metrics(scores, gold, labels)
    if final:
        _, tried = choose_weights(scores, logits, ds, gold, objective)
        best = max(tried, key=lambda t: t["objective"])
        out.update({f"final_{k}": best[k] for k in ("objective", "prior_weight", "label_weight", *OBJECTIVE, "macro_F1")})
    if logits is not None:
        gold_labels = np.array([label_id(c.label) for c in convs])
        if (gold_labels >= 0).any():  # no intention figures where the split has no labels
            known = gold_labels >= 0
            cls = classification_metrics(logits.argmax(1)[known], gold_labels[known])
            out.update({"intention_accuracy": cls["accuracy"], "intention_macro_f1": cls["macro_f1"]})
    return out


def lr_scale(cfg: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """Learning-rate factor at a step: cosine decay to 5% over the whole run (a pure function of
    the position, so a resumed run follows the same schedule)."""
    if cfg.schedule == "constant":
        return 1.0
    progress = (epoch * steps + step) / max(1, cfg.epochs * steps)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scales(cfg: TrainConfig, epoch: int, step: int, steps: int) -> tuple[float, float]:
    """(text encoder, everything else) learning-rate factors at a step. With text_schedule
    "tuned", the encoder warms up linearly over the first 6% of its tuned epochs' steps and decays
    linearly to 0 at their end (it is frozen after them); else it follows `lr_scale`."""
    rest = lr_scale(cfg, epoch, step, steps)
    if cfg.text_schedule != "tuned":
        return rest, rest
    total = steps * (cfg.text_epochs if 0 < cfg.text_epochs < cfg.epochs else cfg.epochs)
    at, ramp = epoch * steps + step, max(1, int(0.06 * total))
    return (at / ramp if at < ramp else max(0.0, (total - at) / max(1, total - ramp))), rest


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


@dataclass
class TrainingRun:
    """Everything one training run holds between its steps."""

    cfg: TrainConfig
    data: Path
    run: Path
    ds: Dataset
    rank: int
    world: int
    resuming: bool
    start_epoch: int = 0
    best: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)
    model: IntRA = field(init=False)
    optimizer: torch.optim.Optimizer = field(init=False)
    ctx_tok: ContextTokenizer = field(init=False)
    added_ids: list[int] = field(init=False)
    tok_report: dict[str, Any] = field(init=False)
    image_settings: ImageSettings = field(init=False)
    labels: list[int] = field(init=False)
    stickers: StickerInputs = field(init=False)
    extra: list[Conversation] = field(init=False)
    index: dict[str, int] = field(init=False)
    same_label: dict[int, list[int]] = field(init=False)
    train_log_prior: torch.Tensor | None = field(init=False)

    @property
    def train_convs(self) -> Sequence[Conversation]:
        return self.ds.split("train")

    @property
    def step_size(self) -> int:
        return self.cfg.batch_size * self.world

    @property
    def steps(self) -> int:
        return max(1, len(self.train_convs) // self.step_size)

    def shows_progress(self, progress: bool) -> bool:
        return progress and self.rank == 0


def train(cfg: TrainConfig, data: Path | str, out: Path | str, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Train Int-RA (or an ablation / the dual encoder) on a dataset directory into a run directory."""
    cfg.validate()
    tr = _open_run(cfg, Path(data), Path(out), resume)
    _build_model(tr)
    _prepare_data(tr)
    warmup = _vision_warmup(tr, progress)
    intention_stage = _intention_stage(tr, progress)
    _fit(tr, progress)
    scoring = calibrate_run(tr.run, tr.data).to_json() if tr.rank == 0 else {}
    return {"run": str(tr.run), "best_val": tr.best, "select_on": cfg.select_on, "scoring": scoring,
            "intention_stage": intention_stage, "vision_warmup": warmup[:1] + warmup[-1:], "history": tr.history,
            "tokenizer": tr.tok_report, "image_settings": tr.image_settings.to_json()}


def _open_run(cfg: TrainConfig, data: Path, run: Path, resume: bool) -> TrainingRun:
    """Load the dataset, read the state of a run to resume (same config only) and seed everything."""
    rank, world = distributed()
    ds = load_dataset(data)
    for split in ("train", "validation"):
        ds.split(split)
    tr = TrainingRun(cfg, data, run, ds, rank, world, resuming=resume and (run / rd.STATE).is_file())
    if tr.resuming:
        saved = TrainConfig.from_dict(rd.read_config(run)["train"])
        if {**saved.to_dict(), "epochs": 0} != {**cfg.to_dict(), "epochs": 0}:
            raise rd.RunError(f"{run} holds a run with another config; resume needs the same flags (or use a new --out)")
        state = json.loads((run / rd.STATE).read_text())
        tr.start_epoch, tr.best = state["epoch"], state["best"]
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    return tr


def _build_model(tr: TrainingRun) -> None:
    """Tokenizer, encoders, Int-RA and its optimizer (restored when resuming); a new run writes
    its tokenizer and config."""
    cfg = tr.cfg
    tok, tr.added_ids, tr.tok_report = _prepare_tokenizer(cfg, tr.ds, tr.run, tr.resuming)
    text, text_conf = build_text_encoder(cfg, tok.get_vocab_size(), text_model_dir(cfg.text_model))
    if cfg.cjk_init == "multilingual" and not tr.resuming:
        from .cjk_init import init_cjk_rows

        tr.tok_report["cjk_init"] = init_cjk_rows(text, tok, [tok.id_to_token(i) for i in tr.added_ids])
    vision, vision_conf, tr.image_settings = build_vision_encoder(cfg)
    tr.model = IntRA(cfg, text, text_conf, vision, vision_conf)
    freeze_lower_layers(tr.model.text, cfg.train_text_layers, tr.added_ids)
    tr.optimizer = torch.optim.Adam(_param_groups(tr.model, cfg), weight_decay=cfg.weight_decay)
    if tr.resuming:
        from safetensors.torch import load_file

        tr.model.load_state_dict(load_file(str(tr.run / rd.LAST)))
        rd.load_optimizer(tr.run / rd.OPTIMIZER, tr.optimizer)
    # a resumed run keeps the text settings it started with (an "auto" choice is not made again)
    settings = (TextSettings.from_json(rd.read_config(tr.run)["text_settings"], str(tr.run / rd.CONFIG), rd.RunError)
                if tr.resuming else text_settings(cfg, tr.ds))
    tr.ctx_tok = ContextTokenizer(tok, settings)
    tr.labels, label_rule = sticker_labels(tr.ds)
    if tr.rank == 0 and not tr.resuming:
        tr.run.mkdir(parents=True, exist_ok=True)
        atomic.write_text(tr.run / rd.TOKENIZER, tok.to_str())
        info = {"name": tr.ds.info.name, "synthetic": tr.ds.info.synthetic, "source": tr.ds.info.source,
                "path": str(tr.data.resolve())}
        rd.write_config(tr.run, cfg, text_conf, vision_conf, tr.ctx_tok.settings, tr.image_settings, info,
                        {"tokenizer": tr.tok_report, "label_rule": label_rule})
        (tr.run / rd.LOG).unlink(missing_ok=True)


def _prepare_data(tr: TrainingRun) -> None:
    """Sticker inputs, the extra intention comments, the label groups of hard negatives and the
    training split's log prior (prior-adjusted InfoNCE)."""
    cfg = tr.cfg
    tr.stickers = sticker_inputs(tr.ds, tr.image_settings)
    if bool(tr.stickers.text_only.any()) and not tr.model.attributes:
        raise ConfigError(f"{tr.data}: {int(tr.stickers.text_only.sum())} stickers have no image, and a sticker side "
                          "that reads no descriptions (--no-attributes, --dual-encoder) cannot embed them")
    if cfg.vision_model == VISION_EFFNET:
        freeze_regions(tr.stickers, tr.model.vision)
    tr.extra = extra_subset(tr.ds, cfg) if cfg.extra_intention and tr.model.intention else []
    tr.index = tr.ds.sticker_index()
    tr.same_label = {}
    for j, lab in enumerate(tr.labels):
        tr.same_label.setdefault(lab, []).append(j)
    tr.train_log_prior = torch.from_numpy(log_prior(usage_vector(tr.ds.usage_counts(), tr.ds.sticker_ids),
                                                    DEFAULT_SMOOTHING).astype(np.float32)) if cfg.prior_adjusted else None


def _vision_warmup(tr: TrainingRun, progress: bool) -> list[float]:
    """Contrastive warm-up of the from-scratch vision encoder against the descriptions (new runs)."""
    cfg, model = tr.cfg, tr.model
    if tr.resuming or cfg.vision_warmup_steps <= 0 or cfg.vision_model != VISION_DEFAULT or not model.attributes:
        return []
    refresh_label_table(model, tr.ctx_tok)
    warmup = pretrain_vision(model, tr.stickers, encode_attribute_table(model, tr.ctx_tok, tr.stickers.slots),
                             cfg.vision_warmup_steps, cfg.vision_warmup_batch, cfg.head_lr, cfg.temperature,
                             cfg.seed, tr.shows_progress(progress))
    if tr.shows_progress(progress):
        tqdm.write(f"vision warm-up: InfoNCE {warmup[0]:.3f} -> {warmup[-1]:.3f}")
    return warmup


def _intention_stage(tr: TrainingRun, progress: bool) -> list[float]:
    """The encoder's top layers and the head trained on every labelled comment (one process)."""
    if tr.start_epoch != 0 or tr.cfg.intention_pretrain_epochs <= 0 or not tr.model.intention:
        return []
    if tr.world > 1:
        raise ConfigError("the intention stage (intention_pretrain_epochs) runs in one process, not under torchrun")
    labelled = [c for c in (*tr.train_convs, *tr.ds.splits.get("extra_intention", ())) if c.label is not None]
    losses = pretrain_intention(tr.model, tr.ctx_tok, labelled, tr.cfg, tr.added_ids, tr.shows_progress(progress))
    if tr.shows_progress(progress):
        tqdm.write(f"intention stage on {len(labelled)} comments: loss per epoch {[round(x, 3) for x in losses]}")
    return losses


def _fit(tr: TrainingRun, progress: bool) -> None:
    """The epochs: train, validate, keep the best checkpoint by `select_on`, save the state to resume."""
    cfg, model = tr.cfg, tr.model
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if tr.world > 1 else model
    cache: TextCache | None = None
    attr_table: torch.Tensor | None = None
    frozen_tables = False
    for epoch in range(tr.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        if cache is None and 0 <= cfg.text_epochs <= epoch:
            cache = TextCache.build(model, tr.ctx_tok, tr.train_convs, cfg.use_knowledge, tr.extra, tr.shows_progress(progress))
        torch.manual_seed(cfg.seed * 1000 + epoch)
        if not frozen_tables:
            # once the text encoder is frozen, H^Y and H^A no longer change: compute them once
            refresh_label_table(model, tr.ctx_tok)
            attr_table = encode_attribute_table(model, tr.ctx_tok, tr.stickers.slots) if model.attributes else None
            frozen_tables = cache is not None
        sums = _train_epoch(tr, ddp, epoch, cache, attr_table, progress)
        val = evaluate_split(model, tr.ctx_tok, tr.stickers, tr.ds, "validation", tr.labels,
                             attr_table=attr_table if frozen_tables else None, text_frozen=frozen_tables,
                             final=cfg.select_on == "final", objective=cfg.calibrate_for)
        _end_epoch(tr, epoch, time.perf_counter() - t0, sums, val, progress)
        if tr.world > 1:
            dist.barrier()


def _time_left(history: list[dict[str, float]], epochs: int, text_epochs: int = -1) -> str:
    """' | 40 s an epoch, about 6 min left', from the latest epoch (the bars show one epoch at a time).
    The epochs that tune the text encoder are far slower than the cached ones after them, so the
    tuned epochs, and the first frozen one (which also caches the encoder's outputs), promise no
    figure for the rest."""
    done = [r["seconds"] for r in history if "seconds" in r]
    if not done or len(history) >= epochs:
        return ""
    if len(history) < text_epochs:
        more = text_epochs - len(history)
        return f" | {done[-1]:.0f} s an epoch; {more} more with the text encoder tuned, then the rest runs faster"
    if text_epochs >= 0 and len(history) in (text_epochs, text_epochs + 1):
        why = "the text encoder is frozen from here" if len(history) == text_epochs else "this epoch cached its outputs"
        return f" | {done[-1]:.0f} s an epoch; {why}, so the rest runs faster"
    last = done[-1]
    left = last * (epochs - len(history))
    return f" | {last:.0f} s an epoch, about {left / 60:.0f} min left" if left >= 90 else f" | {last:.0f} s an epoch, about {left:.0f} s left"


def _train_epoch(tr: TrainingRun, ddp: torch.nn.Module, epoch: int, cache: TextCache | None,
                 attr_table: torch.Tensor | None, progress: bool) -> dict[str, float]:
    """One pass over the training split; the summed loss parts."""
    cfg = tr.cfg
    convs_all = tr.train_convs
    order = random.Random(f"{cfg.seed}-{epoch}").sample(range(len(convs_all)), len(convs_all))
    local_rng = random.Random(f"{cfg.seed}-{epoch}-{tr.rank}")
    tr.model.train()
    sums: dict[str, float] = {}
    bar = tqdm(range(tr.steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not tr.shows_progress(progress), unit="step")
    for step in bar:
        for group, base, scale in zip(tr.optimizer.param_groups, (cfg.lr, cfg.head_lr), lr_scales(cfg, epoch, step, tr.steps)):
            group["lr"] = base * scale
        begin = step * tr.step_size + tr.rank * cfg.batch_size
        rows = order[begin:begin + cfg.batch_size]
        loss, parts = ddp(**_batch(tr, rows, cache, attr_table, local_rng))
        tr.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        tr.optimizer.step()
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix({k: f"{v / (step + 1):.3f}" for k, v in sums.items()})
    return sums


def _batch(tr: TrainingRun, rows: list[int], cache: TextCache | None, attr_table: torch.Tensor | None,
           rng: random.Random) -> dict[str, Any]:
    """The model's inputs for the training contexts at `rows`: text (or cached pooled text), the
    candidate stickers with the gold ones marked, and extra intention-only comments."""
    cfg, convs_all = tr.cfg, tr.train_convs
    convs = [convs_all[i % len(convs_all)] for i in rows] or [convs_all[0]]
    if cache is None:
        ids, mask = context_batch(convs, tr.ctx_tok, cfg.use_knowledge, cfg.knowledge_dropout, rng)
        args: dict[str, Any] = {"ids": ids, "mask": mask}
    else:
        args = {"ids": None, "mask": None, "pooled": cache.pooled(rows or [0], cfg.knowledge_dropout, rng)}
    gold = [tr.index[c.gold] for c in convs]
    cand = candidates(gold, len(tr.ds.stickers), cfg, rng, tr.labels, tr.same_label)
    col = {s: i for i, s in enumerate(cand)}
    args.update(gold_label=torch.tensor([label_id(c.label) for c in convs]), pixels=tr.stickers.pixels[cand],
                attr_emb=attr_table[cand] if attr_table is not None else None, attr_mask=tr.stickers.attribute_mask[cand],
                positive=torch.tensor([col[g] for g in gold]), negative_mask=torch.tensor([[s != g for s in cand] for g in gold]),
                log_prior=tr.train_log_prior[cand] if tr.train_log_prior is not None else None,
                raw_regions=tr.stickers.regions_of(cand), text_only=tr.stickers.text_only_of(cand))
    if tr.extra:
        per_batch = cfg.extra_intention_per_batch if cache is None else cfg.extra_intention_cached_per_batch
        chosen = rng.sample(range(len(tr.extra)), min(per_batch, len(tr.extra)))
        args["extra_labels"] = torch.tensor([label_id(tr.extra[i].label) for i in chosen])
        if cache is None:
            args["extra_ids"], args["extra_mask"] = context_batch([tr.extra[i] for i in chosen], tr.ctx_tok, False)
        else:
            args["extra_pooled"] = cache.extra[chosen]
    return args


def _end_epoch(tr: TrainingRun, epoch: int, seconds: float, sums: dict[str, float], val: dict[str, float], progress: bool) -> None:
    """Log the epoch; keep the checkpoint when it is the best by `select_on`; save the state to resume."""
    cfg = tr.cfg
    record = {"epoch": epoch + 1, "seconds": round(seconds, 1), **{f"train_{k}": round(v / tr.steps, 4) for k, v in sums.items()},
              **{f"val_{k}": round(v, 4) for k, v in val.items()}}
    tr.history.append(record)
    chosen = val["mAP"] if cfg.select_on == "mAP" else val["final_objective"]
    improved = chosen > tr.best
    tr.best = max(tr.best, chosen)
    if tr.rank != 0:
        return
    if improved:
        rd.save_weights(tr.run / rd.BEST, tr.model)
        atomic.write_json(tr.run / "metrics.json", {"epoch": epoch + 1, "validation": val})
    rd.save_weights(tr.run / rd.LAST, tr.model)
    rd.save_optimizer(tr.run / rd.OPTIMIZER, tr.optimizer)
    with open(tr.run / rd.LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    atomic.write_json(tr.run / rd.STATE, {"epoch": epoch + 1, "best": tr.best})
    if progress:
        tqdm.write(f"epoch {epoch + 1}: val mAP {val['mAP']:.4f} P@1 {val['P@1']:.4f} R@1 {val['R@1']:.4f} "
                   f"MRR {val['MRR']:.4f}" + (f" final {val['final_objective']:.4f}" if "final_objective" in val else "")
                   + (" (best, saved)" if improved else "") + _time_left(tr.history, cfg.epochs, cfg.text_epochs))
