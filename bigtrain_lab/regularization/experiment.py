"""One visibly overfit task and every regularizer run on it (lesson 10).

The task: a wide MLP (64-256-256-10) trained with Adam on a handful of labelled digits (5 per class by
default), validated on the digits' validation split. It reaches 100 % training accuracy in a few epochs while
the validation loss turns up: a visible overfit within a second of CPU. ``train_run(task, RegConfig(...))``
trains it with any mix of regularizers and records train and validation curves per epoch (a
``bigtrain_lab.training_viz.History``, epoch 0 = before training), through the kit's one loop
(``bigtrain_lab.fit.fit_classifier``).

    task = overfit_task()
    base = train_run(task, RegConfig(), epochs=60)
    l2 = train_run(task, RegConfig(l2=1e-2), epochs=60)
    base.final["gap"], l2.final["gap"]
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.augment import RandomAffine
from bigtrain_lab.augment.experiment import small_subset
from bigtrain_lab.data import load_dataset
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import MLP
from bigtrain_lab.regularization.functional import EarlyStopping
from bigtrain_lab.regularization.penalties import (
    apply_max_norm,
    decay_groups,
    l1_penalty,
    l2_penalty,
    weight_summary,
)
from bigtrain_lab.training_viz import History, HistoryRecorder

__all__ = ["OPTIMIZERS", "OverfitTask", "RegConfig", "RunResult", "digits_affine", "mean_final", "overfit_task",
           "regularized_mlp", "split_scores", "train_run", "verdict"]

OPTIMIZERS = ("adam", "adamw")


@dataclass(frozen=True)
class OverfitTask:
    """Flat digit images ``(N, 64)`` in [0, 1] (float32) and integer labels, for training and validation."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def from_arrays(cls, X: Any, y: Any, train_idx: Any, val_idx: Any) -> OverfitTask:
        """The task whose training rows are ``X[train_idx]`` and validation rows ``X[val_idx]`` (``X`` raw
        digits, 0..16)."""
        X = torch.as_tensor(np.asarray(X) / 16.0, dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y)).long()
        tr, va = torch.as_tensor(np.asarray(train_idx)), torch.as_tensor(np.asarray(val_idx))
        return cls(X[tr], y[tr], X[va], y[va])


def overfit_task(per_class: int = 5, seed: int = 0) -> OverfitTask:
    """``per_class`` random training digits of each class (the digits' train split) and the whole validation
    split (270 images) of ``load_dataset("digits", seed=0)``."""
    d = load_dataset("digits", seed=0)
    X = np.concatenate([d.X_train, d.X_val])
    y = np.concatenate([d.y_train, d.y_val])
    train_idx = small_subset(d.y_train, per_class, seed=seed)
    return OverfitTask.from_arrays(X, y, train_idx, np.arange(len(d.y_train), len(y)))


@dataclass(frozen=True)
class RegConfig:
    """Which regularizers a run uses (all off by default: the overfit baseline).

    l2: ``l2 * 1/2 * sum(w**2)`` added to the loss; l1: ``l1 * sum |w|`` added to the loss;
    weight_decay: the optimizer's argument (``optimizer="adam"``: L2 added to the gradient; ``"adamw"``:
    decoupled decay); dropout: ``nn.Dropout(p)`` after every hidden activation; label_smoothing:
    ``F.cross_entropy(..., label_smoothing=...)``; max_norm: every hidden unit's incoming weight vector
    projected back to this length after each step; batch_norm: ``BatchNorm1d`` before every hidden
    activation; augment: random shifts and small rotations of every training batch (``digits_affine``);
    patience: early stopping on the validation loss (the lesson's ``EarlyStopping`` callback), the best
    epoch's weights restored. Penalties and decay apply to the weight matrices only, not to biases.
    """

    l2: float = 0.0
    l1: float = 0.0
    weight_decay: float = 0.0
    optimizer: str = "adam"
    dropout: float = 0.0
    label_smoothing: float = 0.0
    max_norm: float | None = None
    batch_norm: bool = False
    augment: bool = False
    patience: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("l2", "l1", "weight_decay", "label_smoothing"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def label(self) -> str:
        """The settings that differ from the baseline, e.g. ``"l2=0.01, dropout=0.5"`` (``"baseline"``)."""
        default = RegConfig()
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                 if getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join(parts) or "baseline"


@dataclass
class RunResult:
    """One training run: its config, the per-epoch ``History`` (epoch 0 = untrained), the trained (for early
    stopping: restored) model and its optimizer (with its state), ``final`` numbers of that model and, with
    early stopping, the epochs."""

    config: RegConfig
    history: History
    model: nn.Module
    optimizer: torch.optim.Optimizer
    final: dict[str, float] = field(default_factory=dict)
    stopped_epoch: int | None = None
    best_epoch: int | None = None


def regularized_mlp(hidden: Sequence[int] = (256, 256), *, dropout: float = 0.0, batch_norm: bool = False,
                    in_features: int = 64, num_classes: int = 10) -> nn.Module:
    """``bigtrain_lab.models.MLP`` (ReLU, dropout after every hidden activation); with ``batch_norm`` the same
    layers with ``BatchNorm1d`` between each hidden linear layer and its activation."""
    if not batch_norm:
        return MLP(in_features, tuple(hidden), num_classes, dropout=dropout)
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip([in_features, *hidden][:-1], hidden, strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.BatchNorm1d(fan_out), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden[-1], num_classes))
    return nn.Sequential(*layers)


def digits_affine(degrees: float = 10.0, shift: float = 0.125) -> Any:
    """A ``fit_classifier`` transform: every flat 8x8 digit of the batch rotated by up to ``degrees`` and shifted
    by up to ``shift`` of the width (0.125 = one pixel), with ``bigtrain_lab.augment.RandomAffine``."""
    affine = RandomAffine(degrees=degrees, translate=(shift, shift))

    def transform(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return affine.apply_batch(x.reshape(-1, 1, 8, 8), generator).reshape(len(x), -1), y

    return transform


class _Stop(Exception):
    """Raised by the early-stopping hook to end ``fit_classifier``'s loop."""


def _optimizer(model: nn.Module, config: RegConfig, lr: float) -> torch.optim.Optimizer:
    groups = decay_groups(model, config.weight_decay)  # fused: one kernel for every parameter, several x faster
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    return torch.optim.Adam(groups, lr=lr, fused=True)


@torch.no_grad()
def _final(model: nn.Module, task: OverfitTask) -> dict[str, float]:
    model.eval()
    out = {}
    for split, X, y in (("train", task.X_train, task.y_train), ("val", task.X_val, task.y_val)):
        logits = model(X)
        out[f"{split}_loss"] = float(F.cross_entropy(logits, y))
        out[f"{split}_accuracy"] = float((logits.argmax(1) == y).double().mean())
    out["gap"] = out["train_accuracy"] - out["val_accuracy"]
    out["loss_gap"] = out["val_loss"] - out["train_loss"]
    return out | weight_summary(model)


def train_run(task: OverfitTask, config: RegConfig = RegConfig(), *, epochs: int, lr: float = 3e-3,
              batch_size: int = 10, hidden: Sequence[int] = (256, 256), seed: int = 0) -> RunResult:
    """Train ``regularized_mlp`` on ``task`` with ``config``'s regularizers for ``epochs`` shuffled passes
    (Adam or AdamW at ``lr``, batches of ``batch_size``), recording the loss and accuracy on both splits after
    every epoch. The model's initial weights depend on ``seed`` only (the same for every config of one
    architecture), the batches and dropout masks on ``seed`` too. ``final``: train / val loss and accuracy,
    ``gap`` (train minus val accuracy), ``loss_gap``, and ``weight_summary`` (norm, sparsity, largest) of the
    returned model, in eval mode."""
    torch.manual_seed(seed)
    model = regularized_mlp(hidden, dropout=config.dropout, batch_norm=config.batch_norm)
    optimizer = _optimizer(model, config, lr)
    if config.max_norm is not None:
        optimizer.register_step_post_hook(lambda *_: apply_max_norm(model, config.max_norm))

    def loss_fn(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(net(x), target, label_smoothing=config.label_smoothing)
        if config.l2:
            loss = loss + config.l2 * l2_penalty(net)
        if config.l1:
            loss = loss + config.l1 * l1_penalty(net)
        return loss

    stopper = EarlyStopping(config.patience) if config.patience is not None else None
    best_state: dict[str, torch.Tensor] = {}

    def early_stop(history: History) -> None:
        assert stopper is not None
        stop = stopper.step(history.val_loss[-1])  # the callback's epoch 0 is the first trained epoch
        if stopper.best_epoch == stopper.epoch:
            best_state.update(copy.deepcopy(model.state_dict()))
        if stop:
            raise _Stop

    recorder = HistoryRecorder(task.X_train, task.y_train, task.X_val, task.y_val,
                               callbacks=[early_stop] if stopper is not None else [])
    recorder.record(model)
    steps_per_epoch = -(-len(task.y_train) // batch_size)
    with contextlib.suppress(_Stop):  # the early-stopping hook ends the loop this way
        fit_classifier(model, task.X_train, task.y_train, epochs=epochs, batch_size=batch_size, drop_last=False,
                       optimizer=optimizer, loss_fn=loss_fn, evaluate=recorder, eval_every=steps_per_epoch,
                       transform=digits_affine() if config.augment else None, seed=seed)
    result = RunResult(config, recorder.history, model, optimizer)
    if stopper is not None:
        if best_state:
            model.load_state_dict(best_state)
        result.stopped_epoch = None if stopper.stopped_epoch is None else stopper.stopped_epoch + 1
        result.best_epoch = None if stopper.best_epoch is None else stopper.best_epoch + 1
    result.final = _final(model, task)
    result.final["epochs_trained"] = float(recorder.history.epochs[-1])
    return result


def split_scores(X: Any, y: Any, splits: Iterable[tuple[Any, Any]], config: RegConfig = RegConfig(), *,
                 epochs: int, seed: int = 0, holdout: tuple[Any, Any] | None = None,
                 **kwargs: Any) -> list[dict[str, float]]:
    """Train a fresh ``train_run`` on each ``(train_idx, val_idx)`` split of the raw digits ``X`` (0..16), ``y``
    (e.g. the folds of ``sklearn.model_selection.StratifiedKFold(5).split(X, y)``) and return, per split,
    ``{"val": accuracy on the split's validation rows, "holdout": accuracy on the raw digits ``holdout = (X_h,
    y_h)``}`` (the latter only with ``holdout``). A fresh model per split: the seed's KFold loop refits one
    model object on every fold and keeps only the last."""
    scores = []
    for train_idx, val_idx in splits:
        run = train_run(OverfitTask.from_arrays(X, y, train_idx, val_idx), config, epochs=epochs, seed=seed, **kwargs)
        score = {"val": run.final["val_accuracy"]}
        if holdout is not None:
            score["holdout"] = accuracy(run.model, np.asarray(holdout[0]) / 16.0, holdout[1])
        scores.append(score)
    return scores


def mean_final(runs: Sequence[RunResult]) -> dict[str, float]:
    """The ``final`` numbers of ``runs`` (one config over seeds) averaged key by key."""
    if not runs:
        raise ValueError("no runs to average")
    return {key: float(np.mean([r.final[key] for r in runs])) for key in runs[0].final}


def verdict(val_accuracy: float, baseline_accuracy: float, *, n_val: int, n_seeds: int = 1) -> str:
    """"higher" / "lower" when ``val_accuracy`` differs from the baseline's by more than two standard errors of
    an accuracy measured on ``n_val`` images per seed over ``n_seeds`` seeds (``sqrt(p (1 - p) / (n_val *
    n_seeds))`` at the baseline's p: the noise of the validation set alone, not of the training), else
    "within noise"."""
    p = baseline_accuracy
    se = float(np.sqrt(max(p * (1 - p), 1e-12) / (n_val * n_seeds)))
    diff = val_accuracy - baseline_accuracy
    if diff > 2 * se:
        return "higher"
    if diff < -2 * se:
        return "lower"
    return "within noise"
