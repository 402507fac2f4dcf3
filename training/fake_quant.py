"""Quantization-aware fine-tuning for the export's dynamic int8: fake quantization of the encoder's Linears.

onnxruntime's dynamic int8 quantizes each MatMul input with one uint8 scale and zero point per
tensor, computed at run time (the SDK runs such graphs one context at a time, so per context), and
each weight with one int8 scale per output channel. `FakeQuantLinear` computes the same rounding in
the forward pass and lets gradients through unchanged (straight-through), so fine-tuning moves the
weights to where that rounding costs the ranking least. The result is an fp32 model: the export
quantizes it dynamically as it would any other.
"""

from __future__ import annotations

import torch
from torch import nn


def _straight_through(x: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    return x + (rounded - x).detach()


def fake_quant_activations(x: torch.Tensor) -> torch.Tensor:
    """uint8 with a scale and zero point per sample (ORT's DynamicQuantizeLinear on one context)."""
    flat = x.reshape(x.shape[0], -1)
    lo = flat.min(1).values.clamp(max=0.0)
    hi = flat.max(1).values.clamp(min=0.0)
    scale = ((hi - lo) / 255.0).clamp(min=1e-8)
    zero = torch.round(-lo / scale).clamp(0, 255)
    shape = (-1,) + (1,) * (x.dim() - 1)
    scale, zero = scale.view(shape), zero.view(shape)
    q = (torch.round(x / scale) + zero).clamp(0, 255)
    return _straight_through(x, (q - zero) * scale)


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 with one scale per output channel (a row of a torch Linear's weight)."""
    scale = (w.abs().amax(1, keepdim=True) / 127.0).clamp(min=1e-8)
    return _straight_through(w, torch.round(w / scale).clamp(-127, 127) * scale)


class FakeQuantLinear(nn.Module):
    """A Linear whose input and weight go through dynamic int8's rounding."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(fake_quant_activations(x), fake_quant_weight(self.linear.weight), self.linear.bias)


def _encoder_linears(encoder: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, module) of every Linear in the transformer layers (what the export quantizes)."""
    found: list[tuple[nn.Module, str, nn.Module]] = []
    for name, module in encoder.named_modules():
        if ".layer." not in f".{name}.":
            continue
        for attr, child in module.named_children():
            if isinstance(child, (nn.Linear, FakeQuantLinear)):
                found.append((module, attr, child))
    return found


def add_fake_quant(encoder: nn.Module) -> int:
    """Wrap every Linear of the encoder's layers; returns how many."""
    linears = [(p, a, c) for p, a, c in _encoder_linears(encoder) if isinstance(c, nn.Linear)]
    for parent, attr, child in linears:
        setattr(parent, attr, FakeQuantLinear(child))
    return len(linears)


def remove_fake_quant(encoder: nn.Module) -> int:
    """Put the plain (fine-tuned) Linears back; returns how many."""
    wrapped = [(p, a, c) for p, a, c in _encoder_linears(encoder) if isinstance(c, FakeQuantLinear)]
    for parent, attr, child in wrapped:
        setattr(parent, attr, child.linear)
    return len(wrapped)
