"""Named training recipes for TinyGPT: optimizer settings plus a learning-rate schedule.

``RECIPES["nanogpt"]`` is nanoGPT's shakespeare-char configuration; ``RECIPES["kit"]`` is the kit's default
(used by ``scripts/train_gpt.py``). ``bench/recipes.py`` trains both on the same batches and measures the
steps each needs to reach the same validation loss (results in ``bench/results/recipes.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bigtrain_lab.schedules import constant_schedule, cosine_schedule, wsd_schedule

SCHEDULE_KINDS = ("constant", "cosine", "wsd")

#: nanoGPT's CPU configuration for shakespeare-char (config/train_shakespeare_char.py, CPU overrides):
#: the TinyGPT shape (GPTConfig keyword arguments) and the batch size the benches measure at.
NANOGPT_CPU_SHAPE: dict[str, Any] = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0}
NANOGPT_CPU_BATCH_SIZE = 12


@dataclass(frozen=True)
class Recipe:
    """AdamW settings and a schedule: linear warm-up to ``lr``, then ``schedule`` down to ``min_lr``
    (``wsd``: held flat, then a linear decay over the last ``decay_fraction`` of the run)."""

    lr: float
    min_lr: float
    warmup_steps: int
    schedule: str
    betas: tuple[float, float]
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    decay_fraction: float = 0.2

    def warmup_for(self, steps: int) -> int:
        """The warm-up of a run of ``steps`` steps: ``warmup_steps``, but at most a tenth of the run."""
        return min(self.warmup_steps, steps // 10)

    def train_settings(self) -> dict[str, Any]:
        """The ``TrainConfig`` keyword arguments of this recipe."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "betas": self.betas, "grad_clip": self.grad_clip}

    def make_schedule(self, steps: int) -> Callable[[int], float]:
        """step -> learning rate for a run of ``steps`` steps."""
        return make_schedule(self.schedule, self.lr, self.min_lr, self.warmup_for(steps), steps,
                             decay_fraction=self.decay_fraction)


def make_schedule(kind: str, lr: float, min_lr: float, warmup_steps: int, steps: int, *,
                  decay_fraction: float = 0.2) -> Callable[[int], float]:
    """A schedule by name: ``constant``, ``cosine`` or ``wsd``."""
    if kind == "constant":
        return constant_schedule(lr, warmup_steps)
    if kind == "cosine":
        return cosine_schedule(lr, min_lr, warmup_steps, steps)
    if kind == "wsd":
        return wsd_schedule(lr, min_lr, warmup_steps, steps, decay_fraction=decay_fraction)
    raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULE_KINDS}")


RECIPES: dict[str, Recipe] = {
    # nanoGPT's config/train_shakespeare_char.py: lr 1e-3 -> 1e-4 cosine, 100 warm-up steps, beta2 0.99
    "nanogpt": Recipe(lr=1e-3, min_lr=1e-4, warmup_steps=100, schedule="cosine", betas=(0.9, 0.99)),
    # the kit's: 3x the peak lr, beta2 0.95, warmup-stable-decay with the last 30 % decaying to lr / 100
    "kit": Recipe(lr=3e-3, min_lr=3e-5, warmup_steps=50, schedule="wsd", betas=(0.9, 0.95), decay_fraction=0.3),
    # candidates bench/recipes.py compared when choosing the kit's (600-step runs)
    "cosine-3e-3": Recipe(lr=3e-3, min_lr=3e-5, warmup_steps=50, schedule="cosine", betas=(0.9, 0.95)),
    "wsd-5e-3": Recipe(lr=5e-3, min_lr=5e-5, warmup_steps=50, schedule="wsd", betas=(0.9, 0.95),
                       decay_fraction=0.3),
}


def recipe(name: str, steps: int) -> tuple[dict[str, Any], Callable[[int], float]]:
    """(TrainConfig keyword arguments, schedule step -> lr) of recipe ``name`` for a run of ``steps``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    chosen = RECIPES[name]
    return chosen.train_settings(), chosen.make_schedule(steps)
