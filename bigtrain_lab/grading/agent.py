"""The grader's agent inside a learner's kernel: it calls the learner's function on inputs the grader sent
and writes back what came out, as data. It computes no verdict and knows no expected value.

The grader sends this file, ``wire.py`` and ``probe.py`` as source text (``remote.agent_code``) after the
notebook ran, so that what the notebook did to the installed ``bigtrain_lab`` (patched, replaced) does
not change the agent. It runs them in fresh module objects, with ``wire`` and ``probe`` injected here.

A request (a wire blob written by the grader) is ``{"op": "call" | "probe", "target": ..., "args": [...],
"kwargs": {...}, "name": probe operation}``; ``target`` is ``{"expr": source}`` (the expression the
notebook passed to ``check``, evaluated in the notebook's namespace) or ``{"handle": n}`` (an object an
earlier call returned that is not data: it stays here and the grader gets its number). Arguments the
wire cannot carry (functions and models the exercise hands to the candidate) come as ``case_arg``
references: the agent draws the same case from the exercise's spec with the seed the grader sends.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import numpy as np
import torch

wire: Any = None  # injected by the grader's harness
probe: Any = None
AGENT_FILE = "<bigtrain-grader>"

_handles: dict[int, Any] = {}
_case_cache: dict[tuple[str, int], list] = {}


def _case_arg(state: dict) -> Any:
    """An argument of case ``case`` of ``exercise`` drawn with ``seed``, at ``path`` inside (args, kwargs)."""
    from bigtrain_lab.grading.registry import get_exercise

    key = (str(state["exercise"]), int(state["seed"]))
    if key not in _case_cache:
        _case_cache.clear()
        _case_cache[key] = get_exercise(key[0]).make_cases(np.random.default_rng(key[1]))
    case = _case_cache[key][int(state["case"])]
    value: Any = (case.args, case.kwargs)
    for step in state["path"]:
        value = value[step]
    return value


def _kinds() -> dict:
    return {**wire.MODULE_KINDS, "case_arg": _case_arg}


def _target(spec: dict, namespace: dict) -> Any:
    if "handle" in spec:
        return _handles[int(spec["handle"])]
    return eval(str(spec["expr"]), namespace)  # noqa: S307 - the learner's own expression, in their kernel


def _snapshot(value: Any, depth: int = 0) -> Any:
    """A copy of everything in ``value`` a call could change in place (to tell the grader it did)."""
    if depth > 20:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list | tuple):
        return [_snapshot(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _snapshot(v, depth + 1) for k, v in value.items()}
    if isinstance(value, torch.nn.Module):
        return {k: v.detach().clone() for k, v in value.state_dict().items()}
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype
                and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is None and b is None


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(AGENT_FILE)]
    if not frames:
        return ""
    f = frames[-1]
    line = f" -> {f.line.strip()}" if f.line else ""
    return f"line {f.lineno} in {f.name}(){line}"


def _error(exc: BaseException) -> dict:
    try:
        message = str(exc)[:500]
    except BaseException:  # noqa: BLE001 - a learner's exception whose str() raises
        message = "(the exception's message could not be read)"
    return {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
            "message": message, "where": _where(exc)}


def _respond(result: Any) -> dict:
    # checked here, written once by ``serve``; a container's unsendable parts travel as placeholders
    for strict in (True, False) if type(result) in (list, tuple, dict) else (True,):
        try:
            wire.check_sendable(result, strict=strict)
            return {"kind": "data", "value": result}
        except BaseException:  # noqa: BLE001 - not data, or a value whose methods raise while being read
            pass
    handle = len(_handles) + 1
    _handles[handle] = result
    try:
        text = repr(result)[:200]
    except BaseException:  # noqa: BLE001
        text = "(repr failed)"
    return {"kind": "handle", "handle": handle, "type": type(result).__qualname__, "repr": text}


def handle_request(request: dict, namespace: dict) -> dict:
    """Run one request; never raises (the candidate's exception is part of the answer)."""
    args, kwargs = list(request.get("args", [])), dict(request.get("kwargs", {}))
    before = _snapshot((args, kwargs))
    try:
        target = _target(request["target"], namespace)
        if request["op"] == "probe":
            result = probe.OPERATIONS[str(request["name"])](target, *args)
        else:
            result = target(*args, **kwargs)
        answer = {"ok": True, **_respond(result)}
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... are the candidate's
        answer = {"ok": False, "error": _error(exc)}
    answer["mutated"] = not _same(before, _snapshot((args, kwargs)))
    return answer


def serve(request_path: str, response_path: str, namespace: dict) -> None:
    """Read a request blob, answer it, and write the answer blob atomically."""
    import os

    limit = sys.getrecursionlimit()
    try:
        with open(request_path, "rb") as f:
            request = wire.decode(f.read(), _kinds())
        answer = handle_request(request, namespace)
    except BaseException as exc:  # noqa: BLE001 - even a broken request gets an answer
        answer = {"ok": False, "error": _error(exc), "mutated": False, "agent_error": True}
    finally:
        sys.setrecursionlimit(limit)
    tmp = response_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(wire.encode(answer))
    os.replace(tmp, response_path)
