"""Mixup and CutMix: train on convex combinations of pairs of examples and of their labels.

* mixup (Zhang et al., 2018): ``x = lam * x_i + (1 - lam) * x_j``, ``y = lam * y_i + (1 - lam) * y_j``
  with ``lam ~ Beta(alpha, alpha)``.
* CutMix (Yun et al., 2019): paste a box of ``x_j`` into ``x_i``; the label weight is the area actually
  kept, ``lam = 1 - box_area / image_area``.

Both pair each image with ``x[perm]`` for a random permutation of the batch. Train with soft targets:
``F.cross_entropy(logits, y_mixed)`` accepts class probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["CutMix", "MixUp", "cutmix", "mixup", "one_hot"]


def one_hot(y: torch.Tensor, num_classes: int, *, smoothing: float = 0.0) -> torch.Tensor:
    """Float one-hot labels ``(N, num_classes)``, optionally label-smoothed."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    out = torch.nn.functional.one_hot(y.long(), num_classes).to(torch.float32)
    return out * (1 - smoothing) + smoothing / num_classes


def _check(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor) -> None:
    if len(x) != len(y) or perm.shape != (len(x),):
        raise ValueError(f"x, y_onehot and perm must share the batch size; got {len(x)}, {len(y)}, "
                         f"{tuple(perm.shape)}")


def mixup(x: torch.Tensor, y_onehot: torch.Tensor, lam: float, perm: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm])``; the inputs are not modified."""
    _check(x, y_onehot, perm)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]


def cutmix(x: torch.Tensor, y_onehot: torch.Tensor, box: tuple[int, int, int, int], perm: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste ``x[perm]``'s box ``(top, left, height, width)`` into ``x`` (shape ``(N, C, H, W)``); the
    labels are mixed by the area kept, ``lam = 1 - height * width / (H * W)``."""
    _check(x, y_onehot, perm)
    top, left, bh, bw = (int(v) for v in box)
    h, w = x.shape[-2:]
    if not (top >= 0 and left >= 0 and bh >= 0 and bw >= 0 and top + bh <= h and left + bw <= w):
        raise ValueError(f"box {box} does not fit in {h}x{w}")
    out = x.clone()
    out[..., top:top + bh, left:left + bw] = x[perm][..., top:top + bh, left:left + bw]
    lam = 1.0 - bh * bw / (h * w)
    return out, lam * y_onehot + (1 - lam) * y_onehot[perm]


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """``Beta(alpha, alpha)`` seeded from ``generator`` (torch's Beta sampler takes no generator)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


class MixUp:
    """Batch transform ``(x, y) -> (x_mixed, y_soft)`` with ``lam ~ Beta(alpha, alpha)``."""

    def __init__(self, num_classes: int, alpha: float = 0.2):
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        self.num_classes, self.alpha = num_classes, alpha

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        lam = _beta(self.alpha, generator)
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        return mixup(x, one_hot(y, self.num_classes).to(x.device), lam, perm)


class CutMix:
    """Batch transform ``(x, y) -> (x_mixed, y_soft)``: a box of area ``(1 - lam)`` with
    ``lam ~ Beta(alpha, alpha)``, centred uniformly and clipped to the image (the label uses the clipped
    area)."""

    def __init__(self, num_classes: int, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        self.num_classes, self.alpha = num_classes, alpha

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        lam = _beta(self.alpha, generator)
        cy, cx = (float(v) for v in torch.rand(2, generator=generator))
        bh, bw = h * math.sqrt(1 - lam), w * math.sqrt(1 - lam)
        top, bottom = int(round(max(cy * h - bh / 2, 0))), int(round(min(cy * h + bh / 2, h)))
        left, right = int(round(max(cx * w - bw / 2, 0))), int(round(min(cx * w + bw / 2, w)))
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        return cutmix(x, one_hot(y, self.num_classes).to(x.device), (top, left, bottom - top, right - left), perm)
