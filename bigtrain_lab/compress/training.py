"""Data and a short training routine for the compression lesson: sklearn's digits as tensors and
``fit_classifier``, a thin wrapper over ``bigtrain_lab.train.train`` with random mini-batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.data import load_dataset
from bigtrain_lab.train import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1], as float32 ``(N, 64)`` inputs and int64 labels."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(seed: int = 0) -> Digits:
    """The digits split of ``bigtrain_lab.data.load_dataset('digits')`` (fixed by ``seed``), pixels / 16."""
    X_train, y_train, X_val, y_val, X_test, y_test = load_dataset("digits", seed=seed).as_tensors()
    return Digits(X_train / 16, y_train, X_val / 16, y_val, X_test / 16, y_test)


class RandomBatches:
    """``get_batch(split, step)`` for ``train``: random rows of ``(X, y)`` drawn from a seeded generator."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int = 0):
        if len(X) != len(y) or len(X) == 0:
            raise ValueError(f"X and y must be non-empty and of equal length, got {len(X)} and {len(y)}")
        self.X, self.y, self.batch_size = X, y, int(batch_size)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, split: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.X), (self.batch_size,), generator=self.generator)
        return self.X[idx], self.y[idx]


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float = 3e-3,
                   batch_size: int = 64, weight_decay: float = 0.0, loss_fn: LossFn | None = None,
                   seed: int = 0, progress: bool = False) -> TrainResult:
    """Train ``model`` in place for ``steps`` AdamW steps on random mini-batches of ``(X, y)`` (cross-entropy
    unless ``loss_fn(model, x, y)`` is given, e.g. a distillation loss). Only parameters with
    ``requires_grad`` are updated, so frozen layers (LoRA's base) stay as they are."""
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, grad_clip=0.0,
                         seed=seed, log_every=max(1, steps // 10))
    batches = RandomBatches(X, y, batch_size, seed=seed)
    fn = loss_fn or (lambda m, xb, yb: F.cross_entropy(m(xb), yb))
    return train(model, batches, config, loss_fn=fn, progress=progress)
