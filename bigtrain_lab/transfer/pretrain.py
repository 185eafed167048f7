"""Offline pretraining for lesson 10's vision transfer, and the target task it is transferred to.

Recipes (each trains ``bigtrain_lab.models.CNN`` from a fixed seed, on sklearn's 8x8 digits scaled to [0, 1]):

- ``"digits_0_4"``: supervised, the digits 0-4 (every image of them), 5 classes.
- ``"rotation"``: self-supervised, no digit labels: every digit image (0-9) except the target task's test
  images, turned by 0, 90, 180 or 270 degrees; the network predicts the turn (4 classes).
- ``"digits_0_4_shifted"``: supervised on the digits 0-4 like ``"digits_0_4"``, but on ``SHIFT_COPIES`` copies of
  every image, each moved by up to ``MAX_SHIFT`` pixels (``shift_images``): the backbone learns a shift invariance
  that a handful of labelled target images cannot teach a network from scratch.

The target task is the digits 5-9 relabelled 0-4: no image of it is seen with its label in pretraining, and
its fixed test set is seen by no pretraining at all.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits

from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.models import CNN
from bigtrain_lab.reproducibility import fast_mode
from bigtrain_lab.transfer.cache import cached_state_dict

__all__ = ["MAX_SHIFT", "RECIPES", "TEST_PER_CLASS", "cnn_recipe", "digit_images", "pretrained_cnn",
           "rotation_task", "shift_images", "target_task", "target_test_indices", "target_train_indices"]

RECIPES = ("digits_0_4", "rotation", "digits_0_4_shifted")
MAX_SHIFT = 2  # pixels, each direction: the shifted pretraining and the shifted target task
SHIFT_COPIES = {True: 4, False: 8}  # shifted copies of each pretraining image, fast / full
TEST_PER_CLASS = 70  # fixed held-out images per target class (the rarest class, 8, has 174 images)
_TEST_SEED = 2026
_ARCH = {"channels": [16, 32], "hidden": 64}


@functools.lru_cache(maxsize=1)
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 ``(N, 1, 8, 8)`` in [0, 1] and their int64 labels (read-only)."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = y.astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@functools.lru_cache(maxsize=1)
def target_test_indices() -> np.ndarray:
    """Indices (into ``digit_images()``) of the target task's fixed test set: ``TEST_PER_CLASS`` per digit 5-9."""
    _, y = digit_images()
    rng = np.random.default_rng(_TEST_SEED)
    picks = [rng.choice(np.flatnonzero(y == d), TEST_PER_CLASS, replace=False) for d in range(5, 10)]
    return np.sort(np.concatenate(picks))


def target_train_indices(seed: int, per_class: int) -> np.ndarray:
    """Indices (into ``digit_images()``) of ``target_task(seed, per_class)``'s training images, in training order."""
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    _, y = digit_images()
    pool = np.setdiff1d(np.flatnonzero(y >= 5), target_test_indices())
    rng = np.random.default_rng(seed)
    train = []
    for d in range(5, 10):
        candidates = pool[y[pool] == d]
        if per_class > len(candidates):
            raise ValueError(f"per_class={per_class} exceeds the {len(candidates)} training images of digit {d}")
        train.append(rng.choice(candidates, per_class, replace=False))
    train = np.concatenate(train)
    return train[rng.permutation(len(train))]


def target_task(seed: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits 5-9 relabelled 0-4: ``(X_train, y_train, X_test, y_test)``, torch tensors.

    Images float32 ``(N, 1, 8, 8)`` in [0, 1]; labels int64 in 0..4 (digit - 5). ``per_class`` training images
    per class, drawn by ``seed`` from the pool of digits 5-9 outside the test set (at most 104 per class);
    the test set (``TEST_PER_CLASS`` per class, 350 images) is the same for every seed and budget."""
    X, y = digit_images()
    train, test = target_train_indices(seed, per_class), target_test_indices()
    return (torch.from_numpy(X[train].copy()), torch.from_numpy(y[train] - 5),
            torch.from_numpy(X[test].copy()), torch.from_numpy(y[test] - 5))


def shift_images(X: torch.Tensor, *, max_shift: int = MAX_SHIFT, seed: int = 0) -> torch.Tensor:
    """Each image of ``X`` ``(N, C, H, W)`` moved by its own random whole-pixel offset in
    ``[-max_shift, max_shift]`` along each axis (drawn from ``seed``), the uncovered border filled with 0 (the
    digits' background). A new tensor; ``max_shift=0`` returns a copy."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative integer, got {max_shift!r}")
    if X.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(X.shape)}")
    k, (h, w) = max_shift, X.shape[-2:]
    g = torch.Generator().manual_seed(seed)
    dy, dx = (torch.randint(-k, k + 1, (len(X),), generator=g) for _ in range(2))
    padded = torch.nn.functional.pad(X, (k, k, k, k))
    rows = (k + dy)[:, None] + torch.arange(h)[None, :]  # (N, H): source row of each output row
    cols = (k + dx)[:, None] + torch.arange(w)[None, :]
    n = torch.arange(len(X))[:, None, None]
    return padded.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def rotation_task() -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation pretext task: every digit outside the target test set, turned k*90 degrees, label k."""
    X, _ = digit_images()
    keep = np.setdiff1d(np.arange(len(X)), target_test_indices())
    images = torch.from_numpy(X[keep].copy())
    turned = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    labels = [torch.full((len(images),), k, dtype=torch.int64) for k in range(4)]
    return torch.cat(turned), torch.cat(labels)


def cnn_recipe(recipe: str, fast: bool) -> dict[str, Any]:
    """Everything that determines a pretrained CNN: the cache key is a hash of this."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    data = {"digits_0_4": "sklearn load_digits, labels 0-4, all their images, x/16",
            "rotation": "sklearn load_digits, all digits except the target test set, rotated by k*90 degrees, "
                        "label k; no digit labels",
            "digits_0_4_shifted": f"sklearn load_digits, labels 0-4, all their images, x/16, "
                                  f"{SHIFT_COPIES[bool(fast)]} copies each shifted by up to {MAX_SHIFT} px "
                                  f"(shift_images, seeds 0..{SHIFT_COPIES[bool(fast)] - 1})"}[recipe]
    return {"recipe": recipe, "model": "bigtrain_lab.models.CNN", **_ARCH,
            "num_classes": 4 if recipe == "rotation" else 5, "data": data,
            "target_test": {"per_class": TEST_PER_CLASS, "seed": _TEST_SEED},
            "optimizer": "AdamW (fit_classifier)", "lr": 3e-3, "weight_decay": 0.0, "batch_size": 64,
            "epochs": {"digits_0_4": 6 if fast else 20, "rotation": 2 if fast else 8,
                       "digits_0_4_shifted": 3 if fast else 8}[recipe],
            "seed": 0, "fast": bool(fast), "torch": torch.__version__}


def _train_cnn(recipe: dict[str, Any]) -> dict[str, torch.Tensor]:
    if recipe["recipe"] in ("digits_0_4", "digits_0_4_shifted"):
        X, y = digit_images()
        keep = y < 5
        X_train, y_train = torch.from_numpy(X[keep].copy()), torch.from_numpy(y[keep].copy())
        if recipe["recipe"] == "digits_0_4_shifted":
            copies = SHIFT_COPIES[recipe["fast"]]
            X_train = torch.cat([shift_images(X_train, seed=s) for s in range(copies)])
            y_train = y_train.repeat(copies)
    else:
        X_train, y_train = rotation_task()
    with torch.random.fork_rng():
        torch.manual_seed(recipe["seed"])
        model = CNN(recipe["num_classes"], channels=tuple(recipe["channels"]), hidden=recipe["hidden"])
        fit_classifier(model, X_train, y_train, epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                       lr=recipe["lr"], weight_decay=recipe["weight_decay"], seed=recipe["seed"])
    return model.state_dict()


def pretrained_cnn(recipe: str = "digits_0_4", *, fast: bool | None = None) -> CNN:
    """A fresh ``CNN`` pretrained by ``recipe`` (``RECIPES``), from the kit-home cache (trained and cached on
    first use, verified by sha256 on every load; see ``bigtrain_lab.transfer.cache``).

    Its head is the pretraining head (5 classes for the digits recipes, 4 turns for ``"rotation"``); replace
    ``model.head[-1]`` for a new task. ``fast`` (default ``fast_mode()``) picks the short recipe (< 3 s on one
    thread). Each call returns a new module, so callers may change it."""
    fast = fast_mode() if fast is None else fast
    spec = cnn_recipe(recipe, fast)
    state = cached_state_dict(f"cnn_{recipe}", spec, lambda: _train_cnn(spec))
    model = CNN(spec["num_classes"], channels=tuple(spec["channels"]), hidden=spec["hidden"])
    model.load_state_dict(state)
    return model
