"""The learner's kit home: the folder for progress, review schedules and cached pretrained models."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV_VAR", "kit_home"]

HOME_ENV_VAR = "BIGTRAIN_LAB_HOME"


def kit_home() -> Path:
    """``$BIGTRAIN_LAB_HOME`` if set (and non-empty), else ``~/.bigtrain-lab``. Not created here."""
    return Path(os.environ.get(HOME_ENV_VAR) or Path.home() / ".bigtrain-lab")
