"""Membership inference: was this example in the training set? The loss-threshold attack (Yeom et al., 2018).

A model fits its training examples better than unseen ones, so a low loss says "member". The attacker scores each
candidate by ``-loss`` and guesses member below a threshold; over all thresholds that traces an ROC curve of
true-positive rate (members caught) against false-positive rate (non-members accused). Reported here:

* ``advantage``: max over thresholds of TPR - FPR (0 = coin flip, 1 = perfect). Picking the best threshold with
  the true labels is the *strongest* threshold attack, and on a finite sample it exceeds 0 even for a model that
  leaks nothing (``chance_advantage`` measures that floor);
* ``auc``: the area under that ROC curve (0.5 = coin flip);
* ``yeom_advantage``: TPR - FPR at Yeom's own threshold, the mean training loss (an attacker can know it).

An (epsilon, delta)-DP training run caps every such attack at
``advantage <= (e^eps - 1 + 2 delta) / (e^eps + 1)`` (``dp_advantage_bound``; Kairouz et al., 2015).

>>> import numpy as np
>>> r = attack_advantage(np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.9, 1.5]))
>>> round(r.advantage, 3), round(r.auc, 3)
(0.667, 0.889)
>>> round(dp_advantage_bound(1.0, 1e-5), 3)
0.462
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["AttackResult", "attack_advantage", "chance_advantage", "dp_advantage_bound", "per_example_losses"]


@torch.no_grad()
def per_example_losses(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Cross-entropy of each example under ``model`` (run in eval mode, its mode restored), as float64."""
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y need the same non-zero length, got {len(X)} and {len(y)}")
    was_training = model.training
    model.eval()
    try:
        return F.cross_entropy(model(X), y, reduction="none").double().numpy()
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class AttackResult:
    """A loss-threshold attack's outcome; ``fpr``/``tpr``: its ROC curve (for plotting)."""

    advantage: float
    auc: float
    threshold: float  # the loss below which the best attack says "member"
    yeom_advantage: float
    fpr: np.ndarray
    tpr: np.ndarray


def _losses(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D array of finite losses, got shape {array.shape}")
    return array


def attack_advantage(member_losses: object, nonmember_losses: object) -> AttackResult:
    """The loss-threshold attack on these losses (members: the training examples; non-members: held out)."""
    inside, outside = _losses("member_losses", member_losses), _losses("nonmember_losses", nonmember_losses)
    truth = np.r_[np.ones(inside.size), np.zeros(outside.size)]
    scores = -np.r_[inside, outside]
    fpr, tpr, thresholds = roc_curve(truth, scores)
    best = int(np.argmax(tpr - fpr))
    yeom = inside.mean()
    yeom_adv = float((inside <= yeom).mean() - (outside <= yeom).mean())
    threshold = float(-thresholds[best]) if math.isfinite(thresholds[best]) else -math.inf
    return AttackResult(float(tpr[best] - fpr[best]), float(roc_auc_score(truth, scores)), threshold, yeom_adv,
                        fpr, tpr)


def chance_advantage(n_members: int, n_nonmembers: int, *, repeats: int = 200, seed: int = 0) -> float:
    """Mean best-threshold advantage of scores that carry no information (i.i.d. uniform), on samples of these
    sizes: the floor a measured advantage must clear before it means anything."""
    if n_members < 1 or n_nonmembers < 1 or repeats < 1:
        raise ValueError("n_members, n_nonmembers and repeats must be >= 1")
    rng = np.random.default_rng(seed)
    return float(np.mean([attack_advantage(rng.random(n_members), rng.random(n_nonmembers)).advantage
                          for _ in range(repeats)]))


def dp_advantage_bound(epsilon: float, delta: float) -> float:
    """The most any membership attack can gain against an (epsilon, delta)-DP model:
    ``(e^eps - 1 + 2 delta) / (e^eps + 1)``, capped at 1 (inf epsilon: no bound)."""
    if not (epsilon >= 0) or not (0 <= delta < 1):
        raise ValueError(f"need epsilon >= 0 and 0 <= delta < 1, got {epsilon!r}, {delta!r}")
    if epsilon > 700:
        return 1.0
    e = math.exp(epsilon)
    return min(1.0, (e - 1 + 2 * delta) / (e + 1))
