"""Class imbalance: class weights, resampling, focal loss, threshold moving, stratified splits, and the
experiment of the data lesson that compares them on a 1:20 problem.

The correct PyTorch class weights are a float tensor indexed by class id:
``nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))``. A dict (the seed answer's
``torch.tensor(weight_dict)``) is not a valid tensor and raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, precision_recall_curve, precision_score, recall_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import WeightedRandomSampler

from bigtrain_lab.fit import fit_classifier

__all__ = ["METHODS", "FocalLoss", "ImbalanceResult", "balanced_class_weights", "best_f1_threshold",
           "class_weight_tensor", "focal_loss", "imbalance_experiment", "make_balanced_sampler",
           "pr_auc_against_seed_spread", "sample_weights", "stratified_split", "train_imbalanced"]

METHODS = ("none", "class_weights", "oversample", "focal", "threshold")


def balanced_class_weights(y: ArrayLike) -> np.ndarray:
    """``n_samples / (n_classes * count(c))`` for each class ``c`` in ``np.unique(y)`` (sorted), as
    ``sklearn.utils.class_weight.compute_class_weight("balanced", ...)``."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    _, counts = np.unique(y, return_counts=True)
    return len(y) / (len(counts) * counts.astype(np.float64))


def class_weight_tensor(y: ArrayLike, num_classes: int | None = None) -> torch.Tensor:
    """Balanced weights as the float32 tensor ``CrossEntropyLoss(weight=...)`` wants: entry ``c`` is the
    weight of class id ``c`` (labels must be 0 .. num_classes - 1; an absent class gets weight 0)."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be non-negative integer class ids")
    k = int(y.max()) + 1 if num_classes is None else num_classes
    counts = np.bincount(y, minlength=k).astype(np.float64)
    present = counts > 0
    weights = np.zeros(k)
    weights[present] = len(y) / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def sample_weights(y: ArrayLike) -> np.ndarray:
    """Per-sample weight ``1 / count(class of the sample)``: each class gets the same total weight."""
    y = np.asarray(y)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def make_balanced_sampler(y: ArrayLike, num_samples: int | None = None,
                          generator: torch.Generator | None = None) -> WeightedRandomSampler:
    """A ``WeightedRandomSampler`` that draws every class equally often (with replacement): minority
    examples are repeated (oversampling), majority ones appear less than once per epoch."""
    w = torch.as_tensor(sample_weights(y), dtype=torch.float64)
    return WeightedRandomSampler(w, num_samples or len(w), replacement=True, generator=generator)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               alpha: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Multi-class focal loss (Lin et al., 2017): ``-alpha[y] * (1 - p_y) ** gamma * log p_y``.

    ``gamma=0`` and no ``alpha`` is the cross-entropy. ``reduction="mean"`` is the plain mean over samples
    (not the weighted mean that ``cross_entropy(weight=...)`` takes).
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    log_p = F.log_softmax(logits, dim=-1).gather(-1, target[:, None]).squeeze(-1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if alpha is not None:
        loss = alpha.to(loss)[target] * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module."""

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, target, gamma=self.gamma, alpha=self.alpha, reduction=self.reduction)


def best_f1_threshold(y_true: ArrayLike, scores: ArrayLike) -> float:
    """The score threshold (predict 1 when ``score >= t``) that maximises F1 on ``(y_true, scores)``:
    threshold moving, to be chosen on VALIDATION data and then applied to the test set."""
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def stratified_split(X: np.ndarray, y: np.ndarray, test_size: float = 0.25, seed: int = 0):
    """``train_test_split`` with ``stratify=y``: both parts keep the class proportions (a plain random
    split of a 1:20 set can leave a small test split with a handful of positives, or none)."""
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def train_imbalanced(X: np.ndarray, y: np.ndarray, method: str, *, seed: int = 0, epochs: int = 30,
                     batch_size: int = 128, lr: float = 3e-3, hidden: Sequence[int] = (32, 32)) -> nn.Module:
    """Train a small MLP for binary classification with one of :data:`METHODS` (``"threshold"`` trains
    like ``"none"``; the threshold is moved afterwards). Inputs should be standardized."""
    from bigtrain_lab.models import MLP

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    torch.manual_seed(seed)
    model = MLP(X.shape[1], hidden, 2)
    if method == "class_weights":
        criterion: nn.Module = nn.CrossEntropyLoss(weight=class_weight_tensor(y, 2))
    elif method == "focal":
        criterion = FocalLoss(gamma=2.0)
    else:
        criterion = nn.CrossEntropyLoss()

    def oversample(g: torch.Generator) -> torch.Tensor:  # an epoch's order, drawn like a balanced sampler
        return torch.tensor(list(make_balanced_sampler(y, generator=g)))

    fit_classifier(model, torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.int64), epochs=epochs,
                   batch_size=batch_size, drop_last=False, order=oversample if method == "oversample" else None,
                   loss_fn=lambda m, xb, yb: criterion(m(xb), yb),
                   optimizer=torch.optim.Adam(model.parameters(), lr=lr), seed=seed)
    return model.eval()


def _positive_scores(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.tensor(X, dtype=torch.float32)), -1)[:, 1].numpy()


@dataclass(frozen=True)
class ImbalanceResult:
    """One (method, seed) run, measured on the test split."""

    method: str
    seed: int
    pr_auc: float
    recall: float
    precision: float
    threshold: float


def imbalance_experiment(data, methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0, 1, 2), *,
                         epochs: int = 30, progress: bool = True) -> list[ImbalanceResult]:
    """Train each method with each seed on ``data`` (a ``bigtrain_lab.data.Dataset``, binary, already
    standardized) and measure PR-AUC (average precision), recall and precision on its test split.

    Every method predicts positive at score >= 0.5 except ``"threshold"``, whose threshold maximises F1
    on the validation split.
    """
    from tqdm.auto import tqdm

    runs = [(m, s) for s in seeds for m in methods]
    results = []
    trained: dict[tuple[str, int], nn.Module] = {}
    for method, seed in tqdm(runs, desc="imbalance runs", disable=not progress):
        key = ("none" if method == "threshold" else method, seed)
        if key not in trained:
            trained[key] = train_imbalanced(data.X_train, data.y_train, key[0], seed=seed, epochs=epochs)
        model = trained[key]
        scores = _positive_scores(model, data.X_test)
        t = best_f1_threshold(data.y_val, _positive_scores(model, data.X_val)) if method == "threshold" else 0.5
        pred = (scores >= t).astype(int)
        results.append(ImbalanceResult(method, seed, float(average_precision_score(data.y_test, scores)),
                                       float(recall_score(data.y_test, pred, zero_division=0)),
                                       float(precision_score(data.y_test, pred, zero_division=0)), t))
    return results


def pr_auc_against_seed_spread(pr_auc: Mapping[str, float], spread: float, baseline: str = "none") -> str:
    """One sentence comparing each method's mean PR-AUC with ``baseline``'s against the seed-to-seed
    ``spread`` (e.g. the largest standard deviation over seeds of any method): which remedies changed the
    ranking by more than the seeds do, and which stayed within it. Written from the numbers, whatever they say.

    >>> sentence = pr_auc_against_seed_spread({"none": 0.46, "weights": 0.49, "focal": 0.60}, 0.06)
    >>> sentence.split(': ')[1]
    'weights +0.030, focal +0.140, against a seed-to-seed spread of 0.060'
    >>> "focal beyond it" in sentence and "weights within it" in sentence
    True
    """
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread!r}")
    gains = {name: float(value) - float(pr_auc[baseline]) for name, value in pr_auc.items() if name != baseline}
    beyond = [name for name, gain in gains.items() if abs(gain) > spread]
    within = [name for name in gains if name not in beyond]
    parts = []
    if beyond:
        better = all(gains[name] > 0 for name in beyond)
        parts.append(f"{', '.join(beyond)} beyond it ("
                     + ("ranked the rare class better" if better else "changed the ranking")
                     + ", not only moved the operating point)")
    if within:
        parts.append(f"{', '.join(within)} within it (no measurable change of the ranking)")
    listed = ", ".join(f"{name} {gain:+.3f}" for name, gain in gains.items())
    return f"PR-AUC minus {baseline}: {listed}, against a seed-to-seed spread of {spread:.3f}: {'; '.join(parts)}."
