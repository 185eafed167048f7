"""Lightweight backbones: depthwise-separable convolutions (MobileNet, Howard et al., 2017).

A standard k x k convolution from C_in to C_out channels costs ``k^2 C_in C_out`` multiply-adds per output
pixel. A depthwise k x k convolution (one filter per channel, ``groups=C_in``) followed by a pointwise
1 x 1 convolution costs ``k^2 C_in + C_in C_out``: a ratio of ``1 / C_out + 1 / k^2`` (about 8-9x fewer
for 3 x 3). Global average pooling instead of a flatten + wide Linear head removes most of the rest.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise ``k x k`` conv (``groups=in_channels``) + ReLU, then pointwise ``1 x 1`` conv + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 1),
            nn.ReLU(),
        )


class SeparableCNN(nn.Module):
    """A small digits classifier built from depthwise-separable blocks.

    1x8x8 -conv3x3-> c0x8x8 -ds-> c1x8x8 -maxpool-> c1x4x4 -ds-> c2x4x4 -maxpool-> c2x2x2 -> num_classes.
    Same input / output as ``bigtrain_lab.models.CNN`` (a flat ``(N, 64)`` is reshaped), whose
    flatten + 512 x 64 Linear head holds most of its weights."""

    def __init__(self, num_classes: int = 10, *, channels: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        c0, c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c0, 3, padding=1), nn.ReLU(),  # depthwise on 1 channel would be pointless
            DepthwiseSeparableConv(c0, c1),
            nn.MaxPool2d(2),
            DepthwiseSeparableConv(c1, c2),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 2 * 2, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.view(-1, 1, 8, 8)
        if x.shape[-3:] != (1, 8, 8):
            raise ValueError(f"SeparableCNN expects input of shape (N, 1, 8, 8), got {tuple(x.shape)}")
        return self.head(self.features(x))


def conv_macs(in_channels: int, out_channels: int, kernel_size: int, height: int, width: int, *,
              separable: bool = False) -> int:
    """Multiply-adds of one ``k x k`` convolution over an ``height x width`` output map (no bias):
    standard ``k^2 C_in C_out H W``; depthwise-separable ``(k^2 C_in + C_in C_out) H W``."""
    k2 = kernel_size * kernel_size
    per_pixel = k2 * in_channels + in_channels * out_channels if separable else k2 * in_channels * out_channels
    return per_pixel * height * width


@torch.no_grad()
def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of one forward pass on ``example``, counted over Conv2d and Linear layers (hooks)."""
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, output):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += output.numel() * k * (m.in_channels // m.groups)

    def linear_hook(m: nn.Linear, inputs, output):
        nonlocal total
        total += output.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    model.eval()
    try:
        model(example)
    finally:
        for h in hooks:
            h.remove()
    return total
