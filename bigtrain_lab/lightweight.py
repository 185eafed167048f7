"""Lightweight models on a pretrained backbone: depthwise-separable convolutions, width / depth multipliers.

Lesson 10 (``notebooks/10_transfer_lightweight_backbones.ipynb``); lesson 06's ``SeparableCNN``
(``bigtrain_lab.compress.lightweight``) is the first look. Here: the cost arithmetic checked against
``torch.utils.flop_counter.FlopCounterMode``, a family of models on the pretrained digits CNN's first conv
(width multiplier ``alpha``, depth = number of depthwise-separable blocks), and latency measured with
``torch.utils.benchmark.Timer``. References:
1) MobileNets (Howard et al., 2017), Sections 3.1-3.3 (cost ratio, width multiplier):
   https://arxiv.org/abs/1704.04861
2) MobileNetV2 (Sandler et al., 2018), channel rounding ``_make_divisible``:
   https://github.com/pytorch/vision/blob/main/torchvision/models/_utils.py
3) EfficientNet (Tan & Le, 2019): width and depth as separate scaling coefficients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN

__all__ = ["BASE_CHANNELS", "BASE_STRIDES", "ConvCost", "DepthwiseSeparableConv", "LightweightNet",
           "SeparableBlock", "Variant", "compare", "conv_cost", "conv_vs_separable_latency", "count_flops", "count_layer_calls",
           "count_parameters", "latency_ms", "scaled_channels", "separable_ratio", "slim_head_cnn",
           "standard_variants"]

#: Output channels and strides of the depthwise-separable blocks at width 1 (a model of depth d uses the first d).
BASE_CHANNELS: tuple[int, ...] = (32, 64, 64, 128)
BASE_STRIDES: tuple[int, ...] = (1, 2, 1, 2)


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
    wrap this block (``SeparableBlock``); the block itself stays linear.
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


# ----------------------------------------------------------------------------------------------------
# Cost arithmetic


@dataclass(frozen=True)
class ConvCost:
    """Parameters (weights + biases) and multiply-adds of one conv layer over a whole output map."""

    params: int
    macs: int


def conv_cost(in_ch: int, out_ch: int, kernel_size: int, out_h: int, out_w: int, *, separable: bool = False,
              bias: bool = True) -> ConvCost:
    """The cost of a ``k x k`` conv ``in_ch -> out_ch`` producing an ``out_h x out_w`` map.

    Standard: ``k^2 C_in C_out`` weights and MACs per output pixel. Depthwise-separable
    (``DepthwiseSeparableConv``): ``k^2 C_in + C_in C_out`` of each. ``bias`` adds ``C_out`` parameters
    (the bias adds are not multiply-adds and are not counted, as ``FlopCounterMode`` does not count them).

    >>> conv_cost(16, 32, 3, 8, 8)
    ConvCost(params=4640, macs=294912)
    >>> conv_cost(16, 32, 3, 8, 8, separable=True)
    ConvCost(params=688, macs=41984)
    """
    k2 = kernel_size * kernel_size
    per_pixel = k2 * in_ch + in_ch * out_ch if separable else k2 * in_ch * out_ch
    return ConvCost(params=per_pixel + (out_ch if bias else 0), macs=per_pixel * out_h * out_w)


def separable_ratio(out_ch: int, kernel_size: int) -> float:
    """MobileNet's cost ratio separable / standard: ``1 / C_out + 1 / k^2`` (weights and MACs, no bias).

    >>> round(separable_ratio(32, 3), 4)
    0.1424
    """
    return 1.0 / out_ch + 1.0 / (kernel_size * kernel_size)


def count_parameters(model: nn.Module) -> int:
    """All parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``example`` as ``torch.utils.flop_counter.FlopCounterMode`` counts them:
    ``2 x`` the multiply-adds of convolutions and matrix products; bias adds, BatchNorm, activations and
    pooling are not counted. Runs the model in eval mode (and restores its mode)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model(example.detach())  # an input that requires grad trips FlopCounterMode's backward hooks
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def count_layer_calls(model: nn.Module, example: torch.Tensor) -> int:
    """How many leaf modules (modules without children: convs, BatchNorm, ReLU, pooling, Linear, ...) one
    forward pass on ``example`` calls: each is at least one operator call with its fixed cost."""
    calls = 0

    def hook(module, inputs, output):
        nonlocal calls
        calls += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(True for _ in m.children())]
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return calls


def latency_ms(model: nn.Module, example: torch.Tensor, *, min_run_time: float = 0.2, threads: int = 1) -> float:
    """Median milliseconds of one forward pass on ``example`` (eval mode, no autograd), measured with
    ``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time)`` on ``threads`` threads.

    ``blocked_autorange`` picks a block size so one block takes long enough to time, and reports the
    median over blocks: one call slowed by another process moves a mean, not the median."""
    was_training = model.training
    model.eval()
    forward = torch.no_grad()(model.__call__)
    try:
        timer = Timer(stmt="forward(x)", globals={"forward": forward, "x": example}, num_threads=threads)
        forward(example)  # warm-up: allocation, kernel choice
        return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------------
# The model family


def scaled_channels(channels: int, width: float, divisor: int = 4) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` as MobileNetV2 does (torchvision's
    ``_make_divisible``): nearest multiple, at least ``divisor``, never more than 10 % below the target.

    >>> [scaled_channels(32, a) for a in (0.25, 0.5, 0.75, 1.0, 2.0)]
    [8, 16, 24, 32, 64]
    >>> scaled_channels(64, 0.3)
    20
    """
    if width <= 0 or divisor < 1:
        raise ValueError(f"width must be > 0 and divisor >= 1, got {width!r}, {divisor!r}")
    value = channels * width
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class SeparableBlock(nn.Sequential):
    """MobileNet's block around the linear ``DepthwiseSeparableConv``: ``separable conv -> BatchNorm -> ReLU``.

    (MobileNet v1 also puts BN + ReLU between the depthwise and the pointwise conv; here the block's
    factorisation stays the exercise's linear one.)"""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(DepthwiseSeparableConv(in_ch, out_ch, kernel_size, stride), nn.BatchNorm2d(out_ch),
                         nn.ReLU())


def _check_image(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 2:  # sklearn's digits come as (N, 64) rows
        x = x.view(-1, 1, 8, 8)
    if x.shape[-3:] != (1, 8, 8):
        raise ValueError(f"{name} expects input of shape (N, 1, 8, 8), got {tuple(x.shape)}")
    return x


class LightweightNet(nn.Module):
    """A stem conv, ``depth`` depthwise-separable blocks of width ``width``, global average pooling and one Linear.

    ``stem``: the first conv of a ``bigtrain_lab.models.CNN`` (``backbone.features[0]``, 1 -> 16 channels,
    3x3; pass a pretrained one to transfer it, copied so the backbone is not shared) or ``None`` for a fresh
    one of ``stem_channels``. Block ``i`` maps to ``scaled_channels(BASE_CHANNELS[i], width)`` channels with
    stride ``BASE_STRIDES[i]`` (8x8 -> 8x8 -> 4x4 -> 4x4 -> 2x2). The head is ``AdaptiveAvgPool2d(1)`` +
    ``Linear``: no flatten + wide Linear, which holds most of ``CNN``'s parameters.
    Input ``(N, 1, 8, 8)`` (or flat ``(N, 64)``), output logits ``(N, num_classes)``.
    """

    def __init__(self, stem: nn.Conv2d | None = None, *, width: float = 1.0, depth: int = 2, num_classes: int = 5,
                 stem_channels: int = 16):
        super().__init__()
        if not 1 <= depth <= len(BASE_CHANNELS):
            raise ValueError(f"depth must be in [1, {len(BASE_CHANNELS)}], got {depth!r}")
        if stem is None:
            stem = nn.Conv2d(1, stem_channels, 3, padding=1)
        else:
            if not isinstance(stem, nn.Conv2d) or stem.in_channels != 1:
                raise ValueError("stem must be an nn.Conv2d on 1 input channel (a CNN's features[0])")
            stem = _copy_conv(stem)
        self.width, self.depth = float(width), int(depth)
        self.channels = tuple(scaled_channels(c, width) for c in BASE_CHANNELS[:depth])
        blocks: list[nn.Module] = []
        previous = stem.out_channels
        for out_ch, stride in zip(self.channels, BASE_STRIDES[:depth], strict=True):
            blocks.append(SeparableBlock(previous, out_ch, 3, stride))
            previous = out_ch
        self.stem = nn.Sequential(stem, nn.ReLU())
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(_check_image(x, "LightweightNet"))))


def _copy_conv(conv: nn.Conv2d) -> nn.Conv2d:
    copy = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     groups=conv.groups, bias=conv.bias is not None)
    copy.load_state_dict(conv.state_dict())
    return copy


class _SlimHead(nn.Module):
    def __init__(self, features: nn.Module, channels: int, num_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(_check_image(x, "slim-head CNN")))


def slim_head_cnn(backbone: CNN, num_classes: int = 5) -> nn.Module:
    """``backbone``'s conv features (shared, not copied) with its flatten + 512 x 64 + 64 x classes head replaced
    by global average pooling + one Linear: most parameters go, almost no FLOPs (those are in the convs)."""
    channels = backbone.features[2].out_channels
    return _SlimHead(backbone.features, channels, num_classes)



# ----------------------------------------------------------------------------------------------------
# The comparison: one table


@dataclass(frozen=True)
class Variant:
    """A named model of the comparison: ``build(backbone) -> fresh module`` (``backbone``: a pretrained CNN,
    a fresh copy per call, which the builder may keep or take parts of)."""

    name: str
    build: Callable[[CNN], nn.Module]
    width: float | None = None
    depth: int | None = None


def _fresh_cnn(backbone: CNN) -> nn.Module:
    return CNN(num_classes=backbone.head[-1].out_features)


def _fine_tuned(backbone: CNN) -> nn.Module:
    backbone.head[-1].reset_parameters()  # a new last layer for the new task; the rest starts pretrained
    return backbone


def standard_variants(widths: Sequence[float] = (0.5, 1.0, 2.0), depths: Sequence[int] = (1, 2, 3, 4), *,
                      reference: tuple[float, int] = (1.0, 2)) -> list[Variant]:
    """The lesson's rows: the CNN from scratch, the pretrained CNN fine-tuned, its features with a slim
    (global-pooling) head, then ``LightweightNet`` on the pretrained stem at each width (at the reference
    depth) and each depth (at the reference width), and the reference one with a fresh stem."""
    w0, d0 = reference
    rows = [Variant("CNN, from scratch", _fresh_cnn),
            Variant("CNN, pretrained, fine-tuned", _fine_tuned),
            Variant("CNN features + pooled head", lambda b: slim_head_cnn(b, b.head[-1].out_features))]
    shapes = [(w, d0) for w in widths] + [(w0, d) for d in depths if d != d0]
    for w, d in shapes:
        rows.append(Variant(f"separable, width {w:g}, depth {d}",
                            lambda b, w=w, d=d: LightweightNet(b.features[0], width=w, depth=d,
                                                               num_classes=b.head[-1].out_features), w, d))
    rows.append(Variant(f"separable, width {w0:g}, depth {d0}, fresh stem",
                        lambda b: LightweightNet(None, width=w0, depth=d0, num_classes=b.head[-1].out_features),
                        w0, d0))
    return rows


def compare(variants: Sequence[Variant], backbone: Callable[[], CNN], task: Callable[[int], tuple], *,
            seeds: Sequence[int], steps: int, lr: float = 3e-3, batch_size: int = 32,
            min_run_time: float = 0.2, latency_batches: Sequence[int] = (1, 64),
            progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """Train every variant on ``task(seed) -> (X_train, y_train, X_test, y_test)`` for each seed (``steps``
    AdamW steps on random batches, ``fit_classifier``) and return one row per variant: ``params``, ``flops``
    (per image, ``count_flops``), ``layer_calls`` (``count_layer_calls``), ``latency_ms_b<B>`` (``latency_ms`` on the first held-out images, one
    thread, the seed-0 model) and ``accuracy`` (held-out, one value per seed) with its ``mean`` and ``std``.
    ``backbone()`` returns a fresh pretrained CNN."""
    rows = [{"name": v.name, "width": v.width, "depth": v.depth, "accuracy": []} for v in variants]
    jobs = [(seed, i) for seed in seeds for i in range(len(variants))]
    for seed, i in (progress(jobs) if progress else jobs):
        X_train, y_train, X_test, y_test = task(seed)
        torch.manual_seed(seed)
        model = variants[i].build(backbone())
        fit_classifier(model, X_train, y_train, steps=steps, sampling="random", batch_size=batch_size, lr=lr,
                       seed=seed)
        row = rows[i]
        row["accuracy"].append(accuracy(model, X_test, y_test))
        if "params" not in row:
            row["params"] = count_parameters(model)
            row["flops"] = count_flops(model, X_test[:1])
            row["layer_calls"] = count_layer_calls(model, X_test[:1])
            for b in latency_batches:
                batch = X_test[torch.arange(b) % len(X_test)]
                row[f"latency_ms_b{b}"] = latency_ms(model, batch, min_run_time=min_run_time)
    for row in rows:
        row["mean"], row["std"] = float(np.mean(row["accuracy"])), float(np.std(row["accuracy"]))
    return rows


def conv_vs_separable_latency(in_ch: int, out_ch: int, sizes: Sequence[int], *, batch: int = 8,
                              kernel_size: int = 3, min_run_time: float = 0.2) -> list[dict[str, float]]:
    """One standard ``k x k`` conv vs one ``DepthwiseSeparableConv`` (``in_ch -> out_ch``, stride 1) on
    ``batch`` random ``size x size`` maps, for each size: FLOPs and median latency (one thread) of each,
    and the two ratios separable / standard. Seeded (``torch.manual_seed(0)``)."""
    torch.manual_seed(0)
    standard = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
    separable = DepthwiseSeparableConv(in_ch, out_ch, kernel_size)
    out = []
    for size in sizes:
        x = torch.randn(batch, in_ch, size, size)
        row = {"size": float(size)}
        for name, module in (("standard", standard), ("separable", separable)):
            row[f"{name}_flops"] = float(count_flops(module, x))
            row[f"{name}_ms"] = latency_ms(module, x, min_run_time=min_run_time)
        row["flop_ratio"] = row["separable_flops"] / row["standard_flops"]
        row["latency_ratio"] = row["separable_ms"] / row["standard_ms"]
        out.append(row)
    return out
