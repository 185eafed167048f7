"""What the checkers of randomised exercises share: seeded generators handed to the candidate, the
Kolmogorov-Smirnov distance of draws to their distribution, and the check that the draws come from the
generator the candidate was handed.

A right answer to a sampled exercise cannot match the reference digit for digit, so a runner calls it on a
case's generator twice (a second call must continue the stream, not repeat it) and once on each of two
generators seeded alike (they must agree: the candidate draws from what it is handed, not from a global
state), then tests the distribution of what it returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


class SeededRng(np.random.Generator):
    """``np.random.default_rng(seed)`` that the checker hands to the candidate (its repr names the seed)."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(seed))
        self.seed = seed

    def __deepcopy__(self, memo: dict) -> SeededRng:
        return self  # the runner needs the very generator the case holds (its state advances)

    def __repr__(self) -> str:
        return f"np.random.default_rng({self.seed})"


class SeededGenerator(torch.Generator):
    """``torch.Generator().manual_seed(seed)`` that the checker hands to the candidate (its repr names the
    seed); the runner needs the very generator the case holds (its state advances), so copies share it."""

    def __new__(cls, seed: int) -> SeededGenerator:
        return super().__new__(cls, "cpu")

    def __init__(self, seed: int) -> None:
        self.manual_seed(seed)
        self.seed = seed

    def __deepcopy__(self, memo: dict) -> SeededGenerator:
        return self

    def __repr__(self) -> str:
        return f"torch.Generator().manual_seed({self.seed})"


def ks_uniform(u: np.ndarray) -> float:
    """``sqrt(n) * sup |F_n - U|``: the scaled Kolmogorov-Smirnov distance of ``u`` to the uniform law on [0, 1].
    Draws passed through their own CDF are uniform, so ``ks_uniform(cdf(x))`` tests ``x`` against any
    continuous law; a right answer exceeds 3.0 with probability about 3e-8."""
    n = len(u)
    u = np.sort(np.asarray(u, dtype=float))
    i = np.arange(1, n + 1)
    return math.sqrt(n) * float(max(np.max(i / n - u), np.max(u - (i - 1) / n)))


def stream_problem(first: Any, again: Any, twin_a: Any, twin_b: Any, *, same: Callable[[Any, Any], bool],
                   what: str, example: str, global_state: str, repeat_possible: bool = False) -> str:
    """'' when the draws come from the generator handed in, else what is wrong. ``first`` and ``again``: two
    calls on the case's generator (they must differ unless ``repeat_possible``, e.g. a single coin flip);
    ``twin_a`` and ``twin_b``: one call on each of two generators seeded alike (they must agree). ``what``
    names the output ("draws", "masks"), ``example`` a right way to draw, ``global_state`` the state a
    wrong answer draws from instead."""
    if not repeat_possible and same(first, again):
        return (f"two calls with the same generator gave the same {what}: draw from the generator you are given "
                f"(e.g. {example}), do not make a new generator or fix a seed inside")
    if not same(twin_a, twin_b):
        return (f"two generators with the same seed gave different {what}: draw from the generator you are "
                f"given, not from {global_state}")
    return ""
