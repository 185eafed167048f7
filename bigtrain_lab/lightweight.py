"""Lightweight models on a pretrained backbone: depthwise-separable convolutions, width / depth multipliers.

Lesson 10 (``notebooks/10_transfer_lightweight_backbones.ipynb``). References:
1) MobileNets (Howard et al., 2017), Section 3.1-3.3: https://arxiv.org/abs/1704.04861
2) torch's grouped convolution: https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["DepthwiseSeparableConv"]


class DepthwiseSeparableConv(nn.Module):
    """A k x k depthwise conv followed by a 1x1 pointwise conv — the reference block of the exercise.

    ``depthwise = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding=kernel_size // 2, groups=in_ch,
    bias=False)`` then ``pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=True)``.

    Convention (the contract): the block is the pure linear factorisation of a standard conv —
    NO BatchNorm and NO activation inside it, NO bias on the depthwise conv, a bias on the pointwise conv.
    (A depthwise bias would be redundant: with nothing between the two convs it folds into the pointwise
    bias.) So ``forward(x) == F.conv2d(F.conv2d(x, depthwise.weight, None, stride, k // 2, groups=in_ch),
    pointwise.weight, pointwise.bias)`` and the parameter count is
    ``in_ch * k * k + in_ch * out_ch + out_ch``. Models that want MobileNet's BN + ReLU after each conv
    wrap this block (see the lesson's model family); the block itself stays linear.
    Input ``(N, in_ch, H, W)``, output ``(N, out_ch, H_out, W_out)`` with ``H_out = (H - 1) // stride + 1``
    for odd ``kernel_size``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        if min(in_ch, out_ch, kernel_size, stride) < 1:
            raise ValueError(f"in_ch, out_ch, kernel_size and stride must be >= 1, got "
                             f"{in_ch}, {out_ch}, {kernel_size}, {stride}")
        self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding=kernel_size // 2,
                                   groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))
