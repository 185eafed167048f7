"""The kit's real-time model server for lesson 13 (``notebooks/13_serving.ipynb``): FastAPI with dynamic
micro-batching, a bounded queue and back-pressure.

* ``POST /predict`` takes ONE instance, ``{"features": [64 floats]}`` in raw pixel units ``[0, 16]`` (the
  servable's input spec, see ``servable``), and answers ``{"label", "probabilities", "batch_size"}``;
  ``batch_size`` is the size of the micro-batch that served the request (shown for teaching). Bad input:
  422 whose ``detail`` names the field and the problem; a body over ``max_body_bytes``: 413; a full queue:
  503 with ``Retry-After`` at once (never an unbounded wait); a forward pass that raised: 500, and the
  server keeps serving.
* ``GET /healthz``: status, queue depth and the batching knobs; ``GET /stats``: counters.

The :class:`MicroBatcher` takes the first queued request, then gathers more until it holds ``max_batch``
or ``max_wait_ms`` have passed since it picked up the first (the policy ``batching.micro_batches`` writes
as a pure function), and runs ONE forward pass on a dedicated thread, off the event loop.
:class:`ServerProcess` runs ``bigtrain-lab serve`` in a subprocess on a free loopback port for notebooks,
tests and the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictFloat

from bigtrain_lab.serving.servable import (
    Servable,
    load_servable,
    parse_forward_ms,
    resolve_model,
    slow_servable,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ForwardError", "MicroBatcher", "PredictRequest", "QueueFullError",
           "ServerProcess", "as_servable", "check_features", "create_app", "free_port", "serve"]

#: Default request body limit: one instance of 64 floats is about 1.5 kB of JSON.
DEFAULT_MAX_BODY_BYTES = 16_384
RETRY_AFTER_S = 1


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: one instance (``features``: numbers; strings, booleans and nulls are
    refused, not converted)."""

    model_config = ConfigDict(extra="forbid")
    features: list[StrictFloat]


class QueueFullError(RuntimeError):
    """The batcher's queue is full: the request is refused at once (503)."""


class ForwardError(RuntimeError):
    """The forward pass of a request's batch raised (500)."""


def _invalid(msg: str, loc: Sequence[str | int] = ("body", "features")) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": msg}])


def check_features(features: Sequence[float], servable: Servable) -> np.ndarray:
    """``features`` as a float32 array when it has exactly ``n_features`` finite values in the servable's
    range; else ``RequestValidationError`` (a 422) naming ``features`` and the problem."""
    n = servable.n_features
    if len(features) != n:
        raise _invalid(f"features must hold exactly {n} numbers (one instance), got {len(features)}")
    low, high = servable.input_range
    for i, v in enumerate(features):
        if not math.isfinite(v):
            raise _invalid(f"features[{i}] is {v}: values must be finite numbers", ("body", "features", i))
        if not low <= v <= high:
            raise _invalid(f"features[{i}] = {v:g} is outside the input range [{low:g}, {high:g}] (raw pixel "
                           "units)", ("body", "features", i))
    return np.asarray(features, dtype=np.float32)


class MicroBatcher:
    """Dynamic micro-batching in front of ``predict`` (``(B, F) -> (B, C)``), on a bounded queue.

    ``await submit(x)`` returns ``(probabilities, batch_size)`` or raises ``QueueFullError`` (queue full,
    at once) / ``ForwardError``. ``start()`` / ``stop()`` run inside the event loop (the app's lifespan)."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 32,
                 max_wait_ms: float = 5.0, queue_size: int = 256) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        if not (math.isfinite(max_wait_ms) and max_wait_ms >= 0):
            raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        self.predict, self.max_batch, self.max_wait_ms = predict, max_batch, float(max_wait_ms)
        self.queue_size = queue_size
        self.batch_sizes: Counter[int] = Counter()
        self.served = self.rejected = self.failed = 0
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._current: list[tuple[np.ndarray, asyncio.Future]] = []
        self._executor: ThreadPoolExecutor | None = None

    @property
    def depth(self) -> int:
        """Requests waiting in the queue now (not counting the batch being computed)."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = list(self._current)
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for _, fut in pending:
            if not fut.done():
                fut.set_exception(QueueFullError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        if self._queue is None:
            raise RuntimeError("the batcher is not started (run the app with its lifespan)")
        fut = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((x, fut))
        except asyncio.QueueFull:
            self.rejected += 1
            raise QueueFullError(f"the request queue is full ({self.queue_size} waiting): retry later") from None
        return await fut

    async def _collect(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The next batch: the first request, then more until ``max_batch`` or the deadline."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_ms / 1000.0
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    batch.append(await self._queue.get())
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [item for item in await self._collect() if not item[1].done()]  # skip abandoned requests
            if not batch:
                continue
            self._current = batch
            try:
                X = np.stack([x for x, _ in batch])
                probs = await loop.run_in_executor(self._executor, self.predict, X)
                if len(probs) != len(batch):
                    raise ValueError(f"the model returned {len(probs)} rows for a batch of {len(batch)}")
            except Exception as exc:  # the server keeps serving; these requests get a 500
                self.failed += len(batch)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ForwardError(f"{type(exc).__name__}: {exc}"))
                continue
            finally:
                self._current = []
            self.batch_sizes[len(batch)] += 1
            self.served += len(batch)
            for i, (_, fut) in enumerate(batch):
                if not fut.done():
                    fut.set_result((probs[i], len(batch)))

    def stats(self) -> dict[str, Any]:
        batches = sum(self.batch_sizes.values())
        return {"served": self.served, "batches": batches,
                "mean_batch_size": self.served / batches if batches else 0.0,
                "max_batch_size_seen": max(self.batch_sizes, default=0),
                "batch_size_counts": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "rejected": self.rejected, "failed": self.failed, "queue": self.depth}


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, by its Content-Length and by the bytes
    actually received (a chunked body has no Content-Length)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _too_large(self, scope: Any, receive: Any, send: Any, size: str) -> None:
        response = JSONResponse({"detail": f"request body too large: {size} bytes, the limit is {self.max_bytes}"},
                                status_code=413)
        await response(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send, length.decode())
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(scope, receive, send, f"more than {size}")
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _HandlerCount:
    """Requests inside the /predict handler now, and the most at once (concurrency, for the lesson)."""

    def __init__(self) -> None:
        self.now = self.max = self.requests = 0

    def __enter__(self) -> _HandlerCount:
        self.now += 1
        self.requests += 1
        self.max = max(self.max, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


def create_app(servable: Servable, *, max_batch: int = 32, max_wait_ms: float = 5.0, queue_size: int = 256,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The micro-batching server of ``servable`` (see the module docstring for its routes and answers).
    ``max_batch=1`` is no batching. The batcher starts and stops with the app's lifespan."""
    batcher = MicroBatcher(servable.predict_proba, max_batch=max_batch, max_wait_ms=max_wait_ms,
                           queue_size=queue_size)
    inside = _HandlerCount()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="bigtrain-lab model server", lifespan=lifespan)
    app.state.batcher, app.state.servable = batcher, servable
    classes = np.asarray(servable.classes)

    @app.post("/predict")
    async def predict(body: PredictRequest) -> Any:
        with inside:
            x = check_features(body.features, servable)
            try:
                probs, size = await batcher.submit(x)
            except QueueFullError as why:
                return JSONResponse({"detail": str(why)}, status_code=503,
                                    headers={"Retry-After": str(RETRY_AFTER_S)})
            except ForwardError as why:
                return JSONResponse({"detail": f"the forward pass failed: {why}"}, status_code=500)
            return {"label": int(classes[int(np.argmax(probs))]), "probabilities": probs.tolist(),
                    "batch_size": size}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue": batcher.depth, "max_batch": batcher.max_batch,
                "max_wait_ms": batcher.max_wait_ms, "queue_size": batcher.queue_size, "served": batcher.served}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"requests": inside.requests, **batcher.stats(), "in_handler": inside.now,
                "in_handler_max": inside.max, "max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait_ms,
                "forward_ms": servable.forward_cost_ms}

    app.add_middleware(BodyLimit, max_bytes=_checked_body_limit(max_body_bytes))
    return app


def _checked_body_limit(max_bytes: int) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_body_bytes must be an integer >= 1, got {max_bytes!r}")
    return max_bytes


def as_servable(model: str | os.PathLike | Servable,
                forward_ms: str | float | tuple[float, float] | None = None) -> Servable:
    """A :class:`Servable` from a built-in name, a file or a Servable, with ``forward_ms`` (``"2,0.02"``,
    ``2.0`` or ``(2.0, 0.02)``) as an artificial cost per forward call (``slow_servable``)."""
    servable = model if isinstance(model, Servable) else load_servable(resolve_model(model))
    if forward_ms is None:
        return servable
    return slow_servable(servable, parse_forward_ms(forward_ms) if isinstance(forward_ms, str) else forward_ms)


def serve(model: str | os.PathLike | Servable, *, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32,
          max_wait_ms: float = 5.0, queue_size: int = 256,
          forward_ms: str | float | tuple[float, float] | None = None, blocking: bool = False,
          announce: Callable[[str], None] | None = None) -> None:
    """Run the server with uvicorn (log level warning) until interrupted. ``blocking=True`` serves lesson
    13's wrong answer instead (``blocking.create_blocking_app``). ``announce`` gets one line saying where
    it listens, before uvicorn starts."""
    servable = as_servable(model, forward_ms)
    if blocking:
        from bigtrain_lab.serving.blocking import create_blocking_app

        app = create_blocking_app(servable)
        knobs = "BLOCKING (the forward pass runs inside async def, on the event loop)"
    else:
        app = create_app(servable, max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size)
        knobs = f"max_batch={max_batch} max_wait_ms={max_wait_ms:g} queue_size={queue_size}"
    cost = servable.forward_cost_ms
    knobs += f" forward_ms={cost[0]:g},{cost[1]:g}" if cost else " forward_ms=none"
    if announce is not None:
        name = servable.path.name if servable.path else "model"
        announce(f"serving {name} on http://{host}:{port} (POST /predict, GET /healthz, GET /stats): {knobs}")
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``bigtrain-lab serve MODEL`` in a subprocess on a free loopback port, for notebooks, tests and the bench.

    >>> with ServerProcess("digits-mlp", max_batch=8) as server:     # doctest: +SKIP
    ...     httpx.post(server.url + "/predict", json={"features": [0.0] * 64}).json()["label"]

    Waits for ``/healthz`` (``startup_timeout_s``; the error carries the subprocess's stderr) and ends it
    with SIGTERM, then SIGKILL, on exit."""

    def __init__(self, model: str | os.PathLike = "digits-mlp", *, host: str = "127.0.0.1", port: int | None = None,
                 max_batch: int = 32, max_wait_ms: float = 5.0, queue_size: int = 256,
                 forward_ms: str | None = None, threads: int | None = None, blocking: bool = False,
                 startup_timeout_s: float = 60.0) -> None:
        self.model, self.host, self.port = os.fspath(model), host, port
        self.args = ["--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--queue-size", str(queue_size)]
        if forward_ms is not None:
            self.args += ["--forward-ms", str(forward_ms)]
        if threads is not None:
            self.args += ["--threads", str(threads)]
        if blocking:
            self.args.append("--blocking")
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "bigtrain_lab.cli", "serve", self.model, "--host", self.host,
                "--port", str(self.port), *self.args]

    def stderr(self) -> str:
        """What the subprocess wrote so far (stdout and stderr together)."""
        if self._log is None:
            return ""
        return self._log.read_text(encoding="utf-8", errors="replace")

    def start(self) -> ServerProcess:
        import httpx

        if self.port is None:
            self.port = free_port(self.host)
        fd, name = tempfile.mkstemp(prefix="bigtrain-serve-", suffix=".log")
        self._log = Path(name)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = subprocess.Popen(self.command, stdout=fd, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        finally:
            os.close(fd)
        give_up = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                output = self.stderr()
                self.stop()
                raise RuntimeError(f"the server exited with code {self.proc.returncode} before answering "
                                   f"/healthz: {' '.join(self.command)}\n{output[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        output = self.stderr()
        self.stop()
        raise TimeoutError(f"the server did not answer /healthz within {self.startup_timeout_s:g} s: "
                           f"{' '.join(self.command)}\n{output[-3000:]}")

    def get(self, path: str) -> dict[str, Any]:
        """``GET url + path`` as JSON (``/healthz``, ``/stats``)."""
        import httpx

        response = httpx.get(self.url + path, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
