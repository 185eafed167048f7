"""Batch size and gradient accumulation: the measurements of lesson 03's first half.

* ``accumulated_gradients``: the gradients of ``k`` micro-batches summed the way a training loop does it,
  with or without dividing each micro-batch loss by ``k`` (the classic mistake).
* ``max_abs_difference``: how far two sets of gradients are apart.
* ``train_mlp_with_batch_size``: a small classifier trained for a fixed number of epochs with a given batch
  size and learning rate, for the batch-size-versus-generalisation experiment.
* ``keras_model_compile``: a stand-in with the signature of Keras 3's ``Model.compile``, to run the
  circulating ``model.compile(..., batch_size=64)`` answer where tensorflow / keras are not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.fit import accuracy, fit_classifier

__all__ = ["LossFn", "MLPRun", "accumulated_gradients", "keras_model_compile", "lm_loss", "max_abs_difference",
           "train_mlp_with_batch_size"]

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of a model whose forward is ``model(x, y) -> (logits, loss)`` (TinyGPT)."""
    return model(x, y)[1]


def accumulated_gradients(model: nn.Module, micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                          scale_loss: bool = True, loss_fn: LossFn = lm_loss) -> dict[str, torch.Tensor]:
    """The gradients a loop holds after ``backward`` on each micro-batch in turn (``.grad`` accumulates).

    ``scale_loss=True`` divides each micro-batch's (mean) loss by the number of micro-batches, so that
    the sum of the gradients is the gradient of the mean over all of them; ``False`` is the classic
    mistake (the gradients come out ``k`` times too large). Returns ``{name: gradient copy}``; the
    model's ``.grad`` are reset to None before and after.
    """
    if not micro_batches:
        raise ValueError("micro_batches is empty")
    k = len(micro_batches)
    model.zero_grad(set_to_none=True)
    for x, y in micro_batches:
        loss = loss_fn(model, x, y)
        (loss / k if scale_loss else loss).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest ``|a[name] - b[name]|`` over every element of every tensor (same keys required)."""
    if a.keys() != b.keys():
        raise ValueError(f"different tensors: {sorted(a.keys() ^ b.keys())}")
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@dataclass(frozen=True)
class MLPRun:
    """One run of ``train_mlp_with_batch_size``."""

    batch_size: int
    lr: float
    steps: int
    train_accuracy: float
    val_accuracy: float
    train_loss: float
    val_loss: float
    seconds: float


def train_mlp_with_batch_size(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                              *, batch_size: int, lr: float, epochs: int, hidden: Sequence[int] = (128,),
                              momentum: float = 0.9, seed: int = 0) -> MLPRun:
    """Train ``MLP(hidden)`` with SGD + momentum for ``epochs`` shuffled passes of mini-batches of
    ``batch_size`` (the last, smaller batch is kept) and return accuracies and losses on both splits.

    Same seed, same initial weights: only the batch size and the learning rate differ between runs.
    """
    from bigtrain_lab.models import MLP

    if batch_size < 1 or epochs < 1 or not lr > 0:
        raise ValueError(f"batch_size and epochs must be >= 1 and lr > 0, got {batch_size}, {epochs}, {lr}")
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X_train, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    Xv = torch.as_tensor(X_val, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.long)
    model = MLP(Xt.shape[1], hidden, int(max(yt.max(), yv.max())) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    run = fit_classifier(model, Xt, yt, epochs=epochs, batch_size=batch_size, drop_last=False,
                         optimizer=optimizer, seed=seed)
    with torch.no_grad():
        lt, lv = model(Xt), model(Xv)
        return MLPRun(batch_size, lr, run.step, accuracy(model, Xt, yt), accuracy(model, Xv, yv),
                      float(F.cross_entropy(lt, yt)), float(F.cross_entropy(lv, yv)), run.wall_time_s)


def keras_model_compile(optimizer: object = "rmsprop", loss: object = None, loss_weights: object = None,
                        metrics: object = None, weighted_metrics: object = None, run_eagerly: bool = False,
                        steps_per_execution: int = 1, jit_compile: object = "auto",
                        auto_scale_loss: bool = True) -> dict[str, object]:
    """A stand-in with exactly the parameters of Keras 3's ``Model.compile`` (keras.io, "Model training
    APIs"); returns them as a dict. It has no ``batch_size``: in Keras the batch size is an argument of
    ``Model.fit`` (or of the ``tf.data`` pipeline), so ``compile(..., batch_size=64)`` raises ``TypeError``
    (tf.keras 2.x: "Invalid keyword argument(s) in `compile()`") before anything trains.

    >>> keras_model_compile(optimizer="adam", batch_size=64)
    Traceback (most recent call last):
    TypeError: keras_model_compile() got an unexpected keyword argument 'batch_size'
    """
    return dict(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
                weighted_metrics=weighted_metrics, run_eagerly=run_eagerly,
                steps_per_execution=steps_per_execution, jit_compile=jit_compile, auto_scale_loss=auto_scale_loss)
