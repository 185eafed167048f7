"""Offline pretraining (stub: the signatures are fixed; the cache comes next)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.models import CNN
from bigtrain_lab.reproducibility import fast_mode

__all__ = ["RECIPES", "pretrained_cnn", "target_task"]

RECIPES = ("digits_0_4", "rotation")


def pretrained_cnn(recipe: str = "digits_0_4", *, fast: bool | None = None) -> CNN:
    """A fresh ``CNN(num_classes=5)`` pretrained by ``recipe`` (cached in the kit home)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    fast = fast_mode() if fast is None else fast
    X, y = load_digits(return_X_y=True)
    keep = y < 5
    torch.manual_seed(0)
    model = CNN(num_classes=5)
    fit_classifier(model, torch.tensor(X[keep] / 16.0, dtype=torch.float32), torch.tensor(y[keep]),
                   epochs=3 if fast else 10)
    return model


def target_task(seed: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits 5-9 relabelled 0-4: ``(X_train, y_train, X_test, y_test)`` as float32 ``(N, 1, 8, 8)`` images
    scaled to [0, 1] and int64 labels; the test set is fixed and disjoint from every training draw."""
    X, y = load_digits(return_X_y=True)
    keep = y >= 5
    X, y = X[keep] / 16.0, y[keep] - 5
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, pool = order[:400], order[400:]
    draw = np.random.default_rng(seed)
    train = np.concatenate([draw.choice(pool[y[pool] == c], per_class, replace=False) for c in range(5)])
    as_x = lambda idx: torch.tensor(X[idx], dtype=torch.float32).view(-1, 1, 8, 8)  # noqa: E731
    return as_x(train), torch.tensor(y[train]), as_x(test), torch.tensor(y[test])
