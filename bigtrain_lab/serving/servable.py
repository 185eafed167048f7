"""A servable model for lesson 13 (``notebooks/13_serving.ipynb``): one ``.safetensors`` file that a server
can load without unpickling anything.

The file holds the weights of a small MLP (``layers.{i}.weight`` / ``layers.{i}.bias``, ReLU between the
Linear layers) and, in the safetensors metadata, everything needed to rebuild and feed it: the layer sizes
(``architecture``, JSON), the input spec (``input``, JSON) and the class labels (``classes``, JSON).

Input spec of the kit's models: **raw pixel units**. A request sends the 64 pixels of an 8x8 digit exactly as
scikit-learn's ``load_digits().data`` holds them, floats in ``[0, 16]``; the servable divides by 16 before the
network (which was trained on pixels / 16, i.e. ``[0, 1]``). The server refuses values outside ``[0, 16]``, but a
client that sends pixels already scaled to ``[0, 1]`` stays inside the range and gets wrong answers without an
error: the unit is part of the contract.

``resolve_model("digits-mlp")`` trains the built-in model once (about a second) and caches it under
``kit_home() / "models"``. ``slow_servable`` adds an artificial fixed cost per forward call plus a cost per
sample, to show micro-batching's benefit on a 2-core CPU.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.files import write_atomic
from bigtrain_lab.kit_home import kit_home

__all__ = ["BUILTIN_MODELS", "FORMAT", "Servable", "build_mlp", "builtin_model_path", "load_servable",
           "parse_forward_ms", "resolve_model", "save_servable", "slow_servable", "train_digits_mlp"]

#: The ``format`` metadata value of a servable file.
FORMAT = "bigtrain-lab-servable/1"
#: Built-in model names that :func:`resolve_model` trains and caches.
BUILTIN_MODELS = ("digits-mlp",)
#: The digits' raw pixel range: the input unit of the kit's servables.
DIGITS_RANGE = (0.0, 16.0)
#: The recipe of the built-in ``digits-mlp`` (stored in its metadata; a changed recipe retrains the cache).
DIGITS_RECIPE: dict[str, Any] = {"data": "digits", "seed": 0, "hidden": [128], "epochs": 20, "batch_size": 64,
                                 "lr": 0.003, "trainer": "fit_classifier"}


def build_mlp(sizes: Sequence[int]) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]), ReLU, ..., Linear(sizes[-2], sizes[-1])`` (no activation at the end)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"an MLP needs at least two positive layer sizes, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _linears(model: nn.Module) -> list[nn.Linear]:
    kinds = {type(m) for m in model.children()}
    if not isinstance(model, nn.Sequential) or not kinds <= {nn.Linear, nn.ReLU, nn.Dropout}:
        raise ValueError("save_servable takes an nn.Sequential of Linear and ReLU layers (Dropout is dropped), "
                         f"got {type(model).__name__} with {sorted(k.__name__ for k in kinds)}")
    linears = [m for m in model.children() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no Linear layer")
    for a, b in zip(linears[:-1], linears[1:], strict=True):
        if a.out_features != b.in_features:
            raise ValueError(f"layer sizes do not chain: {a.out_features} -> {b.in_features}")
    return linears


def train_digits_mlp(seed: int = 0, hidden: Sequence[int] = (128,), epochs: int = 20, *, batch_size: int = 64,
                     lr: float = 3e-3) -> nn.Sequential:
    """A small MLP classifier of the 8x8 digits, trained by the kit's loop (``fit_classifier``: AdamW, no
    weight decay) on the training split of ``load_dataset("digits", seed=seed)``; it sees pixels / 16
    (``[0, 1]``). About a second on one core. Returned in eval mode."""
    from bigtrain_lab.data import load_dataset
    from bigtrain_lab.fit import fit_classifier

    ds = load_dataset("digits", seed=seed)
    torch.manual_seed(seed)
    X = torch.tensor(ds.X_train / DIGITS_RANGE[1], dtype=torch.float32)
    model = build_mlp([X.shape[1], *hidden, 10])
    fit_classifier(model, X, torch.tensor(ds.y_train, dtype=torch.int64), epochs=epochs, batch_size=batch_size,
                   lr=lr, seed=seed)
    return model.eval()


def save_servable(model: nn.Module, path: str | os.PathLike, *, meta: Mapping[str, Any] | None = None,
                  input_range: tuple[float, float] = DIGITS_RANGE, classes: Sequence[int] | None = None) -> Path:
    """Save ``model`` (an ``nn.Sequential`` MLP) as one ``.safetensors`` file with its architecture, input
    spec (``n_features`` from the first layer, ``input_range`` in raw units, divided by its upper end before
    the network) and ``classes`` (default ``0..n_out-1``) in the metadata. ``meta``: more JSON-ready facts
    to keep (recipe, accuracy). Written atomically (temporary file + ``os.replace``). Returns the path."""
    from safetensors.torch import save as safetensors_bytes

    p = Path(path)
    if p.suffix != ".safetensors":
        raise ValueError(f"a servable is a .safetensors file, got {p.name!r}")
    linears = _linears(model)
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    labels = list(range(sizes[-1])) if classes is None else [int(c) for c in classes]
    if len(labels) != sizes[-1]:
        raise ValueError(f"{len(labels)} classes for {sizes[-1]} outputs")
    low, high = (float(v) for v in input_range)
    if not (np.isfinite([low, high]).all() and 0 <= low < high):
        raise ValueError(f"input_range must be finite with 0 <= low < high, got {input_range}")
    tensors = {}
    for i, m in enumerate(linears):
        tensors[f"layers.{i}.weight"] = m.weight.detach().cpu().contiguous().clone()
        tensors[f"layers.{i}.bias"] = m.bias.detach().cpu().contiguous().clone()
    metadata = {"format": FORMAT,
                "architecture": json.dumps({"kind": "mlp", "sizes": sizes, "activation": "relu"}),
                "input": json.dumps({"n_features": sizes[0], "range": [low, high], "scale": high,
                                     "unit": "raw pixel intensity" if (low, high) == DIGITS_RANGE else "raw"}),
                "classes": json.dumps(labels), "meta": json.dumps(dict(meta or {}), default=str)}
    return write_atomic(p, safetensors_bytes(tensors, metadata=metadata))


@dataclass
class Servable:
    """A loaded model ready to serve: ``predict_proba`` takes raw-unit inputs ``(B, n_features)``.

    ``forward_cost_ms``: ``(fixed, per_item)`` milliseconds added to every call (see :func:`slow_servable`)."""

    model: nn.Module
    n_features: int
    classes: list[int]
    input_range: tuple[float, float]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    forward_cost_ms: tuple[float, float] | None = None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` (float32) for raw inputs ``x`` of shape ``(B, n_features)``."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ValueError(f"expected inputs of shape (B, {self.n_features}), got {arr.shape}")
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(arr / np.float32(self.input_range[1])))
            probs = torch.softmax(logits, dim=1).numpy()
        if self.forward_cost_ms is not None:
            fixed, per_item = self.forward_cost_ms
            time.sleep((fixed + per_item * len(arr)) / 1000.0)  # releases the GIL, like waiting for a device
        return probs

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The predicted labels ``(B,)`` (``classes[argmax]``)."""
        return np.asarray(self.classes)[self.predict_proba(x).argmax(axis=1)]


def slow_servable(servable: Servable, cost_ms: tuple[float, float] | float) -> Servable:
    """A copy of ``servable`` whose every forward call takes ``fixed + per_item * B`` ms more (a sleep:
    ``cost_ms=(fixed, per_item)``, or one number for a fixed cost only).

    Real models carry a large fixed cost per call (kernel launches, host-device copies, Python dispatch,
    reading the weights from memory) and a small cost per sample; the kit's tiny MLP has almost none, so
    batching would show no benefit. The wait sleeps, like a host waiting for an accelerator, so the CPU
    stays free for the server's own work on a 2-core machine."""
    fixed, per_item = (cost_ms, 0.0) if isinstance(cost_ms, int | float) else cost_ms
    fixed, per_item = float(fixed), float(per_item)
    if not (np.isfinite([fixed, per_item]).all() and fixed >= 0 and per_item >= 0):
        raise ValueError(f"cost_ms must be finite and >= 0, got {cost_ms!r}")
    return replace(servable, forward_cost_ms=(fixed, per_item))


def parse_forward_ms(text: str) -> tuple[float, float]:
    """``"FIXED"`` or ``"FIXED,PER_ITEM"`` (milliseconds) as ``(fixed, per_item)``; ValueError otherwise.

    >>> parse_forward_ms("2,0.02")
    (2.0, 0.02)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(np.isfinite(values)) or min(values) < 0:
        raise ValueError(f"--forward-ms takes FIXED or FIXED,PER_ITEM in ms (numbers >= 0), got {text!r}")
    return (values[0], values[1] if len(values) == 2 else 0.0)


def _read_metadata(p: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{p} is not a readable .safetensors file: {exc}") from exc


def load_servable(path: str | os.PathLike) -> Servable:
    """Load a file made by :func:`save_servable` (weights with ``safetensors.torch.load_file``, never
    pickle); the model is in eval mode. FileNotFoundError / ValueError say what is wrong with the file."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no servable model at {p}")
    if p.suffix != ".safetensors":
        raise ValueError(f"a servable is a .safetensors file made by save_servable, got {p.name!r}")
    metadata = _read_metadata(p)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{p.name} is a .safetensors file but not a servable (metadata format "
                         f"{metadata.get('format')!r}, expected {FORMAT!r}): make it with save_servable")
    try:
        arch = json.loads(metadata["architecture"])
        spec = json.loads(metadata["input"])
        classes = [int(c) for c in json.loads(metadata["classes"])]
        meta = json.loads(metadata.get("meta", "{}"))
        sizes = [int(s) for s in arch["sizes"]]
        low, high = (float(v) for v in spec["range"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{p.name}: damaged servable metadata ({exc!r})") from exc
    model = build_mlp(sizes)
    tensors = load_file(str(p))
    state = {}
    linears = [(name, m) for name, m in model.named_children() if isinstance(m, nn.Linear)]
    for i, (name, layer) in enumerate(linears):
        for kind in ("weight", "bias"):
            key, expected = f"layers.{i}.{kind}", tuple(getattr(layer, kind).shape)
            got = tuple(tensors[key].shape) if key in tensors else "missing"
            if got != expected:
                raise ValueError(f"{p.name}: tensor {key} should have shape {expected}, got {got}")
            state[f"{name}.{kind}"] = tensors[key]
    model.load_state_dict(state)
    return Servable(model=model.eval(), n_features=sizes[0], classes=classes, input_range=(low, high), meta=meta,
                    path=p)


def builtin_model_path(name: str) -> Path:
    """Where the built-in ``name`` is cached: ``kit_home() / "models" / f"{name}.safetensors"``."""
    return kit_home() / "models" / f"{name}.safetensors"


def _cached_recipe(path: Path) -> dict[str, Any] | None:
    try:
        return load_servable(path).meta.get("recipe")
    except (OSError, ValueError):
        return None


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The servable file for a built-in name (``digits-mlp``: trained once, cached in the kit home, retrained
    when the cache is missing, damaged or from another recipe) or an existing ``.safetensors`` file made by
    :func:`save_servable` (checked by loading it)."""
    text = os.fspath(name_or_path)
    if text in BUILTIN_MODELS:
        path = builtin_model_path(text)
        if _cached_recipe(path) != DIGITS_RECIPE:
            r = DIGITS_RECIPE
            model = train_digits_mlp(r["seed"], r["hidden"], r["epochs"], batch_size=r["batch_size"], lr=r["lr"])
            save_servable(model, path, meta={"name": text, "recipe": DIGITS_RECIPE,
                                             "test_accuracy": _digits_accuracy(model, r["seed"])})
        return path
    path = Path(text)
    if path.suffix != ".safetensors":
        raise ValueError(f"unknown model {text!r}: give a built-in name ({', '.join(BUILTIN_MODELS)}) or a "
                         ".safetensors file made by bigtrain_lab.serving.save_servable")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    load_servable(path)  # raises ValueError naming the problem
    return path


def _digits_accuracy(model: nn.Module, seed: int) -> float:
    from bigtrain_lab.data import load_dataset

    ds = load_dataset("digits", seed=seed)
    with torch.inference_mode():
        pred = model(torch.tensor(ds.X_test / DIGITS_RANGE[1], dtype=torch.float32)).argmax(1).numpy()
    return round(float((pred == ds.y_test).mean()), 4)
