"""The run directory: config, tokenizer, weights and log of one training run, and how to load it.

Layout: ``config.json`` (training config, encoder configs, text and image settings, label list,
dataset info), ``tokenizer.json``, ``model.safetensors`` (best validation checkpoint),
``last.safetensors`` + ``optimizer.safetensors`` + ``state.json`` (to resume), ``log.jsonl``
(one line per epoch). Weights are safetensors only; nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sdk import atomic
from sdk.errors import IntraError
from sdk.imageprep import ImageSettings
from sdk.labels import ATTRIBUTES, LABELS
from sdk.textprep import ContextTokenizer, TextSettings

from .config import TrainConfig
from .encoders import rebuild
from .model import IntRA

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
BEST = "model.safetensors"
LAST = "last.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.json"
LOG = "log.jsonl"
RUN_FORMAT_VERSION = 1


class RunError(IntraError, ValueError):
    """A run directory is missing a file or does not match: the message names it."""


def save_weights(path: Path, model: torch.nn.Module) -> None:
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Adam's state as flat tensors plus its param groups as JSON metadata (no pickle)."""
    sd = optimizer.state_dict()
    tensors = {f"{idx}.{name}": (t if torch.is_tensor(t) else torch.tensor(t)).detach().contiguous().clone()
               for idx, st in sd["state"].items() for name, t in st.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"param_groups": json.dumps(sd["param_groups"])})
    tmp.replace(path)


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
        state: dict[int, dict[str, Any]] = {}
        for key in f.keys():
            idx, name = key.split(".", 1)
            state.setdefault(int(idx), {})[name] = f.get_tensor(key)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def write_config(run: Path, cfg: TrainConfig, text_config: dict, vision_config: dict, text: TextSettings,
                 image: ImageSettings, dataset_info: dict, extra: dict | None = None) -> None:
    atomic.write_json(run / CONFIG, {
        "format_version": RUN_FORMAT_VERSION, "train": cfg.to_dict(), "variant": cfg.variant,
        "text_encoder": text_config, "vision_encoder": vision_config,
        "text_settings": text.to_json(), "image_settings": image.to_json(),
        "labels": list(LABELS), "attributes": list(ATTRIBUTES), "dataset": dataset_info, **(extra or {}),
    })


def read_config(run: Path) -> dict[str, Any]:
    path = Path(run) / CONFIG
    if not path.is_file():
        raise RunError(f"{path}: not found; is {run} a run directory made by `intra train`?")
    conf = json.loads(path.read_text(encoding="utf-8"))
    if conf.get("format_version") != RUN_FORMAT_VERSION:
        raise RunError(f"{path}: format_version {conf.get('format_version')!r}, expected {RUN_FORMAT_VERSION}")
    if conf.get("labels") != list(LABELS):
        raise RunError(f"{path}: the run's label list differs from this intra's")
    return conf


def build_model(conf: dict[str, Any]) -> IntRA:
    cfg = TrainConfig.from_dict(conf["train"])
    return IntRA(cfg, rebuild(conf["text_encoder"]), conf["text_encoder"], rebuild(conf["vision_encoder"]), conf["vision_encoder"])


def load_run(run: Path | str, weights: str = BEST) -> tuple[IntRA, ContextTokenizer, ImageSettings, dict[str, Any]]:
    """The trained model (eval mode), its context tokenizer, image settings and config."""
    run = Path(run)
    conf = read_config(run)
    model = build_model(conf)
    path = run / weights
    if not path.is_file():
        raise RunError(f"{path}: weights not found (has training finished an epoch?)")
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if missing or unexpected:
        raise RunError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval()
    where = str(run / CONFIG)
    tokenizer = ContextTokenizer.from_file(run / TOKENIZER, TextSettings.from_json(conf["text_settings"], f"{where}: text_settings", RunError))
    return model, tokenizer, ImageSettings.from_json(conf["image_settings"], f"{where}: image_settings", RunError), conf
