"""How to save a model, each claim shown by a function a lesson cell calls.

Lesson 13 (``notebooks/13_saving_and_export.ipynb``), "how to save a model":

- ``torch.save(model)`` pickles the module OBJECT: the file names the class by its import path
  (``module.ClassName``), so renaming the class or moving its module breaks the file, and
  ``torch.load``'s default ``weights_only=True`` refuses it anyway. ``torch.save(model.state_dict())``
  stores tensors under parameter names and survives the refactor (``pickled_module_breaks_on_refactor``).
- Unpickling runs code: a checkpoint can carry any callable with its arguments (``malicious_checkpoint``,
  a harmless one that writes a marker file); ``weights_only=True`` (torch's default since 2.6) refuses it
  with ``pickle.UnpicklingError`` (``load_outcomes``).
- safetensors stores only tensors (a JSON header + raw bytes): nothing to execute, and it can be read
  lazily, one tensor at a time (``save_safetensors``, ``load_safetensors``, ``checkpoint_formats``).
- ``load_state_dict`` COPIES each saved tensor into the existing parameter: the model keeps its own dtype
  and device (an fp32 checkpoint loaded into a bf16 model gives bf16 weights; ``dtype_on_load``).
  ``map_location=`` (``torch.load``) / ``device=`` (safetensors) choose where the tensors are first read to.
- A checkpoint's SHA-256, recorded when it is written and checked before it is loaded, catches a truncated
  or swapped file (``sha256_file``, ``write_sha256``, ``verify_sha256``, ``load_verified``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

__all__ = ["MARKER_SUFFIX", "checkpoint_formats", "dtype_on_load", "load_outcomes", "load_safetensors",
           "load_verified", "malicious_checkpoint", "marker_path", "pickled_module_breaks_on_refactor",
           "save_safetensors", "sha256_file", "verify_sha256", "write_sha256"]

# ----------------------------------------------------------------------------------------------------
# A pickled module object breaks on a refactor; a state_dict does not

_MODEL_SOURCE = '''\
import torch.nn as nn


class {name}(nn.Module):
    """A tiny classifier, as a project's models.py would define it."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.hidden(x).relu())
'''


def _error(exc: BaseException) -> dict[str, str]:
    """The exception's type and the line of its message that says why (torch's weights-only refusal is a
    long text: keep its "WeightsUnpickler error: ..." line, without the advice around it)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    why = next((line for line in lines if line.startswith("WeightsUnpickler error:")), lines[0])
    return {"error_type": type(exc).__name__, "message": why.split(". Please use")[0][:300]}


def _import_fresh(name: str) -> Any:
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def pickled_module_breaks_on_refactor(tmp_dir: str | os.PathLike[str], *, old_class: str = "TinyNet",
                                      new_class: str = "DigitClassifier") -> dict[str, Any]:
    """Save a model both ways, rename its class, and load both files again.

    Writes ``tmp_dir/<module>.py`` (a fresh module name each call, so a kernel can repeat it) defining
    ``old_class``, saves ``torch.save(model)`` (``whole.pt``) and ``torch.save(model.state_dict())``
    (``state_dict.pt``), then rewrites the module with the class renamed to ``new_class`` and re-imports it.
    Returns ``{"module", "whole_default"}`` (``torch.load(whole.pt)`` with the default ``weights_only=True``,
    before the refactor: refused), ``"whole_before_refactor"`` (``weights_only=False``: loads),
    ``"whole_after_refactor"`` (the error: the class is looked up by its old name),
    ``"state_dict_after_refactor"`` (``{"loaded": True, "max_abs_diff": ...}``: the same outputs)."""
    if old_class == new_class or not (old_class.isidentifier() and new_class.isidentifier()):
        raise ValueError(f"old_class and new_class must be two different identifiers, got {old_class!r}, "
                         f"{new_class!r}")
    folder = Path(tmp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"bt_models_{uuid.uuid4().hex[:12]}"
    source = folder / f"{name}.py"
    whole, weights = folder / f"{name}_whole.pt", folder / f"{name}_state_dict.pt"
    result: dict[str, Any] = {"module": name, "old_class": old_class, "new_class": new_class}
    sys.path.insert(0, str(folder))
    try:
        source.write_text(_MODEL_SOURCE.format(name=old_class), encoding="utf-8")
        torch.manual_seed(0)
        model = getattr(_import_fresh(name), old_class)().eval()
        torch.save(model, whole)  # the module object, pickled: the file names bt_models_....TinyNet
        torch.save(model.state_dict(), weights)  # tensors under parameter names
        x = torch.randn(5, 4)
        with torch.no_grad():
            expected = model(x)
        try:
            torch.load(whole)  # the default is weights_only=True
            result["whole_default"] = {"error_type": None, "message": "loaded"}
        except pickle.UnpicklingError as exc:
            result["whole_default"] = _error(exc)
        reloaded = torch.load(whole, weights_only=False)
        result["whole_before_refactor"] = {"loaded": True, "class": type(reloaded).__name__}

        # the refactor: same file, class renamed (a length change, so no stale bytecode cache can match)
        source.write_text(_MODEL_SOURCE.format(name=new_class), encoding="utf-8")
        refactored = _import_fresh(name)
        try:
            torch.load(whole, weights_only=False)
            result["whole_after_refactor"] = {"error_type": None, "message": "loaded"}
        except (AttributeError, ModuleNotFoundError, pickle.UnpicklingError) as exc:
            result["whole_after_refactor"] = _error(exc)
        new_model = getattr(refactored, new_class)().eval()
        new_model.load_state_dict(torch.load(weights, weights_only=True))
        with torch.no_grad():
            diff = float((new_model(x) - expected).abs().max())
        result["state_dict_after_refactor"] = {"loaded": True, "max_abs_diff": diff}
    finally:
        sys.modules.pop(name, None)
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
    return result


# ----------------------------------------------------------------------------------------------------
# Unpickling runs code

#: ``malicious_checkpoint(path)`` proves execution by writing ``path`` + this suffix.
MARKER_SUFFIX = ".code-ran.txt"


def marker_path(path: str | os.PathLike[str]) -> Path:
    """The file the payload of ``malicious_checkpoint(path)`` writes when it runs."""
    p = Path(path)
    return p.with_name(p.name + MARKER_SUFFIX)


class _Payload:
    """Pickles as ``exec(code)``: pickle stores a callable and its arguments, and unpickling calls it."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def malicious_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint (tensors AND a payload) whose unpickling runs code: it writes ``marker_path(path)``,
    a short text file, and does nothing else (harmless: no deletion, no network). Returns ``path``.

    FileExistsError when the marker already exists (the demonstration needs a fresh place)."""
    p = Path(path)
    marker = marker_path(p)
    if marker.exists():
        raise FileExistsError(f"{marker} already exists: use a fresh folder to show the payload running")
    code = (f"import pathlib; pathlib.Path({str(marker)!r}).write_text("
            f"'written by code inside the checkpoint {p.name}\\n')")
    torch.save({"weight": torch.zeros(2, 2), "config": _Payload(code)}, p)
    return p


def load_outcomes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load ``malicious_checkpoint``'s file twice: ``weights_only=True`` first (refused with
    ``pickle.UnpicklingError``, marker not written), then ``weights_only=False`` (loads, marker written).
    Returns ``{"weights_only_true": {...}, "weights_only_false": {...}, "marker": path}``."""
    p = Path(path)
    marker = marker_path(p)
    if marker.exists():
        raise FileExistsError(f"{marker} already exists: write the checkpoint again in a fresh folder")
    out: dict[str, Any] = {"marker": str(marker)}
    try:
        torch.load(p, weights_only=True)
        safe: dict[str, Any] = {"error_type": None, "message": "loaded"}
    except pickle.UnpicklingError as exc:
        safe = _error(exc)
    out["weights_only_true"] = {**safe, "code_ran": marker.exists()}
    try:
        loaded = torch.load(p, weights_only=False)
        unsafe: dict[str, Any] = {"error_type": None, "keys": sorted(loaded)}
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        unsafe = _error(exc)
    out["weights_only_false"] = {**unsafe, "code_ran": marker.exists()}
    return out


# ----------------------------------------------------------------------------------------------------
# safetensors


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
                     metadata: Mapping[str, Any] | None = None) -> Path:
    """``safetensors.torch.save_file``: tensors only (made contiguous, on the CPU), with string metadata
    (values converted with ``str``). Tied tensors (two names, one storage) are refused by safetensors: save
    one name, or use ``safetensors.torch.save_model``."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    save_file(tensors, os.fspath(path), metadata=meta)
    return Path(path)


def load_safetensors(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, read straight to ``device`` (``"cpu"``, ``"cuda:0"``, ...)."""
    return load_file(os.fspath(path), device=device)


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3


def checkpoint_formats(model: nn.Module, tmp_dir: str | os.PathLike[str], *, repeat: int = 5) -> list[dict[str, Any]]:
    """Save ``model``'s state_dict as ``torch.save`` and as safetensors and time loading it back (median of
    ``repeat`` loads, ms): ``torch.load(weights_only=True)``, ``torch.load(mmap=True)`` (tensors mapped,
    read on first touch), ``safetensors.load_file`` (all tensors) and ``safe_open`` reading ONE tensor (the
    lazy read a server needs for a shard or a single layer). Rows: ``format``, ``file``, ``file_bytes``,
    ``load_ms``, ``reads``. Timings on a tiny model are dominated by fixed costs; compare formats, not ms."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat!r}")
    folder = Path(tmp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    pt, st = folder / "model.pt", folder / "model.safetensors"
    torch.save(state, pt)
    save_safetensors(state, st)
    first = next(iter(state))

    def lazy_one() -> torch.Tensor:
        with safe_open(os.fspath(st), framework="pt", device="cpu") as f:
            return f.get_tensor(first)

    rows = [
        ("torch.save(state_dict)", pt, lambda: torch.load(pt, weights_only=True), "all tensors"),
        ("torch.save, torch.load(mmap=True)", pt, lambda: torch.load(pt, weights_only=True, mmap=True),
         "mapped, read on first touch"),
        ("safetensors", st, lambda: load_file(os.fspath(st)), "all tensors"),
        ("safetensors, safe_open (lazy)", st, lazy_one, f"one tensor ({first})"),
    ]
    return [{"format": fmt, "file": path.name, "file_bytes": path.stat().st_size, "load_ms": _median_ms(fn, repeat),
             "reads": reads} for fmt, path, fn, reads in rows]


def dtype_on_load(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Load ``state_dict`` into ``model`` and report dtypes: ``load_state_dict`` copies each tensor INTO the
    existing parameter (``param.copy_(saved)`` casts), so the model keeps its dtype and device. Saved fp32
    into a bf16 model: bf16 weights (rounded); to get fp32 weights, ``model.float()`` BEFORE loading.
    Returns ``{"saved_dtypes", "model_dtypes", "max_abs_rounding"}`` (largest |loaded - saved|)."""
    model.load_state_dict(state_dict)
    loaded = model.state_dict()
    saved_dtypes = sorted({str(v.dtype) for v in state_dict.values()})
    model_dtypes = sorted({str(v.dtype) for v in loaded.values()})
    rounding = max(float((loaded[k].detach().double().cpu() - v.detach().double().cpu()).abs().max())
                   for k, v in state_dict.items())
    return {"saved_dtypes": saved_dtypes, "model_dtypes": model_dtypes, "max_abs_rounding": rounding}


# ----------------------------------------------------------------------------------------------------
# Integrity: a checkpoint's hash, recorded and verified


def sha256_file(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks (checkpoints can be larger than memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256(path: str | os.PathLike[str]) -> Path:
    """Record ``path``'s hash next to it as ``<path>.sha256``, in ``sha256sum``'s format (``sha256sum -c``
    checks it). Returns the hash file."""
    p = Path(path)
    out = p.with_name(p.name + ".sha256")
    out.write_text(f"{sha256_file(p)}  {p.name}\n", encoding="utf-8")
    return out


def verify_sha256(path: str | os.PathLike[str], expected: str | None = None) -> str:
    """The file's hash when it equals ``expected`` (default: the one ``write_sha256`` recorded next to it);
    ValueError naming both hashes otherwise, FileNotFoundError when nothing was recorded."""
    p = Path(path)
    if expected is None:
        record = p.with_name(p.name + ".sha256")
        if not record.is_file():
            raise FileNotFoundError(f"no recorded hash for {p} ({record} is missing): pass expected=")
        expected = record.read_text(encoding="utf-8").split()[0]
    actual = sha256_file(p)
    if actual != expected.strip().lower():
        raise ValueError(f"{p} does not match its recorded SHA-256: expected {expected}, got {actual} "
                         f"(truncated, corrupted or replaced): refusing to load it")
    return actual


def load_verified(path: str | os.PathLike[str], expected: str | None = None, *,
                  map_location: str | torch.device = "cpu") -> Any:
    """``verify_sha256`` first, then ``torch.load(path, map_location=..., weights_only=True)`` (safetensors
    files are read with ``load_safetensors``)."""
    verify_sha256(path, expected)
    if Path(path).suffix == ".safetensors":
        return load_safetensors(path, device=str(map_location))
    return torch.load(path, map_location=map_location, weights_only=True)
