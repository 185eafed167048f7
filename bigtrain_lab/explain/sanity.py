"""Sanity checks for attributions: do they depend on the model, are they stable, do methods agree?

- ``model_randomization_test`` (Adebayo et al., 2018, "Sanity checks for saliency maps"): re-initialise
  the model's layers one by one from the output down (cascading) and measure how similar each method's
  map stays to the map of the trained model. A method whose maps barely change does not explain the
  model: it shows the input (an edge detector would pass as a "saliency map").
- ``lime_stability``: the same explanation re-run with different seeds; LIME samples, so it varies.
- ``rank_agreement``: Spearman / Kendall correlation and top-k overlap of two attribution vectors
  (e.g. LIME against SHAP).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from numpy.typing import ArrayLike
from scipy.stats import kendalltau, spearmanr

__all__ = [
    "Agreement",
    "RandomizationResult",
    "cascading_randomizations",
    "lime_stability",
    "model_randomization_test",
    "rank_agreement",
    "top_k_overlap",
]


def top_k_overlap(a: ArrayLike, b: ArrayLike, k: int) -> float:
    """|top-k(a) & top-k(b)| / k, the top k taken by absolute value."""
    a, b = np.abs(np.ravel(a)), np.abs(np.ravel(b))
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in size: {a.size} != {b.size}")
    if not 1 <= k <= a.size:
        raise ValueError(f"k must be in [1, {a.size}], got {k!r}")
    top = lambda v: set(np.argsort(-v, kind="stable")[:k].tolist())  # noqa: E731
    return len(top(a) & top(b)) / k


@dataclass(frozen=True)
class Agreement:
    """Rank agreement of two attribution vectors, on absolute values (importance, sign ignored)."""

    spearman: float
    kendall: float
    top_k: float
    k: int


def rank_agreement(a: ArrayLike, b: ArrayLike, k: int = 5) -> Agreement:
    """Spearman and Kendall rank correlation of |a| and |b|, and their top-k overlap."""
    a, b = np.abs(np.ravel(a)), np.abs(np.ravel(b))
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"a and b must have the same size >= 2, got {a.size} and {b.size}")
    return Agreement(float(spearmanr(a, b).statistic), float(kendalltau(a, b).statistic), top_k_overlap(a, b, k), k)


def lime_stability(explain: Callable[[int], np.ndarray], seeds: Sequence[int], k: int = 5
                   ) -> dict[str, float]:
    """Mean pairwise Spearman correlation and top-k overlap of ``explain(seed)`` over ``seeds``.

    Also ``sign_flips``: the mean fraction of features whose sign differs between two runs, among the
    top-k of either run. 1.0 / 1.0 / 0.0 is perfectly stable.
    """
    if len(seeds) < 2:
        raise ValueError("need at least two seeds")
    runs = [np.ravel(explain(int(s))) for s in seeds]
    pairs = list(itertools.combinations(runs, 2))
    spearman = [rank_agreement(a, b, k).spearman for a, b in pairs]
    overlap = [top_k_overlap(a, b, k) for a, b in pairs]
    flips = []
    for a, b in pairs:
        top = np.union1d(np.argsort(-np.abs(a))[:k], np.argsort(-np.abs(b))[:k])
        flips.append(float(np.mean(np.sign(a[top]) != np.sign(b[top]))))
    return {"spearman": float(np.mean(spearman)), "top_k": float(np.mean(overlap)),
            "sign_flips": float(np.mean(flips)), "runs": len(runs)}


def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    for p in module.parameters(recurse=False):
        with torch.no_grad():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / np.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)


def cascading_randomizations(model: nn.Module, *, seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Copies of ``model`` with its parameterised layers re-initialised cumulatively, from the output down.

    Returns ``[(name of the last layer randomised, model copy), ...]``, one entry per layer with
    parameters: the first copy has only the output layer random, the last one every layer.
    """
    layers = [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not layers:
        raise ValueError("the model has no layer with parameters")
    generator = torch.Generator().manual_seed(seed)
    current = copy.deepcopy(model)
    modules = dict(current.named_modules())
    out = []
    for name, _ in reversed(layers):
        _reinitialise(modules[name], generator)
        out.append((name, copy.deepcopy(current)))
    return out


@dataclass(frozen=True)
class RandomizationResult:
    """Similarity of each method's map to the trained model's map, per randomisation stage.

    ``stages``: names of the layers randomised so far; ``spearman[method][i]`` and ``ssim[method][i]``
    for stage i (mean over the inputs), on absolute maps normalised to [0, 1].
    """

    stages: list[str]
    spearman: dict[str, list[float]]
    ssim: dict[str, list[float]]


def _normalised(maps: np.ndarray) -> np.ndarray:
    maps = np.abs(maps.reshape(len(maps), -1))
    top = maps.max(axis=1, keepdims=True)
    return np.where(top > 0, maps / np.where(top > 0, top, 1), 0.0)


def model_randomization_test(model: nn.Module, x: torch.Tensor, target: torch.Tensor | int,
                             methods: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor | int], torch.Tensor]],
                             *, image_shape: tuple[int, int] | None = None, seed: int = 0) -> RandomizationResult:
    """Adebayo et al.'s cascading model-parameter randomisation test.

    ``methods[name](model, x, target) -> maps`` (one map per row of x). Each method's maps on every
    randomised copy are compared with its maps on the trained ``model``: Spearman rank correlation of the
    absolute values and, with ``image_shape``, SSIM (``skimage.metrics.structural_similarity``).
    High similarity after the whole network is random means the method does not depend on the model.
    """
    from skimage.metrics import structural_similarity

    def as_array(maps: torch.Tensor) -> np.ndarray:
        return _normalised(maps.detach().double().cpu().numpy())

    reference = {name: as_array(fn(model, x, target)) for name, fn in methods.items()}
    stages, spearman, ssim = [], {n: [] for n in methods}, {n: [] for n in methods}
    for stage, randomized in cascading_randomizations(model, seed=seed):
        stages.append(stage)
        for name, fn in methods.items():
            maps = as_array(fn(randomized, x, target))
            ref = reference[name]
            rho = [spearmanr(a, b).statistic if a.std() > 0 and b.std() > 0 else 0.0 for a, b in zip(ref, maps, strict=True)]
            spearman[name].append(float(np.nanmean(rho)))
            if image_shape is not None:
                side = min(image_shape)
                window = min(7, side if side % 2 else side - 1)  # odd, at most the image's side
                s = [structural_similarity(a.reshape(image_shape), b.reshape(image_shape), data_range=1.0,
                                           win_size=window) for a, b in zip(ref, maps, strict=True)]
                ssim[name].append(float(np.mean(s)))
    return RandomizationResult(stages, spearman, ssim)
