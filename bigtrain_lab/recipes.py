"""Named training recipes for TinyGPT: optimizer settings plus a learning-rate schedule for a run length.

``recipe("nanogpt", steps)`` is nanoGPT's shakespeare-char configuration; ``recipe("kit", steps)`` is the
kit's default (used by ``scripts/train_gpt.py``), chosen by ``bench/recipes.py``, which measures the steps
each needs to reach the same validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bigtrain_lab.train import cosine_schedule, wsd_schedule

Schedule = Callable[[int], float]


def _nanogpt(steps: int) -> tuple[dict[str, Any], Schedule]:
    settings = {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.99), "grad_clip": 1.0}
    return settings, cosine_schedule(1e-3, 1e-4, min(100, steps // 10), steps)


def _wsd(lr: float, beta2: float) -> Callable[[int], tuple[dict[str, Any], Schedule]]:
    def make(steps: int) -> tuple[dict[str, Any], Schedule]:
        settings = {"lr": lr, "weight_decay": 0.1, "betas": (0.9, beta2), "grad_clip": 1.0}
        return settings, wsd_schedule(lr, lr / 100, min(50, steps // 10), steps, decay_fraction=0.3)
    return make


def _cosine(lr: float, beta2: float) -> Callable[[int], tuple[dict[str, Any], Schedule]]:
    def make(steps: int) -> tuple[dict[str, Any], Schedule]:
        settings = {"lr": lr, "weight_decay": 0.1, "betas": (0.9, beta2), "grad_clip": 1.0}
        return settings, cosine_schedule(lr, lr / 100, min(50, steps // 10), steps)
    return make


RECIPES: dict[str, Callable[[int], tuple[dict[str, Any], Schedule]]] = {
    "nanogpt": _nanogpt,
    "wsd-2e-3": _wsd(2e-3, 0.95),
    "wsd-3e-3": _wsd(3e-3, 0.95),
    "wsd-5e-3": _wsd(5e-3, 0.95),
    "cosine-3e-3": _cosine(3e-3, 0.95),
}
RECIPES["kit"] = RECIPES["wsd-3e-3"]


def recipe(name: str, steps: int) -> tuple[dict[str, Any], Schedule]:
    """(TrainConfig keyword arguments, schedule step -> lr) of recipe ``name`` for a run of ``steps``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return RECIPES[name](steps)
