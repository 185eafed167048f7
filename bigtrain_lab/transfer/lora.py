"""LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685), written out.

A frozen ``nn.Linear`` ``W x + b`` gets a trainable low-rank update: ``y = W x + b + (alpha / r) * B A x``
with ``A`` (r x in) initialised like a Linear weight (Kaiming-uniform, as the paper's reference code
``loralib`` does) and ``B`` (out x r) zero, so at initialisation the adapted layer equals the base exactly and
only ``A`` and ``B`` train. ``merge()`` folds ``(alpha / r) B A`` into a plain ``nn.Linear`` for inference.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["LoRALinear", "add_lora"]


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * x A^T B^T`` with ``base`` frozen; trainable ``lora_A (r, in)``,
    ``lora_B (out, r)``."""

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 8.0) -> None:
        super().__init__()
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"r must be a positive integer, got {r!r}")
        self.base, self.r, self.alpha = base, r, float(alpha)
        self.base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update LoRA adds to the base weight, ``(alpha / r) B A`` (out x in)."""
        return self.lora_B @ self.lora_A * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` equal to this layer (the update folded into the weight)."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        merged.weight.copy_(self.base.weight + self.delta_weight())
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged


def add_lora(parent: nn.Module, name: str, r: int = 4, alpha: float = 8.0) -> LoRALinear:
    """Replace the ``nn.Linear`` child ``parent.<name>`` (``name`` may be an index of a Sequential) by a
    ``LoRALinear`` around it; returns the new layer."""
    base = parent.get_submodule(name)
    if not isinstance(base, nn.Linear):
        raise TypeError(f"{name!r} is a {type(base).__name__}, not an nn.Linear")
    layer = LoRALinear(base, r=r, alpha=alpha)
    setattr(parent, name, layer)
    return layer
