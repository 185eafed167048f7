"""A backdoor planted by data poisoning, and the spectral-signature defence (Tran et al., 2018).

- ``stamp_trigger``: a bright ``size x size`` patch in a corner of 8x8 images (flat ``(N, 64)`` or
  ``(N, 1, 8, 8)``).
- ``poison``: stamp the trigger on a fraction of the training images of other classes and relabel them to
  the target class (the attacker controls some training data, not the training).
- ``backdoor_success_rate``: the share of triggered test images of other classes that the model calls the
  target.
- ``representations``, ``spectral_scores``, ``spectral_filter``: per class, centre the learned
  representations and score each example by its squared projection on the top singular vector; poisoned
  examples share a direction the clean ones do not, so they score high. ``detection_report`` compares the
  flagged rows with the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

__all__ = ["CORNERS", "PoisonedData", "backdoor_success_rate", "detection_report", "poison", "representations",
           "spectral_filter", "spectral_scores", "stamp_trigger"]

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def stamp_trigger(x: torch.Tensor, *, size: int = 2, value: float = 1.0, corner: str = "bottom-right") -> torch.Tensor:
    """A copy of the 8x8 images ``x`` (``(N, 64)`` or ``(N, 1, 8, 8)``) with the ``size x size`` pixels of
    ``corner`` set to ``value``."""
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS}, got {corner!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8:
        raise ValueError(f"size must be an integer in [1, 8], got {size!r}")
    if x.shape[1:] not in ((64,), (1, 8, 8)):
        raise ValueError(f"x must be (N, 64) or (N, 1, 8, 8) images, got {tuple(x.shape)}")
    out = x.detach().clone().view(-1, 8, 8)
    rows = slice(0, size) if corner.startswith("top") else slice(8 - size, 8)
    cols = slice(0, size) if corner.endswith("left") else slice(8 - size, 8)
    out[:, rows, cols] = value
    return out.view(x.shape)


@dataclass(frozen=True)
class PoisonedData:
    """A training set with ``poisoned.sum()`` triggered, relabelled rows (``poisoned``: a bool mask)."""

    X: torch.Tensor
    y: torch.Tensor
    poisoned: torch.Tensor
    target: int


def poison(X: torch.Tensor, y: torch.Tensor, *, target: int, fraction: float, seed: int = 0, size: int = 2,
           value: float = 1.0, corner: str = "bottom-right") -> PoisonedData:
    """Stamp the trigger on ``round(fraction * len(X))`` training rows drawn among those whose label is not
    ``target``, and relabel them ``target`` (the rest unchanged; the row order kept)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    others = torch.nonzero(y != target).flatten()
    n = round(fraction * len(X))
    if n > len(others):
        raise ValueError(f"only {len(others)} rows are not of class {target}; cannot poison {n}")
    chosen = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(seed))[:n]]
    mask = torch.zeros(len(X), dtype=torch.bool)
    mask[chosen] = True
    X_p, y_p = X.detach().clone(), y.detach().clone()
    X_p[mask] = stamp_trigger(X[mask], size=size, value=value, corner=corner)
    y_p[mask] = target
    return PoisonedData(X_p, y_p, mask, int(target))


@torch.no_grad()
def backdoor_success_rate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, target: int, size: int = 2,
                          value: float = 1.0, corner: str = "bottom-right") -> float:
    """Among the rows of ``X`` whose label is not ``target``, the share the model (eval mode, its mode
    restored) classifies as ``target`` once the trigger is stamped on them."""
    keep = y != target
    if not bool(keep.any()):
        raise ValueError(f"every row is of class {target}: nothing to attack")
    was_training = model.training
    model.eval()
    try:
        predicted = model(stamp_trigger(X[keep], size=size, value=value, corner=corner)).argmax(-1)
    finally:
        model.train(was_training)
    return float((predicted == target).double().mean())


@torch.no_grad()
def representations(model: nn.Module, X: torch.Tensor, layer: nn.Module | None = None) -> torch.Tensor:
    """What ``layer`` receives (default: the model's last ``nn.Linear``, i.e. the penultimate representation)
    for every row of ``X``, flattened to ``(N, D)``; the model runs in eval mode (its mode restored)."""
    if layer is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("the model has no nn.Linear layer: name the layer")
        layer = linears[-1]
    elif not any(m is layer for m in model.modules()):
        raise ValueError("layer is not a module of the model")
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    was_training = model.training
    model.eval()
    try:
        model(X)
    finally:
        handle.remove()
        model.train(was_training)
    return seen[-1].reshape(len(X), -1)


def spectral_scores(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per class: subtract the class mean from its feature rows, take the top right singular vector ``v`` of
    that matrix, and score each row by ``(row . v) ** 2`` (Tran et al.'s outlier score). Returns one score
    per row, comparable within a class."""
    if features.dim() != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with one label per row, got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    scores = torch.zeros(len(features), dtype=torch.float64)
    for c in labels.unique():
        rows = labels == c
        centred = features[rows].double() - features[rows].double().mean(0)
        if len(centred) < 2:
            continue
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        scores[rows] = (centred @ vh[0]) ** 2
    return scores


def spectral_filter(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, remove_fraction: float,
                    layer: nn.Module | None = None) -> torch.Tensor:
    """The rows to drop: in every class, the ``ceil(remove_fraction * class size)`` rows with the highest
    ``spectral_scores`` of ``representations(model, X, layer)`` (Tran et al. remove 1.5 times the poisoned
    share of a class that the defender must assume). Returns a bool mask over the rows."""
    if not 0.0 <= remove_fraction < 1.0:
        raise ValueError(f"remove_fraction must be in [0, 1), got {remove_fraction!r}")
    scores = spectral_scores(representations(model, X, layer), y)
    flagged = torch.zeros(len(X), dtype=torch.bool)
    for c in y.unique():
        rows = torch.nonzero(y == c).flatten()
        k = math.ceil(remove_fraction * len(rows))
        if k:
            flagged[rows[scores[rows].argsort(descending=True)[:k]]] = True
    return flagged


def detection_report(flagged: torch.Tensor, poisoned: torch.Tensor) -> dict[str, float]:
    """``flagged`` against the true ``poisoned`` mask: ``flagged``, ``poisoned``, ``caught`` (counts),
    ``precision`` (caught / flagged; NaN when nothing is flagged) and ``recall`` (caught / poisoned; NaN when
    nothing is poisoned)."""
    if flagged.shape != poisoned.shape:
        raise ValueError(f"masks of different shapes: {tuple(flagged.shape)} and {tuple(poisoned.shape)}")
    caught = int((flagged & poisoned).sum())
    n_flagged, n_poisoned = int(flagged.sum()), int(poisoned.sum())
    return {"flagged": n_flagged, "poisoned": n_poisoned, "caught": caught,
            "precision": caught / n_flagged if n_flagged else math.nan,
            "recall": caught / n_poisoned if n_poisoned else math.nan}
