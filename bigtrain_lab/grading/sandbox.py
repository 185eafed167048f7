"""Calling a learner's candidate safely: a time limit, a copy of the inputs, and mutation detection.

Nothing the candidate does (raise, hang, mutate its arguments) may surface as a traceback of the
checker: every outcome becomes a ``CallOutcome`` the checker turns into feedback. That includes the
exceptions that are not ``Exception``s -- ``SystemExit`` (``sys.exit()``, ``exit()``),
a ``KeyboardInterrupt`` or ``GeneratorExit`` raised by the candidate's own code, a class derived from
``BaseException`` -- and ``RecursionError``. Only two things still stop a check: the checker's own
``CandidateTimeout`` (turned into a time-out) and a ``KeyboardInterrupt`` that really came from the
learner (the notebook's stop button, Ctrl-C), which stops the check as it stops any cell.

What a candidate returns is compared as *data* (``plain``): the comparators never call a method of an
object the candidate made, so an object whose ``__eq__``, ``__bool__``, ``__array__``, ``__float__``,
``__len__``, ``__iter__`` or ``__repr__`` lies or raises can neither crash the checker nor pass for a
right answer (``compare_safely``, ``describe``).
"""

from __future__ import annotations

import copy
import decimal
import fractions
import functools
import signal
import sys
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


#: A candidate's own BaseException (not an Exception): what it means, said in the feedback.
_STOPPERS = {
    SystemExit: "sys.exit() / exit() was called: in a notebook it would stop the whole cell; return the "
                "answer instead",
    KeyboardInterrupt: "raised by the function's own code (not by the stop button); nothing in it should "
                       "raise KeyboardInterrupt",
    GeneratorExit: "GeneratorExit escaped the function (raised by hand, or a generator closed while it was "
                   "being consumed); it must never leave a function",
}


def _as_error(exc: BaseException) -> BaseException:
    """``exc`` ready to be shown: a stopper's message says what it means; an unreadable or huge message
    is replaced (``str(exc)`` is what the checker prints, and a candidate's class may break it)."""
    for kind, meaning in _STOPPERS.items():
        if type(exc) is kind:
            detail = f" (code {exc.code!r})" if isinstance(exc, SystemExit) and exc.code is not None else ""
            exc.args = (f"{meaning}{detail}",)
            return exc
    try:
        text = str(exc)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")
    except BaseException:  # noqa: BLE001 - a candidate's exception whose __str__ raises
        return _error_type(_type_name(exc))("(its message could not be read)")
    if len(text) > 2000:
        try:
            exc.args = (text[:2000] + "...",)
            if len(str(exc)) > 2000:
                raise TypeError
        except BaseException:  # noqa: BLE001
            return _error_type(_type_name(exc))(f"{text[:2000]}...")
    return exc


class CandidateError(Exception):
    """Stands for an exception of the candidate that could not be shown as it was (its class is named
    after the original one)."""


@functools.lru_cache(maxsize=256)
def _error_type(name: str) -> type[CandidateError]:
    return type(name, (CandidateError,), {"__module__": __name__})


@dataclass
class _GlobalState:
    """Interpreter-wide settings a candidate may change; put back after every call so that the checker
    (and the next case) runs as before: the recursion limit, grad mode, torch's default dtype, NumPy's
    floating-point error handling."""

    recursion_limit: int
    grad_enabled: bool
    default_dtype: torch.dtype
    np_err: dict

    @classmethod
    def save(cls) -> _GlobalState:
        return cls(sys.getrecursionlimit(), torch.is_grad_enabled(), torch.get_default_dtype(), np.geterr())

    def restore(self) -> None:
        sys.setrecursionlimit(self.recursion_limit)
        torch.set_grad_enabled(self.grad_enabled)
        torch.set_default_dtype(self.default_dtype)
        np.seterr(**self.np_err)


def _call_on_main_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> CallOutcome:
    active = [True]
    interrupted = [False]

    def on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        if active[0]:
            raise CandidateTimeout

    previous_int = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        # The learner pressed stop: remember it, so that this KeyboardInterrupt stops the check instead of
        # counting as the candidate's own.
        interrupted[0] = True
        if callable(previous_int):
            previous_int(signum, frame)
        elif previous_int != signal.SIG_IGN:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, on_interrupt)
    state = _GlobalState.save()
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            value = fn(*args, **kwargs)
        finally:
            active[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return CallOutcome(value=value, seconds=time.perf_counter() - start)
    except CandidateTimeout:
        return CallOutcome(timed_out=True, seconds=time.perf_counter() - start)
    except BaseException as exc:  # the candidate's own error (any kind), reported as feedback
        if isinstance(exc, KeyboardInterrupt) and interrupted[0]:
            raise
        return CallOutcome(error=_as_error(exc), error_location=_candidate_frame(exc),
                           seconds=time.perf_counter() - start)
    finally:
        active[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGINT, previous_int)
        state.restore()


def _call_on_worker_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> CallOutcome:
    # Off the main thread signals are unavailable: run in a daemon thread and stop waiting at the
    # limit (the thread cannot be killed, but the checker moves on and says so).
    box: dict[str, CallOutcome] = {}

    def target() -> None:
        start = time.perf_counter()
        try:
            box["out"] = CallOutcome(value=fn(*args, **kwargs), seconds=time.perf_counter() - start)
        except BaseException as exc:  # noqa: BLE001 - any kind: no signal reaches this thread
            box["out"] = CallOutcome(error=_as_error(exc), error_location=_candidate_frame(exc),
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


# ---- what a candidate returned, as data -----------------------------------------------------------

#: Exact types taken as they are: their methods are Python's, NumPy's or the standard library's own.
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, fractions.Fraction, decimal.Decimal)
#: Built-in scalar types whose subclasses are read through the built-in type (their stored value).
_BUILTIN_BASES = (bool, int, float, complex, str, bytes)
_MAX_DEPTH = 64


class Unreadable:
    """Stands, in a value handed to a comparator, for an object that is not plain data (see ``plain``).

    It has no numeric, container or comparison behaviour, so no comparator can take it for a number,
    an array or a tuple; its class is named after the original type, so that messages such as
    "expected a number, got Foo" still say what was returned."""

    type_name = "object"

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=512)
def _unreadable_type(name: str) -> type[Unreadable]:
    return type(name, (Unreadable,), {"__module__": __name__, "type_name": name})


def _type_name(value: Any) -> str:
    try:
        name = type(value).__name__
        return name if isinstance(name, str) and type(name) is str else "object"
    except BaseException:  # noqa: BLE001 - a metaclass whose __name__ raises
        return "object"


def _unreadable(value: Any, why: str = "") -> Unreadable:
    name = _type_name(value)
    shown = None if why else _guarded_repr(value, 120)
    return _unreadable_type(name)(shown if shown is not None else f"<{name} object{': ' + why if why else ''}>")


def _plain_tensor(value: torch.Tensor) -> torch.Tensor:
    if type(value) is torch.Tensor:
        return value.detach()
    with torch._C.DisableTorchFunctionSubclass():  # the subclass's __torch_function__ is not consulted
        return torch.Tensor.as_subclass(value, torch.Tensor).detach()


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data, the way the checker compares a candidate's output.

    What is accepted, and how it is read (never through a method the candidate's classes may override):

    - ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``Fraction``, ``Decimal``
      and NumPy's own scalar types, as they are; a *subclass* of a built-in scalar type by its stored
      value (``float.__float__`` etc.), so a float subclass whose ``__eq__`` or ``__float__`` lies is
      judged by the number it holds;
    - ``numpy.ndarray`` and its subclasses (``np.matrix``, masked arrays: the mask is dropped) as a plain
      ndarray over the same data; object arrays element by element;
    - ``torch.Tensor`` and its subclasses (``nn.Parameter``, a subclass with ``__torch_function__``) as a
      plain, detached tensor over the same data;
    - ``tuple``, ``list``, ``dict`` and their subclasses (namedtuples, ``torch.Size``) as exact tuples,
      lists, dicts of plain items, read with the built-in types' own methods;
    - the checker's own objects (types defined in ``bigtrain_lab``), as they are.

    Anything else -- including an object whose ``__array__`` or ``__float__`` would give the right numbers
    -- becomes an ``Unreadable`` placeholder, which every comparator rejects as the wrong kind. So does a
    structure nested deeper than 64 levels (or containing itself). Never raises: a value that cannot be
    read becomes a placeholder too.
    """
    try:
        return _plain(value, depth)
    except CandidateTimeout:
        raise
    except BaseException as exc:  # noqa: BLE001 - reading a candidate's object may raise anything
        return _unreadable(value, f"could not be read ({_type_name(exc)})")


def _plain(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if depth > _MAX_DEPTH:
        return _unreadable(value, "nested too deeply")
    if issubclass(kind, np.generic):
        if kind.__module__ == "numpy":
            return value
        return _unreadable(value)
    if issubclass(kind, torch.Tensor):
        return _plain_tensor(value)
    if issubclass(kind, np.ndarray):
        array = value if kind is np.ndarray else np.ndarray.view(value, np.ndarray)
        if array.dtype.kind != "O":
            return array
        items = [plain(v, depth + 1) for v in np.ndarray.tolist(array.reshape(-1))]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(array.shape)
    if issubclass(kind, tuple):
        return tuple(plain(v, depth + 1) for v in tuple.__getitem__(value, slice(None)))
    if issubclass(kind, list):
        return [plain(v, depth + 1) for v in list.copy(value)]
    if issubclass(kind, dict):
        return {plain(k, depth + 1): plain(v, depth + 1) for k, v in dict.items(value)}
    if _is_checkers_own(kind):
        return value
    if issubclass(kind, _BUILTIN_BASES):
        return _builtin_value(value)
    return _unreadable(value)


def _is_checkers_own(kind: type) -> bool:
    module = kind.__dict__.get("__module__", "")
    return type(module) is str and (module == "bigtrain_lab" or module.startswith("bigtrain_lab."))


def _builtin_value(value: Any) -> Any:
    """The value a subclass of a built-in scalar type stores, read with the built-in type's own method."""
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, complex):
        return complex(complex.real.__get__(value), complex.imag.__get__(value))
    if isinstance(value, str):
        return str.__str__(value)
    return bytes.__getitem__(value, slice(None))


def _guarded_repr(value: Any, limit: int) -> str | None:
    """``repr(value)`` cut to ``limit`` characters, or None when it raises or is not a string."""
    try:
        text = repr(value)
    except CandidateTimeout:
        raise
    except BaseException:  # noqa: BLE001 - a candidate's __repr__ may raise anything
        return None
    if type(text) is not str:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any, limit: int = 300) -> str:
    """A short, readable rendering of a value for feedback (arrays summarised when large).

    Never raises and never recurses without end: tensors and arrays are rendered from their data
    (``plain``), containers to a bounded depth, other objects by their ``repr`` when it works (a lying
    ``__repr__`` can only mislead what is shown, never the verdict) and else by their type."""
    try:
        text = _describe(value, limit, 0)
    except CandidateTimeout:
        raise
    except BaseException:  # noqa: BLE001 - e.g. a RecursionError inside a third-party repr
        text = f"<{_type_name(value)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any, limit: int, depth: int) -> str:
    kind = type(value)
    if depth > 8:
        return "..."
    if issubclass(kind, torch.Tensor):
        value = _plain_tensor(value).cpu()
        try:
            data = value.numpy()
        except TypeError:  # bfloat16, float8: no NumPy dtype
            data = value.to(torch.float32).numpy()
        body = np.array2string(data, threshold=20, edgeitems=4, precision=6)
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}) {body}"
    if issubclass(kind, np.ndarray):
        value = plain(value)
        body = np.array2string(value, threshold=20, edgeitems=4, precision=6)
        return f"array(shape={value.shape}, dtype={value.dtype}) {body}"
    if issubclass(kind, tuple | list):
        items = tuple.__getitem__(value, slice(None)) if issubclass(kind, tuple) else list.copy(value)
        parts, size = [], 0
        for v in items:
            parts.append(_describe(v, limit, depth + 1))
            size += len(parts[-1]) + 2
            if size > limit:
                parts.append("...")
                break
        inner = ", ".join(parts)
        return f"({inner})" if issubclass(kind, tuple) else f"[{inner}]"
    if kind is float or (issubclass(kind, np.floating) and kind.__module__ == "numpy"):
        return repr(float(value))
    if kind in _PLAIN_SCALARS or (issubclass(kind, np.generic) and kind.__module__ == "numpy"):
        return repr(value)
    if issubclass(kind, _BUILTIN_BASES) and not _is_checkers_own(kind):
        return _describe(_builtin_value(value), limit, depth)
    shown = _guarded_repr(value, limit)
    return shown if shown is not None else f"<{_type_name(value)} object>"


#: Seconds a comparison (or a rendering) of a returned value may take before it counts as failed.
COMPARE_TIME_LIMIT = 10.0


def compare_safely(compare: Callable[[Any, Any], str | None], got: Any, expected: Any,
                   limit: float = COMPARE_TIME_LIMIT) -> str | None:
    """``compare(plain(got), expected)``: None when right, else the reason. A comparison that raises or
    takes longer than ``limit`` seconds (a returned object that lies, a comparator that trips over an odd
    value) is a failed case, never an exception of the checker."""
    outcome = call_with_limit(lambda: compare(plain(got), expected), (), {}, limit)
    if outcome.timed_out:
        return f"returned a value that could not be compared (comparing it took longer than {limit:g} s)"
    if outcome.error is not None:
        err = outcome.error
        try:
            message = f"{type(err).__name__}: {err}"
        except BaseException:  # noqa: BLE001
            message = type(err).__name__
        return f"returned a value that could not be compared ({message[:300]})"
    reason = outcome.value
    if reason is None:
        return None
    return reason if type(reason) is str else describe(reason)


def describe_safely(value: Any, limit: int = 300, time_limit: float = COMPARE_TIME_LIMIT) -> str:
    """``describe(value)`` within ``time_limit`` seconds (a candidate's ``__repr__`` may hang)."""
    outcome = call_with_limit(describe, (value, limit), {}, time_limit)
    if outcome.value is None or type(outcome.value) is not str:
        return f"<{_type_name(value)} object (could not be shown)>"
    return outcome.value
