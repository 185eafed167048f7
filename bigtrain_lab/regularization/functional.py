"""The small regularizers of lesson 10 written out: inverted dropout, label-smoothed cross-entropy and early
stopping (the :class:`EarlyStopping` callback and :func:`early_stopping`, its replay over a list of losses).

Each matches the library semantics it is checked against: :func:`inverted_dropout` is ``F.dropout`` (same keep
probability, survivors scaled by ``1 / (1 - p)``), :func:`label_smoothing_cross_entropy` is
``F.cross_entropy(..., label_smoothing=...)`` with mean reduction, weights and ``ignore_index`` included, and
:class:`EarlyStopping` follows the rule of Keras' and Lightning's callbacks (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = ["EarlyStopping", "early_stopping", "inverted_dropout", "label_smoothing_cross_entropy"]


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p must be a number in [0, 1), got {p!r}")
    return float(p)


def inverted_dropout(x: torch.Tensor, p: float, *, training: bool,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each element of ``x`` independently with probability ``p`` and scale the survivors by
    ``1 / (1 - p)``, so the expected value of every element is unchanged (``F.dropout``'s semantics).

    With ``training=False`` or ``p == 0`` it returns ``x`` itself (the identity). The mask is drawn from
    ``generator`` (the global generator if None): the same seed gives the same mask, and successive calls
    draw fresh masks. Raises ``ValueError`` unless ``0 <= p < 1`` (``p == 1`` would divide by zero).
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
    return x * keep.div_(1.0 - p)  # the order of operations of ATen's CPU dropout


def label_smoothing_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, smoothing: float,
                                  weight: torch.Tensor | None = None, ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy against smoothed targets, mean reduction: the true class gets ``1 - smoothing + smoothing
    / C`` and every class (the true one included) ``smoothing / C``; equal to ``F.cross_entropy(logits, target,
    weight=weight, ignore_index=ignore_index, label_smoothing=smoothing)``.

    ``logits`` is ``(N, C)`` or ``(N, C, d1, ...)``, ``target`` holds class indices ``(N,)`` / ``(N, d1, ...)``.
    Per element ``i`` with class weights ``w``: ``nll_i = -w[y_i] log p_i[y_i]`` and ``smooth_i = -sum_c w[c]
    log p_i[c]``; the loss is ``((1 - s) sum_i nll_i + s / C sum_i smooth_i) / sum_i w[y_i]`` over the
    elements whose target is not ``ignore_index`` (torch's weighted mean: both terms are divided by the total
    weight of the targets, so all-ignored gives ``nan`` = 0 / 0, as torch does). Raises ``ValueError`` unless
    ``0 <= smoothing <= 1``.
    """
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be a number in [0, 1], got {smoothing!r}")
    if logits.dim() < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, d1, ...), got shape {tuple(logits.shape)}")
    n_classes = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))  # any valid index; masked out below
    true_log_p = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    if weight is None:
        w_true = keep.to(log_p.dtype)
        all_classes = log_p.sum(dim=1)
    else:
        w_true = weight[safe] * keep
        all_classes = (log_p * weight.view(1, n_classes, *([1] * (logits.dim() - 2)))).sum(dim=1)
    nll = -(w_true * true_log_p).sum()
    smooth = -torch.where(keep, all_classes, torch.zeros_like(all_classes)).sum()
    return ((1.0 - smoothing) * nll + (smoothing / n_classes) * smooth) / w_true.sum()


class EarlyStopping:
    """Stop training once the validation loss has not improved for ``patience`` epochs in a row.

    Call :meth:`step` once per epoch with that epoch's validation loss; it returns True when training should
    stop (after this epoch). The rules (those of Keras' and Lightning's ``EarlyStopping``, mode "min"):

    * an epoch IMPROVES iff ``loss < best_loss - min_delta`` (strictly): a tie with the best, or a gain of at
      most ``min_delta``, is not an improvement; the first finite loss always improves (``best_loss`` starts
      at ``inf``). ``best_loss`` / ``best_epoch`` change only on an improvement.
    * a NaN or infinite loss never improves: it counts as an epoch without improvement.
    * ``wait`` counts the epochs since the last improvement; training stops at the first epoch where
      ``wait >= patience`` after a non-improving epoch. ``patience=0`` therefore stops at the first epoch
      without improvement, exactly like ``patience=1`` (as in Keras and Lightning); an improving epoch never
      stops training.
    * once it has said stop, :meth:`step` keeps returning True and records nothing more.

    Epochs are counted from 0. ``best_epoch`` is None until a finite loss has been seen; ``stopped_epoch`` is
    None until the stop.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.epoch = -1  # the last epoch seen
        self.stopped_epoch: int | None = None

    @property
    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def improves(self, val_loss: float) -> bool:
        """Whether ``val_loss`` would count as an improvement on the best loss so far."""
        return math.isfinite(val_loss) and val_loss < self.best_loss - self.min_delta

    def step(self, val_loss: float | torch.Tensor) -> bool:
        """Record one epoch's validation loss; True means: stop training now."""
        if self.should_stop:
            return True
        val_loss = float(val_loss)
        self.epoch += 1
        if self.improves(val_loss):
            self.best_loss, self.best_epoch, self.wait = val_loss, self.epoch, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = self.epoch
        return self.should_stop


def early_stopping(val_losses: Iterable[float], *, patience: int, min_delta: float = 0.0
                   ) -> tuple[int | None, int | None]:
    """Replay :class:`EarlyStopping` over a list of per-epoch validation losses.

    Returns ``(stop_epoch, best_epoch)``: the (0-based) epoch after which training stops, or None if the
    callback never says stop within the list, and the epoch of the last improvement (the weights to restore),
    or None if no loss was finite. Losses after the stop are ignored.
    """
    callback = EarlyStopping(patience, min_delta)
    for loss in val_losses:
        if callback.step(loss):
            break
    return callback.stopped_epoch, callback.best_epoch
