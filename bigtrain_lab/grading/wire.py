"""A data-only codec between the grader and a learner's kernel: nothing sent either way is ever unpickled.

A value becomes one ``.npz`` blob: a JSON manifest (the structure: None, bools, numbers, strings, bytes, lists,
tuples, dicts with string keys) whose array leaves name entries of the archive, read back with
``np.load(allow_pickle=False)``. Tensors travel as their NumPy values plus a dtype tag (bfloat16 as its
exact float32 values). A few objects travel as *kinds*: a name and data-only state, rebuilt on the other
side only by the functions the reader allows (``rebuild``); nothing else can be reconstructed. A value
the writer cannot express travels as an ``Opaque`` placeholder (its type and repr), so that the grader
can say "returned a Foo" instead of failing.

This module is also sent, as source text, into the learner's kernel by the grader (see ``agent.py``):
it imports only the standard library, NumPy and torch.
"""

from __future__ import annotations

import functools
import io
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

MANIFEST = "__manifest__"
MAX_BYTES = 256 * 2**20  # a blob larger than this is refused (a runaway output, not an answer)


class WireError(ValueError):
    """A value that cannot be sent, or a blob that is not a valid message."""


class Opaque:
    """Stands for a value the sender could not express as data: its type name and a short repr."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>"


#: to_wire hooks: an object's class -> (kind, data-only state). Filled by ``register_kind``.
_ENCODERS: dict[type, Callable[[Any], tuple[str, Any]]] = {}


def register_kind(cls: type, encode: Callable[[Any], tuple[str, Any]]) -> None:
    """Let instances of exactly ``cls`` travel as ``(kind, state)`` (the reader rebuilds them by kind)."""
    _ENCODERS[cls] = encode


def _linear_state(m: torch.nn.Linear) -> tuple[str, Any]:
    return "Linear", {"weight": m.weight, "bias": m.bias}


def _sequential_state(m: torch.nn.Sequential) -> tuple[str, Any]:
    return "Sequential", list(m)


register_kind(torch.nn.Linear, _linear_state)
register_kind(torch.nn.Sequential, _sequential_state)
for _cls in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Identity, torch.nn.Sigmoid, torch.nn.GELU):
    register_kind(_cls, lambda m: (type(m).__name__, None))


def _float(x: float) -> Any:
    return x if math.isfinite(x) else {"t": "float", "v": repr(x)}


#: fallback(obj) -> (kind, state) or None: how a writer sends an object it has no encoder for.
Fallback = Callable[[Any], "tuple[str, Any] | None"]


class _Writer:
    def __init__(self, strict: bool, fallback: Fallback | None = None) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.strict, self.fallback = strict, fallback

    def array(self, a: np.ndarray) -> str:
        if a.dtype.hasobject:
            raise WireError("an array of Python objects cannot be sent")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        return key

    def node(self, v: Any, depth: int = 0) -> Any:
        if depth > 50:
            raise WireError("value nested more than 50 levels deep")
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is bytes:
            return {"t": "bytes", "v": v.hex()}
        if t is int:
            return v if abs(v) < 2**53 else {"t": "int", "v": str(v)}
        if t is float:
            return _float(v)
        if t is list:
            return [self.node(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": "tuple", "v": [self.node(x, depth + 1) for x in v]}
        if t is dict:
            if not all(type(k) is str for k in v):
                raise WireError("dict keys must be strings")
            return {"t": "dict", "v": {k: self.node(x, depth + 1) for k, x in v.items()}}
        if t is np.ndarray:
            return {"t": "nd", "k": self.array(v)}
        if isinstance(v, np.generic) and t.__module__ == "numpy":
            return {"t": "np", "k": self.array(np.asarray(v))}
        if t in (torch.Tensor, torch.nn.Parameter):
            return self.tensor(v)
        if t in _ENCODERS:
            kind, state = _ENCODERS[t](v)
            return {"t": "obj", "kind": kind, "v": self.node(state, depth + 1)}
        hook = getattr(t, "__wire__", None)
        if hook is not None and getattr(t, "__module__", "").startswith("bigtrain_lab."):
            kind, state = v.__wire__()
            return {"t": "obj", "kind": kind, "v": self.node(state, depth + 1)}
        if self.fallback is not None and (found := self.fallback(v)) is not None:
            return {"t": "obj", "kind": found[0], "v": self.node(found[1], depth + 1)}
        if self.strict:
            raise WireError(f"a {t.__name__} cannot be sent as data")
        try:
            text = repr(v)[:200]
        except BaseException:  # noqa: BLE001 - a repr that raises still gets a placeholder
            text = "(repr failed)"
        return {"t": "opaque", "type": str(getattr(t, "__qualname__", "?")), "v": str(text)}

    def tensor(self, v: torch.Tensor) -> Any:
        if v.is_sparse or v.is_quantized or v.is_complex() and v.dtype not in (torch.complex64, torch.complex128):
            raise WireError(f"a {v.layout} / {v.dtype} tensor cannot be sent")
        data = v.detach().cpu()
        dtype = str(data.dtype)
        if data.dtype == torch.bfloat16:
            data = data.float()  # exact
        return {"t": "tensor", "k": self.array(data.resolve_conj().numpy()), "dtype": dtype,
                "grad": bool(v.requires_grad), "param": type(v) is torch.nn.Parameter}


def check_sendable(value: Any, *, strict: bool = True) -> None:
    """Raise ``WireError`` where ``encode`` would (``strict``: also where it would send an ``Opaque``),
    without writing the blob."""
    _Writer(strict).node(value)


def encode(value: Any, *, strict: bool = False, fallback: Fallback | None = None) -> bytes:
    """One blob for ``value``; ``strict`` raises ``WireError`` where it would send an ``Opaque``;
    ``fallback`` may name a kind for an object no encoder knows (e.g. a reference the reader resolves)."""
    writer = _Writer(strict, fallback)
    manifest = writer.node(value)
    buf = io.BytesIO()
    arrays = dict(writer.arrays)
    arrays[MANIFEST] = np.frombuffer(json.dumps(manifest, allow_nan=False).encode(), dtype=np.uint8)
    np.savez(buf, **arrays)
    return buf.getvalue()


#: How the reader rebuilds each kind it allows: kind -> function(state) -> object.
Rebuilders = Mapping[str, Callable[[Any], Any]]


def _rebuild_linear(state: dict) -> torch.nn.Linear:
    weight, bias = state["weight"], state["bias"]
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or not weight.is_floating_point():
        raise WireError("a Linear's weight must be a 2-D floating-point tensor")
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.weight.requires_grad_(weight.requires_grad)
        if bias is not None:
            if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],):
                raise WireError("a Linear's bias must be a tensor of out_features values")
            layer.bias.copy_(bias)
            layer.bias.requires_grad_(bias.requires_grad)
    return layer


def _rebuild_sequential(state: list) -> torch.nn.Sequential:
    if not isinstance(state, list) or not all(isinstance(m, torch.nn.Module) for m in state):
        raise WireError("a Sequential holds modules")
    return torch.nn.Sequential(*state)


def _rebuild_activation(name: str, _state: Any) -> torch.nn.Module:
    return getattr(torch.nn, name)()


#: The kinds every reader may rebuild: standard layers, from their weights only.
MODULE_KINDS: dict[str, Callable[[Any], Any]] = {
    "Linear": _rebuild_linear,
    "Sequential": _rebuild_sequential,
    **{name: functools.partial(_rebuild_activation, name) for name in ("ReLU", "Tanh", "Identity", "Sigmoid", "GELU")},
}


_TORCH_DTYPES = {str(d): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8,
                                     torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
                                     torch.complex64, torch.complex128)}


class _Reader:
    def __init__(self, arrays: Mapping[str, np.ndarray], rebuild: Rebuilders) -> None:
        self.arrays, self.rebuild = arrays, rebuild

    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays or key == MANIFEST:
            raise WireError(f"the manifest names a missing array {key!r}")
        return self.arrays[key]

    def node(self, n: Any, depth: int = 0) -> Any:
        if depth > 60:
            raise WireError("message nested too deep")
        if n is None or isinstance(n, bool | int | float | str):
            return n
        if isinstance(n, list):
            return [self.node(x, depth + 1) for x in n]
        if not isinstance(n, dict):
            raise WireError("malformed manifest")
        t = n.get("t")
        if t == "tuple":
            return tuple(self.node(x, depth + 1) for x in n["v"])
        if t == "dict":
            return {str(k): self.node(x, depth + 1) for k, x in n["v"].items()}
        if t == "float":
            return float(n["v"])
        if t == "int":
            return int(n["v"])
        if t == "bytes":
            try:
                return bytes.fromhex(n["v"])
            except (TypeError, ValueError) as e:
                raise WireError("malformed bytes") from e
        if t == "nd":
            return self.array(n["k"]).copy()
        if t == "np":
            return self.array(n["k"])[()]
        if t == "tensor":
            return self.tensor(n)
        if t == "obj":
            kind = n.get("kind")
            if kind not in self.rebuild:
                return Opaque(str(kind), "(an object of a kind the grader does not rebuild)")
            return self.rebuild[kind](self.node(n["v"], depth + 1))
        if t == "opaque":
            return Opaque(str(n.get("type")), str(n.get("v")))
        raise WireError(f"unknown node type {t!r}")

    def tensor(self, n: dict) -> torch.Tensor:
        dtype = _TORCH_DTYPES.get(n.get("dtype"))
        if dtype is None:
            raise WireError(f"unsupported tensor dtype {n.get('dtype')!r}")
        t = torch.from_numpy(self.array(n["k"]).copy()).to(dtype)
        if n.get("param"):
            return torch.nn.Parameter(t, requires_grad=bool(n.get("grad")))
        return t.requires_grad_(bool(n.get("grad")) and t.is_floating_point())


def decode(blob: bytes, rebuild: Rebuilders | None = None) -> Any:
    """The value a blob holds; objects are rebuilt only by ``rebuild`` (default: standard layers)."""
    if len(blob) > MAX_BYTES:
        raise WireError(f"message of {len(blob) / 2**20:.0f} MiB is larger than the limit of "
                        f"{MAX_BYTES / 2**20:.0f} MiB")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise WireError(f"not a valid message ({type(exc).__name__}: {exc})") from None
    if MANIFEST not in arrays:
        raise WireError("message without a manifest")
    try:
        manifest = json.loads(arrays[MANIFEST].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"unreadable manifest ({exc})") from None
    try:
        return _Reader(arrays, MODULE_KINDS if rebuild is None else rebuild).node(manifest)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WireError(f"malformed message ({type(exc).__name__}: {exc})") from None
