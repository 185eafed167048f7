"""Eager, ``torch.compile`` and ``torch.export`` side by side: what each captures, and what it costs.

- ``autograd_graph_size`` counts the backward graph eager mode recorded for one output: eager builds a
  new graph on every call, shaped by the Python that ran.
- ``run_modes`` times one model's forward pass in the three modes: the first call (which includes the
  compilation or the export) and the steady-state milliseconds per call, and checks that the outputs
  agree with eager.
- ``graph_breaks`` asks Dynamo (``torch._dynamo.explain``) how many graphs a function splits into.
- ``count_compilations`` counts how often Dynamo (re)captures a function over a series of inputs.
- ``export_failure`` runs a ``torch.export`` that is expected to fail and returns the error with the
  partial graph torch had traced when it stopped (torch prints that graph to stderr; this keeps it).
- ``inductor_cache_stats`` tells whether a compile hit Inductor's on-disk cache (a warm cache makes the
  "compile time" much shorter than a cold one).

Used by ``notebooks/04_graphs_attention_debugging.ipynb`` and ``bench/graphs.py``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

__all__ = ["MODES", "ExportFailure", "GraphBreaks", "ModeResult", "autograd_graph_size", "count_compilations",
           "export_failure", "graph_breaks", "inductor_cache_stats", "run_modes", "time_per_call"]

MODES = ("eager", "compile", "export")


@dataclass(frozen=True)
class ModeResult:
    """One execution mode. ``first_call_s``: building the callable plus its first call (for compile:
    Dynamo tracing and Inductor code generation; for export: tracing into an ExportedProgram).
    ``ms_per_call``: median of the timed calls after warm-up. ``max_abs_diff``: against eager's output."""

    mode: str
    first_call_s: float
    ms_per_call: float
    max_abs_diff: float


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list):
        return next(_first_tensor(o) for o in out if isinstance(o, torch.Tensor | tuple | list))
    raise TypeError(f"no tensor in the output: {type(out).__name__}")


def time_per_call(fn: Callable[..., Any], *args: Any, warmup: int = 3, iters: int = 20) -> float:
    """Median wall-clock milliseconds of ``fn(*args)`` over ``iters`` calls, after ``warmup`` calls."""
    if iters < 1 or warmup < 0:
        raise ValueError(f"iters must be >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _build(mode: str, model: nn.Module, args: tuple, compile_kwargs: dict) -> Callable[..., Any]:
    if mode == "eager":
        return model
    if mode == "compile":
        torch._dynamo.reset()  # forget earlier captures, so the first call really compiles
        return torch.compile(model, **compile_kwargs)
    if mode == "export":
        return torch.export.export(model, args).module()
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def run_modes(model: nn.Module, args: Sequence[Any], *, modes: Sequence[str] = MODES, warmup: int = 3,
              iters: int = 20, compile_kwargs: dict | None = None) -> list[ModeResult]:
    """Time ``model(*args)`` (inference, no grad, eval mode) in each of ``modes``."""
    args = tuple(args)
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    model.eval()
    with torch.no_grad():
        reference = _first_tensor(model(*args))
    results = []
    for mode in modes:
        start = time.perf_counter()
        fn = _build(mode, model, args, compile_kwargs or {})
        with torch.no_grad():
            out = _first_tensor(fn(*args))
            first = time.perf_counter() - start
            ms = time_per_call(fn, *args, warmup=warmup, iters=iters)
        results.append(ModeResult(mode, first, ms, float((out - reference).abs().max())))
    return results


@dataclass(frozen=True)
class GraphBreaks:
    """What ``torch._dynamo.explain`` found: ``graph_count`` graphs separated by ``break_count`` breaks
    (back to Python in between); ``reasons`` says why each break happened."""

    graph_count: int
    break_count: int
    reasons: list[str]


def graph_breaks(fn: Callable[..., Any], *args: Any) -> GraphBreaks:
    """Capture ``fn(*args)`` with Dynamo (no code generation) and report its graph breaks."""
    torch._dynamo.reset()
    explained = torch._dynamo.explain(fn)(*args)
    reasons = [str(getattr(b, "reason", b)).strip().splitlines()[0] for b in explained.break_reasons]
    return GraphBreaks(explained.graph_count, explained.graph_break_count, reasons)


def count_compilations(fn: Callable[..., Any], inputs: Sequence[tuple]) -> int:
    """How many times Dynamo captures ``fn`` while it is called on each argument tuple of ``inputs``.

    A capture is guarded (on shapes, dtypes, Python values); a call that breaks a guard recompiles.
    The backend only counts (no code generation), so this is cheap.
    """
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(fn, backend=counter)
    for args in inputs:
        compiled(*args)
    return counter.frame_count


@dataclass(frozen=True)
class ExportFailure:
    """A ``torch.export.export`` that failed: the exception, and ``partial_graph`` (the FX code torch had
    traced before it stopped, ``""`` when it had none). ``ops`` lists the graph's ATen calls in order;
    ``excerpt(n)`` is its first ``n`` lines and how many it has."""

    error: Exception
    partial_graph: str

    @property
    def ops(self) -> list[str]:
        """The ``torch.ops.aten.*`` calls of the partial graph, in order (``"aten.sum.default"``)."""
        return re.findall(r"torch\.ops\.(aten\.[\w.]+)\(", self.partial_graph)

    def excerpt(self, n: int = 6) -> str:
        """The first ``n`` non-blank lines of the partial graph, then how many lines were left out."""
        lines = [line.rstrip() for line in self.partial_graph.splitlines() if line.strip()]
        shown = lines[:n]
        if len(lines) > n:
            shown.append(f"    ... ({len(lines) - n} more of {len(lines)} lines)")
        return "\n".join(shown)


def export_failure(module: nn.Module, args: tuple, **kwargs: Any) -> ExportFailure | None:
    """``torch.export.export(module, args, **kwargs)``, expected to fail: None if it succeeds, else the
    error and the partial graph. torch prints that graph to stderr (twice, once per wrapper) and warns
    from ``symbolic_shapes``; both are captured here instead of reaching the notebook as a wall of code."""
    stderr = io.StringIO()
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(stderr):
            torch.export.export(module, args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any export error is the result
        partial = getattr(error, "partial_fx_graph", None)
        return ExportFailure(error, str(partial).strip() if partial is not None else "")
    finally:
        shapes_log.setLevel(level)
    return None


def inductor_cache_stats() -> dict[str, int]:
    """Inductor's FX-graph cache hits and misses so far in this process."""
    from torch._dynamo.utils import counters

    return {"hits": int(counters["inductor"]["fxgraph_cache_hit"]),
            "misses": int(counters["inductor"]["fxgraph_cache_miss"])}


def autograd_graph_size(output: torch.Tensor) -> int:
    """Number of backward nodes recorded behind ``output`` (0 for a tensor without ``grad_fn``)."""
    seen: set[int] = set()
    stack = [output.grad_fn] if output.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return len(seen)
