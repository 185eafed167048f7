"""Export a trained model to ONNX and compare inference engines on the same held-out set.

Lesson 13 (``notebooks/13_saving_and_export.ipynb``), "export". ``export_onnx`` uses the torch.export-based
exporter (``torch.onnx.export(..., dynamo=True)``) with a symbolic batch dimension, so one file serves any
batch size; ``ort_session`` / ``ort_predict`` run it in onnxruntime; ``max_abs_diff_vs_eager`` checks it
against the PyTorch model. ``ONNX_ATOL`` (1e-4) is the tolerance the tests hold fp32 exports to on the
digits MLP and the kit's small CNN: the same float32 arithmetic summed in another order differs by a few
units in the last place, and these logits reach about 35 in magnitude, where float32's spacing is 3.8e-6
(measured: up to about 1e-5 over the digits test set).

Int8: ``quantize_onnx_dynamic`` (onnxruntime's dynamic quantization: int8 weights, activations quantized
to uint8 per batch on the fly) and torchao's ``Int8DynamicActivationInt8WeightConfig`` through the
compression lesson's ``bigtrain_lab.compress.quantization.int8_dynamic``. ``latency_table`` times every
engine on one model: eager, ``torch.compile``, onnxruntime fp32 and int8, torchao int8 (and torchao int8
compiled with freezing, its fast CPU path, when ``compile``) with size on disk and agreement with eager.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.benchmark import Timer

from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.models import MLP

if TYPE_CHECKING:
    from bigtrain_lab.compress.digits import Digits

__all__ = ["ENGINES", "ONNX_ATOL", "export_onnx", "latency_table", "max_abs_diff_vs_eager", "ort_predict",
           "ort_session", "quantize_onnx_dynamic", "train_digits_mlp"]

#: Tolerance of an fp32 ONNX export against eager PyTorch (max |difference| of the logits) in the tests: about
#: 25 float32 spacings at logits of magnitude 35 (the digits models' largest).
ONNX_ATOL = 1e-4

#: ``latency_table``'s engines, in order ("torchao int8 + compile" is added when ``compile``).
ENGINES = ("eager", "torch.compile", "onnxruntime fp32", "onnxruntime int8", "torchao int8")


class _ExportNoise(logging.Filter):
    """Drops the exporter's "torchvision is not installed. Skipping torchvision::nms" records (it registers
    torchvision's ops when it can; the kit does not install torchvision), onnxruntime's "Please consider
    to run pre-processing before quantization" hint (shape inference: the exporter's graph already has
    shapes) and torchao's "Detected no triton" (Triton is a GPU compiler; the CPU int8 path does not use it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("torchvision is not installed" in msg or "consider to run pre-processing" in msg
                    or (record.name == "torchao.kernel.intmm" and "Detected no triton" in msg))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    noise = _ExportNoise()
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx._internal.exporter._registration"),
               logging.getLogger("torchao.kernel.intmm")]
    for lg in loggers:
        lg.addFilter(noise)
    try:
        with warnings.catch_warnings():
            # torch's own pytree code, called by the exporter: "isinstance(treespec, LeafSpec) is deprecated"
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg in loggers:
            lg.removeFilter(noise)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str], *,
                dynamic_batch: bool = True, opset_version: int | None = None) -> Path:
    """Export ``model`` (eval mode) to one self-contained ``.onnx`` file with ``torch.onnx.export(...,
    dynamo=True)`` and check it with ``onnx.checker.check_model(full_check=True)``. Input ``"input"``,
    output ``"logits"``. ``dynamic_batch``: dimension 0 is a symbol (``torch.export.Dim("batch")``), so any
    batch size runs; an example batch of 1 is repeated to 2 rows first (torch.export specializes a size-1
    dimension to the constant 1). Returns the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = example_input.detach()
    if dynamic_batch and example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).contiguous()
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1 << 20)},) if dynamic_batch else None
    was_training = model.training
    model.eval()
    try:
        with _quiet():
            torch.onnx.export(model, (example,), path, dynamo=True, dynamic_shapes=dynamic_shapes,
                              input_names=["input"], output_names=["logits"], opset_version=opset_version,
                              external_data=False, verbose=False)
    finally:
        model.train(was_training)
    onnx.checker.check_model(os.fspath(path), full_check=True)
    return path


def ort_session(path: str | os.PathLike[str], *, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU with every graph optimization; ``threads``: its
    intra-op threads (None: onnxruntime's default, one per core). Warnings only (no info logging)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 2
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"])


def ort_predict(session: Any, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The session's first output for ``x`` (converted to a float32 array) fed to its first input."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]


@torch.no_grad()
def max_abs_diff_vs_eager(model: nn.Module, session: Any, inputs: torch.Tensor) -> float:
    """``max |onnxruntime(inputs) - model(inputs)|`` over every logit (``model`` in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        eager = model(inputs).float().numpy()
    finally:
        model.train(was_training)
    return float(np.abs(ort_predict(session, inputs) - eager).max())


def quantize_onnx_dynamic(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                          op_types: Sequence[str] = ("MatMul", "Gemm")) -> Path:
    """``onnxruntime.quantization.quantize_dynamic``: the weights of ``op_types`` nodes stored as int8
    (``QuantType.QInt8``, symmetric per tensor), activations quantized to uint8 per batch at run time (the
    U8S8 combination that onnxruntime's x86 CPU kernels support). Only MatMul / Gemm by default: dynamic
    quantization of a Conv becomes ConvInteger, which the CPU provider implements for uint8 weights only."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        quantize_dynamic(os.fspath(src), os.fspath(dst), op_types_to_quantize=list(op_types),
                         weight_type=QuantType.QInt8)
    return dst


def train_digits_mlp(*, hidden: Sequence[int] = (256, 256), epochs: int = 15, seed: int = 0
                     ) -> tuple[nn.Module, Digits]:
    """An MLP ``64 -> hidden -> 10`` trained on the digits (``bigtrain_lab.compress.load_digits``, pixels
    in [0, 1]) with AdamW, about 97 % test accuracy; about 1.5 s on one CPU core. Returns ``(model, data)``
    (the model in eval mode)."""
    from bigtrain_lab.compress.digits import load_digits

    data = load_digits(seed)
    torch.manual_seed(seed)
    model = MLP(64, hidden, 10)
    fit_classifier(model, data.X_train, data.y_train, epochs=epochs, lr=3e-3, seed=seed)
    return model.eval(), data


# ----------------------------------------------------------------------------------------------------
# The latency table


def _median_ms(fn: Callable[[Any], Any], x: Any, repeat_s: float, threads: int) -> float:
    """Median ms of ``fn(x)``: ``torch.utils.benchmark.Timer.blocked_autorange`` (the same loop for every
    engine: onnxruntime's session.run is timed as a Python call too)."""
    fn(x)  # warm-up: allocation, kernel choice
    timer = Timer(stmt="fn(x)", globals={"fn": fn, "x": x}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=repeat_s).median * 1e3


def _batch(X: torch.Tensor, size: int) -> torch.Tensor:
    return X[torch.arange(size) % len(X)]


def _padded_predict(fn: Callable[[torch.Tensor], np.ndarray], X: torch.Tensor, batch: int) -> np.ndarray:
    """``fn`` over ``X`` in batches of exactly ``batch`` rows (the last padded with zero rows, dropped after):
    a model compiled for that shape is evaluated without compiling another one."""
    out = []
    for start in range(0, len(X), batch):
        chunk = X[start:start + batch]
        n = len(chunk)
        if n < batch:
            chunk = torch.cat([chunk, chunk.new_zeros(batch - n, *chunk.shape[1:])])
        out.append(np.asarray(fn(chunk))[:n])
    return np.concatenate(out)


def _torch_fn(model: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], np.ndarray]:
    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return model(x).float().numpy()
    return run


def _torchao() -> Any:
    """The compression lesson's quantization module (int8_dynamic, compile_frozen), imported when needed."""
    from bigtrain_lab.compress import quantization

    return quantization


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:400] if text else ''}"


def latency_table(model: nn.Module | None = None, example_batch_sizes: Sequence[int] = (1, 64), *,
                  X_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None, compile: bool = True,
                  repeat_s: float = 0.2, threads: int = 1, tmp_dir: str | os.PathLike[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Every engine of ``ENGINES`` on ``model`` (default: ``train_digits_mlp()`` and its test split).

    One row per engine and batch size: ``engine``, ``batch_size``, ``median_ms`` (one forward pass,
    ``blocked_autorange`` for at least ``repeat_s`` s, ``threads`` intra-op threads, batches of held-out rows
    repeated to the size), ``file_bytes`` (eager, torch.compile, torchao: ``torch.save(state_dict)``;
    onnxruntime: the .onnx file), ``max_abs_diff`` and ``argmax_agreement`` against eager and ``accuracy``,
    all over the held-out set ``X_test`` / ``y_test``, ``compile_s`` (torch.compile rows: the first call
    at that batch size, which compiles; ``dynamic=False``, so each batch size gets its own kernels; the
    process's first compile also pays inductor's one-time start-up, and a graph compiled before on this
    machine comes from inductor's on-disk cache in a fraction of the time) and
    ``error`` (None, or why the engine could not run: its rows then have no timings). The torch.compile
    rows need a working C compiler; ``compile=False`` leaves them out (the fast run)."""
    sizes = [int(b) for b in example_batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"example_batch_sizes must be positive integers, got {example_batch_sizes!r}")
    if repeat_s <= 0:
        raise ValueError(f"repeat_s must be > 0, got {repeat_s!r}")
    if model is None:
        model, data = train_digits_mlp()
        X_test, y_test = data.X_test, data.y_test
    if X_test is None or y_test is None:
        raise ValueError("give X_test and y_test (a held-out set) with a model of your own")
    model.eval()
    eval_batch = max(sizes)
    with contextlib.ExitStack() as stack:
        folder = Path(tmp_dir) if tmp_dir is not None else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bigtrain-export-")))
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return _table(model, sizes, X_test, y_test, compile, repeat_s, threads, folder, eval_batch)
        finally:
            torch.set_num_threads(previous)


def _table(model: nn.Module, sizes: list[int], X_test: torch.Tensor, y_test: torch.Tensor, compile: bool,
           repeat_s: float, threads: int, folder: Path, eval_batch: int) -> list[dict[str, Any]]:
    from bigtrain_lab.compress.measure import size_on_disk

    eager_logits = _padded_predict(_torch_fn(model), X_test, eval_batch)
    labels = y_test.numpy()
    state_bytes = size_on_disk(model)
    rows: list[dict[str, Any]] = []

    def add(engine: str, build: Callable[[], tuple[Callable[[Any], Any], Callable[[torch.Tensor], Any], int]],
            *, compiled: bool = False) -> None:
        """``build() -> (timed fn, input converter, file bytes)``; an exception becomes an error row."""
        try:
            fn, convert, file_bytes = build()
            measured = []
            for b in sizes:
                x = convert(_batch(X_test, b))
                start = time.perf_counter()
                fn(x)  # compiles, for a compiled engine
                first_s = time.perf_counter() - start
                measured.append((b, _median_ms(fn, x, repeat_s, threads), first_s if compiled else None))
            logits = _padded_predict(lambda c: fn(convert(c)), X_test, eval_batch)
        except Exception as exc:  # noqa: BLE001 - the table reports why an engine did not run
            rows.extend({"engine": engine, "batch_size": b, "median_ms": None, "file_bytes": None,
                         "max_abs_diff": None, "argmax_agreement": None, "accuracy": None, "compile_s": None,
                         "error": _error_message(exc)} for b in sizes)
            return
        logits = np.asarray(logits, dtype=np.float64)
        quality = {"file_bytes": int(file_bytes),
                   "max_abs_diff": float(np.abs(logits - eager_logits).max()),
                   "argmax_agreement": float((logits.argmax(1) == eager_logits.argmax(1)).mean()),
                   "accuracy": float((logits.argmax(1) == labels).mean())}
        rows.extend({"engine": engine, "batch_size": b, "median_ms": ms, **quality, "compile_s": cs, "error": None}
                    for b, ms, cs in measured)

    identity = lambda x: x  # noqa: E731
    add("eager", lambda: (_torch_fn(model), identity, state_bytes))
    if compile:
        add("torch.compile", lambda: (_torch_fn(torch.compile(model, dynamic=False)), identity, state_bytes),
            compiled=True)
    fp32_path, int8_path = folder / "model.onnx", folder / "model.int8.onnx"

    def onnx_engine(path: Path, make: Callable[[], Path]):
        def build():
            make()
            session = ort_session(path, threads=threads)
            return (lambda x: ort_predict(session, x)), (lambda t: t.numpy().astype(np.float32)), path.stat().st_size
        return build

    add("onnxruntime fp32", onnx_engine(fp32_path, lambda: export_onnx(model, _batch(X_test, 2), fp32_path)))
    add("onnxruntime int8", onnx_engine(int8_path, lambda: quantize_onnx_dynamic(
        fp32_path if fp32_path.is_file() else export_onnx(model, _batch(X_test, 2), fp32_path), int8_path)))

    def torchao_build(compiled: bool):
        def build():
            with _quiet():
                quantized = _torchao().int8_dynamic(model)
            size = size_on_disk(quantized)
            return _torch_fn(_torchao().compile_frozen(quantized) if compiled else quantized), identity, size
        return build

    add("torchao int8", torchao_build(False))
    if compile:
        add("torchao int8 + compile", torchao_build(True), compiled=True)
    return rows
