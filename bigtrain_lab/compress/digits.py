"""The data of the compression lesson: sklearn's digits as tensors (models train with
``bigtrain_lab.fit.fit_classifier``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bigtrain_lab.data import load_dataset


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
