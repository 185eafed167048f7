"""Seeing training happen: per-layer activation and gradient statistics, dead ReLUs, curves, an LR finder.

Lesson: ``notebooks/09_visualizing_training.ipynb``. Everything here returns plain data (dataclasses of
floats and lists) that the lesson plots and the unit tests check; ``history_curves`` is the data that
``bigtrain_lab.widgets.training_viz.LiveCurves`` redraws in place as a run goes.

- ``layer_statistics(model, x, y)``: one forward and backward pass with hooks; per layer the mean and
  std of the activations, the share of ReLU units that are dead on the batch, and the norm of the
  gradient of the layer's weight (and its ratio to the weight's norm: the size of a plain-SGD step at
  lr = 1, not the step an optimizer takes).
- ``UpdateRatioRecorder(model, optimizer)``: the real update ratio ||w_after - w_before|| / ||w_before|| of
  every Linear / Conv weight at every ``optimizer.step()`` (the "about 1e-3 per step" rule of thumb is
  about this ratio); ``fit_with_history(..., track_updates=True)`` records it for a whole run.
- ``feature_maps(model, x, names)``: the outputs of named modules for a batch (forward hooks).
- ``initialize(model, scheme)``: the default initialisation and deliberately broken ones (too small,
  too large, all zeros, negative biases that kill ReLUs) to see what the plots show.
- ``fit_with_history``: ``bigtrain_lab.fit.fit_classifier`` with a ``HistoryRecorder`` (layer statistics as
  an evaluation hook): per epoch the losses, accuracies and, optionally, the layer statistics.
- ``lr_finder``: Smith's LR range test (exponentially increasing learning rate over one short run).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from bigtrain_lab.fit import fit_classifier

__all__ = [
    "HISTORY_TRACES",
    "INIT_SCHEMES",
    "diagnose_fit",
    "History",
    "history_curves",
    "initialize",
    "layer_statistics",
    "LayerStats",
    "lr_finder",
    "LRFinderResult",
    "fit_with_history",
    "Diverged",
    "HistoryRecorder",
    "UpdateRatioRecorder",
    "feature_maps",
]

INIT_SCHEMES = ("default", "kaiming", "too_small", "too_large", "zeros", "dead_relu")
ACTIVATION_TYPES = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU)


# ---- statistics per layer -------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one activation layer (``name``) and of the weight layer that feeds it.

    ``act_mean``, ``act_std``: of the activation's output over the batch and units. ``dead_fraction``:
    share of units whose output is 0 for every row of the batch (a dead ReLU passes no gradient; NaN for
    activations other than ReLU). ``saturated_fraction``: share of outputs with |a| > 0.99 (tanh / sigmoid
    saturation; NaN otherwise). ``grad_norm``: L2 norm of d loss / d weight of the preceding
    Linear / Conv layer; ``grad_weight_ratio``: grad_norm / weight norm. That is the update ratio of one
    plain-SGD step at lr = 1 only (SGD: multiply by lr; Adam's step is about lr per weight whatever the
    gradient's size): measure the real update with ``UpdateRatioRecorder``.
    """

    name: str
    act_mean: float
    act_std: float
    dead_fraction: float
    saturated_fraction: float
    grad_norm: float
    grad_weight_ratio: float


def _weight_layer_before(model: nn.Module) -> dict[str, nn.Module]:
    """For every activation module, the last Linear / Conv module registered before it."""
    mapping, last = {}, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            last = module
        elif isinstance(module, ACTIVATION_TYPES) and last is not None:
            mapping[name] = last
    return mapping


def layer_statistics(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
                     ) -> list[LayerStats]:
    """One forward + backward pass of ``loss_fn(model(x), y)``; the statistics of every activation layer.

    The model's gradients are left as they were (computed on a copy of nothing: the pass uses
    ``torch.autograd.grad``), and its mode is restored.
    """
    feeders = _weight_layer_before(model)
    if not feeders:
        raise ValueError("the model has no activation layer (ReLU, Tanh, GELU, Sigmoid, SiLU) after a "
                         "Linear or Conv2d layer")
    outputs: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach())) for name in feeders]
    was_training = model.training
    model.eval()
    try:
        loss = loss_fn(model(x), y)
        weights = [feeders[name].weight for name in feeders]
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    stats = []
    for (name, feeder), grad in zip(feeders.items(), grads, strict=True):
        a = outputs[name]
        per_unit = a.transpose(0, 1).reshape(a.shape[1], -1) if a.dim() > 1 else a.view(1, -1)
        act = modules[name]
        dead = float((per_unit <= 0).all(dim=1).float().mean()) if isinstance(act, nn.ReLU) else math.nan
        saturated = float((a.abs() > 0.99).float().mean()) if isinstance(act, nn.Tanh) else (
            float(((a < 0.01) | (a > 0.99)).float().mean()) if isinstance(act, nn.Sigmoid) else math.nan)
        g = 0.0 if grad is None else float(grad.norm())
        w = float(feeder.weight.detach().norm())
        stats.append(LayerStats(name, float(a.mean()), float(a.std()), dead, saturated, g,
                                g / w if w > 0 else (math.inf if g > 0 else math.nan)))
    return stats


def feature_maps(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The outputs of the modules ``names`` (as in ``model.named_modules()``) for the batch ``x``, in eval
    mode without gradients: a conv layer's maps come as torch lays them out, (N, C, H, W)."""
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(f"no module named {missing} in the model")
    outputs: dict[str, torch.Tensor] = {}
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach())) for name in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: outputs[name] for name in names}


# ---- the real update ratio ----------------------------------------------------------------------------


class UpdateRatioRecorder:
    """At every ``optimizer.step()``, ||w_after - w_before|| / ||w_before|| of every Linear / Conv2d weight.

    This is the ratio the rule of thumb "updates of about 1e-3 of the weights per step" is about: the step
    the optimizer actually took (lr x gradient for plain SGD; momentum, Adam's normalisation and weight
    decay included otherwise). Hooks on the optimizer snapshot the weights before each step, so it works
    with any training loop. ``layers``: the module names; ``ratios[k][i]``: step k, layer i (NaN for a
    weight that is 0 and did not move, inf for one that was 0 and moved). Use as a context manager, or
    call ``remove()`` when done.

    >>> w = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.constant_(w.weight, 2.0)
    >>> opt = torch.optim.SGD(w.parameters(), lr=0.1)
    >>> with UpdateRatioRecorder(w, opt) as rec:
    ...     w(torch.ones(1, 2)).sum().backward()  # gradient (1, 1), weight (2, 2)
    ...     opt.step()
    >>> round(rec.ratios[0][0], 6)  # 0.1 x |(1, 1)| / |(2, 2)|
    0.05
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        weighted = [(name, m.weight) for name, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if not weighted:
            raise ValueError("the model has no Linear or Conv2d layer")
        self.layers = [name for name, _ in weighted]
        self._weights = [w for _, w in weighted]
        self.ratios: list[list[float]] = []
        self._before: list[torch.Tensor] = []
        self._handles = [optimizer.register_step_pre_hook(self._snapshot),
                         optimizer.register_step_post_hook(self._measure)]

    def _snapshot(self, *_args: object) -> None:
        self._before = [w.detach().clone() for w in self._weights]

    def _measure(self, *_args: object) -> None:
        row = []
        for w, before in zip(self._weights, self._before, strict=True):
            step, norm = float((w.detach() - before).norm()), float(before.norm())
            row.append(step / norm if norm > 0 else (math.inf if step > 0 else math.nan))
        self.ratios.append(row)

    def remove(self) -> None:
        """Detach the hooks from the optimizer (the recorded ratios stay)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> UpdateRatioRecorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()


# ---- broken initialisations -------------------------------------------------------------------------


def initialize(model: nn.Module, scheme: str = "default", *, seed: int = 0) -> nn.Module:
    """Re-initialise every Linear / Conv2d layer of ``model`` in place (and return it).

    - ``default``: PyTorch's own (Kaiming-uniform with a = sqrt(5): weight std 1 / sqrt(3 fan_in);
      biases U(+-1/sqrt(fan_in))). It shrinks a ReLU signal by about 1/sqrt(6) per layer.
    - ``kaiming``: He et al. (2015), weights N(0, 2 / fan_in), zero biases: keeps the variance of ReLU
      activations constant with depth.
    - ``too_small``: weights N(0, 0.01**2), zero biases: activations and gradients shrink layer by layer.
    - ``too_large``: weights N(0, 1): activations blow up (ReLU) or saturate (tanh).
    - ``zeros``: all weights and biases 0: every hidden unit outputs 0 and no gradient reaches any weight or
      hidden bias (each is multiplied by a zero activation or a zero weight), so the hidden units stay
      identical forever. Only the output layer's bias gets a gradient (softmax minus the labels): the
      network learns the class frequencies and nothing else.
    - ``dead_relu``: default weights, biases -3: most ReLUs output 0 on every input and never recover.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    for module in model.modules():
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        with torch.no_grad():
            module.reset_parameters()
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
            elif scheme == "too_small":
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.01)
            elif scheme == "too_large":
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
            elif scheme == "zeros":
                module.weight.zero_()
            if module.bias is not None:
                if scheme in ("kaiming", "too_small", "too_large", "zeros"):
                    module.bias.zero_()
                elif scheme == "dead_relu":
                    module.bias.fill_(-3.0)
    return model


# ---- a training loop that records everything --------------------------------------------------------


@dataclass
class History:
    """Per epoch (epoch 0 = before training): losses and accuracies; layer statistics every few epochs."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    layer_stats: list[list[LayerStats]] = field(default_factory=list)
    stats_epochs: list[int] = field(default_factory=list)  # the epoch of each layer_stats entry
    update_layers: list[str] = field(default_factory=list)  # with track_updates: UpdateRatioRecorder's
    update_ratios: list[list[float]] = field(default_factory=list)  # layers and ratios, one row per step

    def best_epoch(self) -> int:
        """The epoch with the lowest validation loss."""
        return self.epochs[int(np.argmin(self.val_loss))]


@torch.no_grad()
def _loss_and_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    logits = model(X)
    model.train(was_training)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


class Diverged(RuntimeError):
    """Raised by ``HistoryRecorder`` when the training loss is no longer finite (the run stops there)."""


class HistoryRecorder:
    """An ``evaluate`` hook for ``bigtrain_lab.fit.fit_classifier`` that fills a ``History``.

    Each call (once per epoch) records the loss and accuracy on the whole training and validation sets
    and, every ``stats_every`` epochs, ``layer_statistics`` on a fixed probe batch (the first 256 training
    rows); then calls ``callbacks(history)``. ``record(model)`` before training gives epoch 0.
    """

    def __init__(self, X_train: torch.Tensor, y_train: torch.Tensor, X_val: torch.Tensor, y_val: torch.Tensor,
                 *, stats_every: int = 0, callbacks: Sequence[Callable[[History], object]] = ()) -> None:
        self.train_split, self.val_split = (X_train, y_train), (X_val, y_val)
        self.probe = (X_train[:256], y_train[:256])
        self.stats_every, self.callbacks = stats_every, tuple(callbacks)
        self.history = History()

    def record(self, model: nn.Module) -> dict[str, float]:
        """Append the model's current numbers as the next epoch of the history."""
        h = self.history
        epoch = len(h.epochs)
        train_loss, train_acc = _loss_and_accuracy(model, *self.train_split)
        val_loss, val_acc = _loss_and_accuracy(model, *self.val_split)
        for column, value in ((h.epochs, epoch), (h.train_loss, train_loss), (h.train_acc, train_acc),
                              (h.val_loss, val_loss), (h.val_acc, val_acc)):
            column.append(value)
        if self.stats_every and epoch % self.stats_every == 0:
            with torch.enable_grad():
                h.layer_stats.append(layer_statistics(model, *self.probe))
            h.stats_epochs.append(epoch)
        return {"train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss,
                "val_accuracy": val_acc}

    def __call__(self, model: nn.Module) -> dict[str, float]:
        metrics = self.record(model)
        for callback in self.callbacks:
            callback(self.history)
        if not math.isfinite(metrics["train_loss"]):
            raise Diverged(f"training loss is {metrics['train_loss']} at epoch {self.history.epochs[-1]}")
        return metrics


def fit_with_history(model: nn.Module, X_train: ArrayLike, y_train: ArrayLike, X_val: ArrayLike,
                     y_val: ArrayLike, *, epochs: int = 20, lr: float = 1e-3, batch_size: int = 64,
                     weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.0, seed: int = 0,
                     stats_every: int = 0, callbacks: Sequence[Callable[[History], object]] = (),
                     track_updates: bool = False, progress: bool = True) -> History:
    """``fit_classifier`` for ``epochs`` shuffled passes (the last, smaller batch kept), recorded per epoch by
    a ``HistoryRecorder``: losses and accuracies on both splits, layer statistics every ``stats_every``
    epochs, ``callbacks(history)`` after every epoch (e.g. ``widgets.training_viz.LiveCurves``) and, with
    ``track_updates``, the real update ratio of every weight at every optimizer step (``UpdateRatioRecorder``).

    ``optimizer``: "adam" or "sgd" (with ``momentum``, default 0: plain SGD shows init effects). Epoch 0 is
    the untrained model. A loss that is no longer finite stops the run (the history says where).
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    Xt, yt = torch.as_tensor(np.asarray(X_train), dtype=torch.float32), torch.as_tensor(np.asarray(y_train)).long()
    Xv, yv = torch.as_tensor(np.asarray(X_val), dtype=torch.float32), torch.as_tensor(np.asarray(y_val)).long()
    opt = (torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay) if optimizer == "adam" else
           torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay))
    recorder = HistoryRecorder(Xt, yt, Xv, yv, stats_every=stats_every, callbacks=callbacks)
    recorder.record(model)
    updates = UpdateRatioRecorder(model, opt) if track_updates else contextlib.nullcontext()
    with updates, contextlib.suppress(Diverged):  # the history ends where the loss stopped being finite
        fit_classifier(model, Xt, yt, epochs=epochs, batch_size=batch_size, drop_last=False, optimizer=opt,
                       evaluate=recorder, eval_every=-(-len(Xt) // batch_size), seed=seed, progress=progress)
    if isinstance(updates, UpdateRatioRecorder):
        recorder.history.update_layers, recorder.history.update_ratios = updates.layers, updates.ratios
    return recorder.history


def diagnose_fit(history: History, *, gap_tolerance: float = 0.1, chance_loss: float | None = None) -> dict:
    """Read a run's curves: the best epoch, the final train / validation gap and a verdict.

    "overfitting": the validation loss ended clearly above its minimum (> gap_tolerance) while the
    training loss kept falling; "underfitting": the final training loss is still above half the loss
    at initialisation (or of ``chance_loss``, e.g. ln(n_classes)); otherwise "good fit".
    """
    start = history.train_loss[0] if chance_loss is None else chance_loss
    best = int(np.argmin(history.val_loss))
    rise = history.val_loss[-1] - history.val_loss[best]
    gap = history.val_loss[-1] - history.train_loss[-1]
    if rise > gap_tolerance and history.train_loss[-1] < history.train_loss[best]:
        verdict = "overfitting"
    elif history.train_loss[-1] > 0.5 * start:
        verdict = "underfitting"
    else:
        verdict = "good fit"
    return {"best_epoch": history.epochs[best], "best_val_loss": history.val_loss[best],
            "final_train_loss": history.train_loss[-1], "final_val_loss": history.val_loss[-1],
            "gap": gap, "val_rise": rise, "verdict": verdict}


# ---- the LR range test ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LRFinderResult:
    """``lrs[i]`` was used for step i, whose loss was ``losses[i]`` (``smoothed``: exponential moving
    average, bias-corrected). ``suggestion``: the lr of the steepest descent of the smoothed loss
    (before the minimum); ``min_loss_lr``: where the smoothed loss was lowest (too high to train at)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    min_loss_lr: float
    diverged_at: float | None


def lr_finder(model: nn.Module, X: ArrayLike, y: ArrayLike, *, min_lr: float = 1e-6, max_lr: float = 10.0,
              steps: int = 100, batch_size: int = 64, optimizer: str = "sgd", momentum: float = 0.9,
              beta: float = 0.9,
              diverge_factor: float = 4.0, seed: int = 0, progress: bool = True) -> LRFinderResult:
    """Smith's LR range test (2017; fast.ai's ``lr_find``): train for ``steps`` mini-batches while the
    learning rate grows geometrically from ``min_lr`` to ``max_lr``; stop when the smoothed loss exceeds
    ``diverge_factor`` x its minimum. ``optimizer``: "sgd" (with ``momentum``) or "adam". The model's
    weights are restored afterwards (the optimizer's state is thrown away).

    Read it as: the loss falls fastest around ``suggestion``; pick about that (or min_loss_lr / 10).
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr}, {max_lr}")
    if steps < 10:
        raise ValueError(f"steps must be >= 10, got {steps}")
    state = copy.deepcopy(model.state_dict())
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    opt = (torch.optim.SGD(model.parameters(), lr=min_lr, momentum=momentum) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=min_lr))
    factor = (max_lr / min_lr) ** (1 / (steps - 1))
    generator = torch.Generator().manual_seed(seed)
    lrs, losses, smoothed = [], [], []
    average, best, diverged = 0.0, math.inf, None
    model.train()
    try:
        for step in tqdm(range(steps), desc="LR range test", disable=not progress, leave=False):
            lr = min_lr * factor**step
            for group in opt.param_groups:
                group["lr"] = lr
            idx = torch.randint(0, len(Xt), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            average = beta * average + (1 - beta) * value
            smooth = average / (1 - beta ** (step + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if not math.isfinite(value) or smooth > diverge_factor * best:
                diverged = lr
                break
    finally:
        model.load_state_dict(state)
    curve = np.asarray(smoothed)
    lowest = int(np.nanargmin(curve))
    log_lr = np.log10(lrs)
    slope = np.gradient(curve[: lowest + 1], log_lr[: lowest + 1]) if lowest >= 2 else np.zeros(1)
    suggestion = lrs[int(np.argmin(slope))] if lowest >= 2 else lrs[lowest]
    return LRFinderResult(lrs, losses, smoothed, float(suggestion), float(lrs[lowest]), diverged)


# ---- the data of a live curve -------------------------------------------------------------------

HISTORY_TRACES = ("train loss", "val loss", "train acc", "val acc")


def history_curves(history: History) -> dict[str, tuple[list[int], list[float]]]:
    """Trace name -> (epochs, values) of a classifier run: what ``widgets.training_viz.LiveCurves`` draws."""
    values = (history.train_loss, history.val_loss, history.train_acc, history.val_acc)
    return {name: (list(history.epochs), list(v)) for name, v in zip(HISTORY_TRACES, values, strict=True)}
