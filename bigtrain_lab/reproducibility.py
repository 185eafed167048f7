"""Seeding and run-size switches shared by every notebook and script."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

FAST_ENV_VAR = "BIGTRAIN_LAB_FAST"


def seed_everything(seed: int = 0, *, deterministic: bool = False) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    With ``deterministic=True`` torch is also asked to use deterministic kernels (slower on GPU; some
    operations then raise). Returns the seed so that a notebook can print it.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def fast_mode() -> bool:
    """True when ``BIGTRAIN_LAB_FAST`` is set to a true value: tests set it to shrink heavy runs."""
    return os.environ.get(FAST_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}
