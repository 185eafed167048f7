"""Calling a learner's candidate safely: a time limit, a copy of the inputs, and mutation detection.

Nothing the candidate does (raise, hang, mutate its arguments) may surface as a traceback of the
checker: every outcome becomes a ``CallOutcome`` the checker turns into feedback.
"""

from __future__ import annotations

import copy
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class CandidateTimeout(BaseException):
    """Raised inside the candidate when its time limit expires (a BaseException so that a
    candidate's own ``except Exception`` cannot swallow it)."""


@dataclass
class CallOutcome:
    """What one call of the candidate gave: a value, an exception, or a time-out."""

    value: Any = None
    error: BaseException | None = None
    error_location: str = ""
    timed_out: bool = False
    seconds: float = 0.0


def _candidate_frame(exc: BaseException) -> str:
    """The innermost traceback frame outside this package: where the candidate's code failed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "bigtrain_lab/grading" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    line = f" -> {f.line.strip()}" if f.line else ""
    return f"line {f.lineno} in {f.name}(){line}"


def _call_on_main_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> CallOutcome:
    def on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise CandidateTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            value = fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return CallOutcome(value=value, seconds=time.perf_counter() - start)
    except CandidateTimeout:
        return CallOutcome(timed_out=True, seconds=time.perf_counter() - start)
    except Exception as exc:  # the candidate's own error, reported as feedback
        return CallOutcome(error=exc, error_location=_candidate_frame(exc), seconds=time.perf_counter() - start)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _call_on_worker_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> CallOutcome:
    # Off the main thread signals are unavailable: run in a daemon thread and stop waiting at the
    # limit (the thread cannot be killed, but the checker moves on and says so).
    box: dict[str, CallOutcome] = {}

    def target() -> None:
        start = time.perf_counter()
        try:
            box["out"] = CallOutcome(value=fn(*args, **kwargs), seconds=time.perf_counter() - start)
        except Exception as exc:
            box["out"] = CallOutcome(error=exc, error_location=_candidate_frame(exc),
                                     seconds=time.perf_counter() - start)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit)
    return box.get("out") or CallOutcome(timed_out=True, seconds=limit)


def call_with_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> CallOutcome:
    """Call ``fn(*args, **kwargs)`` with a wall-clock limit in seconds."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _call_on_main_thread(fn, args, kwargs, limit)
    return _call_on_worker_thread(fn, args, kwargs, limit)


def clone_inputs(value: Any) -> Any:
    """A deep copy of the inputs (tensors cloned, arrays copied) so the original stays pristine."""
    return copy.deepcopy(value)


def same_value(a: Any, b: Any) -> bool:
    """Exact structural equality used to detect mutated inputs (NaN equals NaN)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and bool(torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
                and bool(torch.equal(a.isnan(), b.isnan())))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a == b) or (a != a and b != b)  # noqa: PLR0124 - NaN check
    except Exception:
        return a is b


def describe(value: Any, limit: int = 300) -> str:
    """A short, readable rendering of a value for feedback (arrays summarised when large)."""
    if isinstance(value, torch.Tensor):
        body = np.array2string(value.detach().cpu().numpy(), threshold=20, edgeitems=4, precision=6)
        text = f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}) {body}"
    elif isinstance(value, np.ndarray):
        body = np.array2string(value, threshold=20, edgeitems=4, precision=6)
        text = f"array(shape={value.shape}, dtype={value.dtype}) {body}"
    elif isinstance(value, tuple | list):
        inner = ", ".join(describe(v, limit) for v in value)
        text = f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    elif isinstance(value, float | np.floating):
        text = repr(float(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
