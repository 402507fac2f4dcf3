"""A shallower text encoder distilled from a trained run: fewer FLOPs per rank.

The student is the teacher's text encoder with `layers` of its layers (evenly spaced, the last one
always kept), trained to reproduce the teacher on every text the encoder sees in the dataset:
training contexts as the runtime tokenizes them, sticker descriptions, label names, and up to
`extra_max` extra intention-only comments. The loss is MSE plus cosine on the pooled output, and,
for contexts, the cosine of the query and the KL divergence of the intentions that the teacher's
head makes of it (what ranking depends on). Everything else
(vision encoder, selector, intention head) is the teacher's, unchanged. The result is an ordinary
run directory, so `intra export`, `intra eval` and the SDK take it as they take any run; its
scoring weights are chosen again on validation.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sdk import atomic
from sdk.dataset import Dataset, load_dataset
from sdk.labels import LABELS

from .config import ConfigError
from .encoders import pooled_text, rebuild
from .fake_quant import add_fake_quant, remove_fake_quant
from .model_inputs import context_batch, refresh_label_table
from .run_dir import BEST, CONFIG, TOKENIZER, load_run, save_weights

DISTILL_FILE = "distill.json"


@dataclass(frozen=True)
class DistillConfig:
    layers: int = 3
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-4
    extra_max: int = 4096  # extra intention-only comments (GoEmotions has 42k; minutes each thousand)
    seed: int = 0
    # train under dynamic int8's rounding (training/fake_quant.py): quantization-aware fine-tuning,
    # which may keep every layer (layers = the teacher's)
    fake_quant: bool = False

    def validate(self, teacher_layers: int) -> None:
        most = teacher_layers if self.fake_quant else teacher_layers - 1
        if not 1 <= self.layers <= most:
            raise ConfigError(f"layers must be between 1 and {most} (the teacher has {teacher_layers}"
                              f"{'' if self.fake_quant else '; as many only with fake_quant'}), got {self.layers}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.extra_max < 0:
            raise ConfigError(f"extra_max must be >= 0, got {self.extra_max}")


def kept_layers(teacher: int, student: int) -> list[int]:
    """Evenly spaced teacher layers for the student's initialisation, ending with the last."""
    return sorted({round(teacher - 1 - i * (teacher - 1) / max(student - 1, 1)) for i in range(student)}) if student > 1 else [teacher - 1]


def student_encoder(teacher: torch.nn.Module, teacher_conf: dict, layers: int) -> tuple[torch.nn.Module, dict, list[int]]:
    """A copy of the teacher's text encoder with only the kept layers."""
    conf = {**teacher_conf, "num_hidden_layers": layers}
    student = rebuild(conf)
    keep = kept_layers(int(teacher_conf["num_hidden_layers"]), layers)
    state = teacher.state_dict()
    mapped = {}
    for key, value in state.items():
        parts = key.split(".")
        if "layer" in parts and parts[parts.index("layer") + 1].isdigit():
            i = parts.index("layer") + 1
            old = int(parts[i])
            if old not in keep:
                continue
            parts[i] = str(keep.index(old))
        mapped[".".join(parts)] = value
    student.load_state_dict(mapped, strict=True)
    return student, conf, keep


def distill_batches(ds: Dataset, tokenizer, use_knowledge: bool, cfg: DistillConfig) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Token batches of every text the encoder sees, shuffled once with the seed; the flag marks
    batches of contexts (whose queries and intentions are distilled too)."""
    rng = random.Random(cfg.seed)
    convs = list(ds.split("train"))
    extra = list(ds.splits.get("extra_intention", ()))
    convs += rng.sample(extra, min(cfg.extra_max, len(extra)))
    texts = list(LABELS) + [v for s in ds.stickers for v in s.attributes.values() if v.strip()]
    rng.shuffle(convs)
    rng.shuffle(texts)
    out = [(*context_batch(convs[k:k + cfg.batch_size], tokenizer, use_knowledge), True) for k in range(0, len(convs), cfg.batch_size)]
    for k in range(0, len(texts), cfg.batch_size):
        ids, mask = tokenizer.encode_texts(texts[k:k + cfg.batch_size])
        out.append((torch.from_numpy(ids), torch.from_numpy(mask), False))
    rng.shuffle(out)
    return out


def distill(teacher_run: Path | str, out: Path | str, cfg: DistillConfig = DistillConfig(), data: Path | str | None = None,
            progress: bool = True) -> Path:
    """Write a run directory at `out` whose text encoder is a `cfg.layers`-layer student of the teacher's."""
    from .score_weights import calibrate_run

    teacher_run, out = Path(teacher_run), Path(out)
    model, tokenizer, _, conf = load_run(teacher_run)
    cfg.validate(int(conf["text_encoder"]["num_hidden_layers"]))
    data = data or conf["dataset"]["path"]
    sources = [teacher_run, Path(data)]
    atomic.check_output(out, DISTILL_FILE, "distilled run", sources)  # before the minutes of training, not after
    torch.manual_seed(cfg.seed)
    ds = load_dataset(data)
    student, student_conf, keep = student_encoder(model.text, conf["text_encoder"], cfg.layers)
    if cfg.fake_quant:
        add_fake_quant(student)
    batches = distill_batches(ds, tokenizer, model.cfg.use_knowledge, cfg)
    with torch.no_grad():
        targets = [_outputs(model, model.text, ids, mask, is_context) for ids, mask, is_context in
                   tqdm(batches, desc="teacher outputs", disable=not progress, leave=False)]
    losses = _train_student(model, student, batches, targets, cfg, progress)
    student.eval()
    remove_fake_quant(student)  # an fp32 model again: the export quantizes it
    model.text = student
    refresh_label_table(model, tokenizer)
    _write_run(teacher_run, out, model, {**conf, "text_encoder": student_conf},
               {**asdict(cfg), "teacher": str(teacher_run), "kept_layers": keep, "epoch_losses": [round(x, 6) for x in losses],
                "texts": sum(len(b[0]) for b in batches)}, sources)
    calibrate_run(out, data)
    return out


def _train_student(model, student: torch.nn.Module, batches: list, targets: list, cfg: DistillConfig,
                   progress: bool) -> list[float]:
    """AdamW with a linear decay over every step; returns the mean loss of each epoch."""
    for p in model.parameters():
        p.requires_grad_(False)  # only the student learns; the head is the teacher's
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr)
    steps = cfg.epochs * len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    losses = []
    student.train()
    for epoch in range(cfg.epochs):
        total = 0.0
        for (ids, mask, is_context), target in tqdm(list(zip(batches, targets)), desc=f"distill epoch {epoch + 1}/{cfg.epochs}",
                                                    disable=not progress, leave=False):
            loss = _loss(_outputs(model, student, ids, mask, is_context), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        losses.append(total / len(batches))
    return losses


def _outputs(model, encoder: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, is_context: bool) -> list[torch.Tensor]:
    """The pooled output, and for contexts the query and intention logits the head makes of it."""
    pooled = pooled_text(encoder, ids, mask, model.cfg.pooling)
    if not is_context:
        return [pooled]
    logits, query = model.query(pooled)
    return [pooled, query] + ([logits] if logits is not None else [])


def _loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """MSE + (1 - cosine) on the pooled output; 1 - cosine on the query; KL on the intentions."""
    f = torch.nn.functional
    loss = f.mse_loss(student[0], teacher[0]) + (1 - f.cosine_similarity(student[0], teacher[0])).mean()
    if len(student) > 1:
        loss = loss + (1 - f.cosine_similarity(student[1], teacher[1])).mean()
    if len(student) > 2:
        loss = loss + f.kl_div(f.log_softmax(student[2], -1), f.log_softmax(teacher[2], -1), log_target=True, reduction="batchmean")
    return loss


def _write_run(teacher_run: Path, out: Path, model: torch.nn.Module, conf: dict, record: dict, sources: list[Path]) -> None:
    """The student's run directory, written whole and swapped in (only over an earlier distilled run)."""
    with atomic.atomic_dir(out, DISTILL_FILE, "distilled run", sources) as tmp:
        shutil.copyfile(teacher_run / TOKENIZER, tmp / TOKENIZER)
        atomic.write_json(tmp / CONFIG, conf)
        atomic.write_json(tmp / DISTILL_FILE, record)
        save_weights(tmp / BEST, model)


def read_record(run: Path | str) -> dict:
    """What `distill` wrote about a student run (teacher, kept layers, losses)."""
    import json

    return json.loads((Path(run) / DISTILL_FILE).read_text(encoding="utf-8"))
