"""Small classifiers on in-memory arrays, trained by the kit's one loop, ``bigtrain_lab.train.train``.

``ArrayBatches`` is the one batch provider for arrays (an epoch's shuffled order, or rows drawn with
replacement, with an optional per-batch transform such as augmentation or MixUp); ``fit_classifier`` is the
one way the lessons train their small models; ``accuracy`` is the one top-1 accuracy of a model.

    model = MLP(64, (128,), 10)
    result = fit_classifier(model, X_train, y_train, steps=300, X_val=X_val, y_val=y_val)
    result.evals[-1]["val_accuracy"], accuracy(model, X_test, y_test)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.train import TrainConfig, TrainResult, train

__all__ = ["SAMPLINGS", "ArrayBatches", "BatchTransform", "LossFn", "accuracy", "fit_classifier"]

SAMPLINGS = ("epoch", "random")
#: ``transform(x, y, generator) -> (x, target)``: applied to every training batch (augmentation, MixUp).
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
#: ``loss_fn(model, x, target) -> scalar loss``
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _as_tensor(values: Any, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values if dtype is None else values.to(dtype)
    return torch.as_tensor(np.asarray(values), dtype=dtype)


class ArrayBatches:
    """``get_batch(split, step) -> (x, y)`` over in-memory arrays, as ``bigtrain_lab.train.train`` wants.

    ``sampling="epoch"``: every epoch a fresh order of the training rows (a permutation drawn from
    ``self.generator``, which ``train`` checkpoints, or ``order(generator)`` for e.g. an oversampling
    sampler), cut into batches of ``batch_size``; the last incomplete batch is dropped unless
    ``drop_last=False``. ``sampling="random"``: ``batch_size`` rows drawn with replacement every call.
    ``transform`` is applied to each training batch. Validation: the whole ``(X_val, y_val)``.
    """

    def __init__(self, X: Any, y: Any, batch_size: int, *, X_val: Any = None, y_val: Any = None,
                 sampling: str = "epoch", drop_last: bool = True,
                 order: Callable[[torch.Generator], torch.Tensor] | None = None,
                 transform: BatchTransform | None = None, seed: int = 0, dtype: torch.dtype = torch.float32):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.X, self.y = _as_tensor(X, dtype), _as_tensor(y, None)
        if len(self.X) != len(self.y) or len(self.X) == 0:
            raise ValueError(f"X and y must be non-empty and of equal length, got {len(self.X)} and {len(self.y)}")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        self.X_val = None if X_val is None else _as_tensor(X_val, dtype)
        self.y_val = None if y_val is None else _as_tensor(y_val, None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if sampling == "epoch" and drop_last and batch_size > len(self.X):
            raise ValueError(f"batch_size must be in [1, {len(self.X)}] with drop_last, got {batch_size!r}")
        self.batch_size, self.sampling, self.drop_last = batch_size, sampling, drop_last
        self.order, self.transform = order, transform
        self.generator = torch.Generator().manual_seed(seed)
        self._perm: torch.Tensor | None = None
        self._perm_step = -1

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training rows."""
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _rows(self, step: int) -> torch.Tensor:
        if self.sampling == "random":
            return torch.randint(len(self.X), (self.batch_size,), generator=self.generator)
        position = step % self.steps_per_epoch
        if self._perm is None or (position == 0 and step != self._perm_step):  # once per epoch, even
            self._perm = (self.order(self.generator) if self.order is not None  # with accumulation
                          else torch.randperm(len(self.X), generator=self.generator))
            self._perm_step = step
        return self._perm[position * self.batch_size:(position + 1) * self.batch_size]

    def __call__(self, split: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if split != "train":
            if self.X_val is None:
                raise ValueError("no validation split: pass X_val and y_val")
            return self.X_val, self.y_val
        rows = self._rows(step)
        x, y = self.X[rows], self.y[rows]
        return self.transform(x, y, self.generator) if self.transform is not None else (x, y)


@torch.no_grad()
def accuracy(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], X: Any, y: Any) -> float:
    """Fraction of rows of ``X`` whose arg-max logit is the label in ``y`` (a module runs in eval mode,
    then gets its mode back)."""
    X, y = _as_tensor(X, torch.float32), _as_tensor(y, None)
    if len(X) != len(y) or len(y) == 0:
        raise ValueError(f"X and y must be non-empty and of equal length, got {len(X)} and {len(y)}")
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        return float((model(X).argmax(dim=-1) == y).double().mean())
    finally:
        if was_training:
            model.train()


def _cross_entropy(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), target)


def fit_classifier(model: nn.Module, X: Any, y: Any, *, steps: int | None = None, epochs: int | None = None,
                   batch_size: int = 64, optimizer: torch.optim.Optimizer | None = None, lr: float = 3e-3,
                   weight_decay: float = 0.0, schedule: Callable[[int], float] | None = None,
                   loss_fn: LossFn | None = None, sampling: str = "epoch", drop_last: bool = True,
                   order: Callable[[torch.Generator], torch.Tensor] | None = None,
                   transform: BatchTransform | None = None, X_val: Any = None, y_val: Any = None,
                   eval_every: int = 0, evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
                   callbacks: Sequence[Callable[[TrainResult], object]] = (), seed: int = 0,
                   progress: bool = False) -> TrainResult:
    """Train ``model`` (logits out) in place with the kit's loop and return its ``TrainResult``.

    Length: ``steps`` optimizer steps, or ``epochs`` passes over the data (``sampling="epoch"``). Batches come
    from ``ArrayBatches`` (see there for ``sampling``, ``drop_last``, ``order``, ``transform``). The
    optimizer is AdamW (``lr``, decoupled ``weight_decay`` on >= 2-D weights) unless one is given, at a
    constant rate unless ``schedule(step)`` says otherwise; no gradient clipping. The loss is
    cross-entropy unless ``loss_fn(model, x, target)`` is given (e.g. class weights, a distillation
    loss). Only parameters with ``requires_grad`` train (frozen layers stay). With a validation split,
    evaluations every ``eval_every`` steps (default: at the end) record ``val_loss`` and
    ``val_accuracy``; ``evaluate(model) -> {name: value}`` replaces that evaluation (e.g. a recorder of
    per-epoch statistics). ``callbacks`` get the result at every logged step and evaluation.
    """
    batches = ArrayBatches(X, y, batch_size, X_val=X_val, y_val=y_val, sampling=sampling, drop_last=drop_last,
                           order=order, transform=transform, seed=seed)
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps and epochs")
    if epochs is not None:
        if sampling != "epoch" or isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs needs sampling='epoch' and a positive integer, got {epochs!r}")
        steps = epochs * batches.steps_per_epoch
    assert steps is not None
    if evaluate is None and batches.X_val is not None:
        X_held, y_held = batches("val", 0)

        @torch.no_grad()
        def evaluate(net: nn.Module) -> dict[str, float]:
            logits = net(X_held)
            return {"val_loss": float(F.cross_entropy(logits, y_held)),
                    "val_accuracy": float((logits.argmax(dim=1) == y_held).double().mean())}

    lr_of_optimizer = optimizer.param_groups[0]["lr"] if optimizer is not None else lr
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr_of_optimizer or 1.0, weight_decay=weight_decay,
                         grad_clip=0.0, eval_every=(eval_every or steps) if evaluate is not None else 0, seed=seed,
                         log_every=max(1, min(50, steps // 10)))
    return train(model, batches, config, optimizer=optimizer, schedule=schedule, loss_fn=loss_fn or _cross_entropy,
                 evaluate=evaluate, callbacks=callbacks, progress=progress)
