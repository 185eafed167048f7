"""Pretrained weights cached in the kit home, each with the recipe that made it and its sha256.

Layout under ``kit_home()/pretrained/``: ``<name>-<key>.json`` (the sidecar: ``recipe``, ``sha256``,
``weights`` file name, ``seconds`` it took to train) and the weights file it names,
``<name>-<key>-<sha[:12]>.pt``. ``key`` is a hash of the recipe (every hyperparameter, the data, the seed,
the torch version), so a changed recipe is a new cache entry, never a stale hit. The weights file is written
first and the sidecar last, each through a temporary file in the same folder and ``os.replace``; a sidecar
therefore always names a complete file, and concurrent writers (pytest-xdist workers sharing one home) at
worst train twice. On load the file's sha256 must match the sidecar: a corrupt or missing file is retrained
with a warning, never used.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from bigtrain_lab.bench_results import write_json
from bigtrain_lab.files import write_atomic
from bigtrain_lab.kit_home import kit_home

__all__ = ["CacheEntry", "cache_folder", "cached_state_dict", "recipe_key"]

StateDict = dict[str, torch.Tensor]


def cache_folder() -> Path:
    """``kit_home()/pretrained`` (not created here)."""
    return kit_home() / "pretrained"


def recipe_key(recipe: Mapping[str, Any]) -> str:
    """16 hex digits of the sha256 of the recipe as canonical JSON (sorted keys)."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class CacheEntry:
    """The two files of one recipe: ``sidecar`` (JSON) and the weights it names."""

    def __init__(self, name: str, recipe: Mapping[str, Any]) -> None:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"name must be letters, digits and underscores, got {name!r}")
        self.name, self.recipe, self.key = name, dict(recipe), recipe_key(recipe)
        self.sidecar = cache_folder() / f"{name}-{self.key}.json"

    def load(self) -> StateDict | None:
        """The cached state dict if the sidecar and a matching file exist; None if nothing is cached.

        Raises ``ValueError`` (with the reason) when something is cached but fails verification."""
        if not self.sidecar.is_file():
            return None
        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
            weights = self.sidecar.parent / meta["weights"]
            blob = weights.read_bytes()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable cache entry {self.sidecar.name}: {exc!r}") from exc
        if meta.get("recipe") != json.loads(json.dumps(self.recipe, default=str)):
            raise ValueError(f"{self.sidecar.name} holds another recipe")
        digest = hashlib.sha256(blob).hexdigest()
        if digest != meta.get("sha256"):
            raise ValueError(f"sha256 mismatch for {weights.name}: file {digest[:12]}..., "
                             f"sidecar {str(meta.get('sha256'))[:12]}...")
        return torch.load(io.BytesIO(blob), weights_only=True)

    def save(self, state: StateDict, seconds: float) -> Path:
        """Write the weights, then the sidecar (both atomically). Returns the weights path."""
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, buffer)
        blob = buffer.getvalue()
        digest = hashlib.sha256(blob).hexdigest()
        weights = write_atomic(self.sidecar.parent / f"{self.name}-{self.key}-{digest[:12]}.pt", blob)
        write_json(self.sidecar, {"name": self.name, "key": self.key, "recipe": self.recipe, "sha256": digest,
                                  "weights": weights.name, "seconds": round(seconds, 3)}, default=str)
        return weights


def cached_state_dict(name: str, recipe: Mapping[str, Any], train: Callable[[], StateDict]) -> StateDict:
    """The state dict ``train()`` makes for ``recipe``: from the cache if there and verified, else trained now
    and cached. A cache entry that fails verification is retrained with a ``RuntimeWarning``."""
    entry = CacheEntry(name, recipe)
    try:
        state = entry.load()
    except ValueError as why:
        warnings.warn(f"pretrained cache: {why}; retraining {name}", RuntimeWarning, stacklevel=2)
        state = None
    if state is not None:
        return state
    start = time.perf_counter()
    state = train()
    entry.save(state, time.perf_counter() - start)
    return state
