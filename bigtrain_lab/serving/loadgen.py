"""An open-loop load generator for lesson 13 (``notebooks/13_serving.ipynb``): Poisson arrivals at a chosen
rate, each request sent at its scheduled time whatever happened to the earlier ones (a closed loop, which
waits for answers, would slow down exactly when the server does and hide its queue).

``run_load`` returns a :class:`LoadResult`: per request the scheduled and actual send times, the latency
and the status. Latency runs from the *scheduled* send time, so time a request spent waiting in the client
(a lagging generator, a full connection pool) counts, as a user would see it. ``report()`` gives latency
percentiles of the successful requests, throughput and error rate; ``littles_law()`` compares the
measured mean number of requests in the system, L, with lambda * W. Only loopback URLs are accepted: the kit
never sends load to another machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from bigtrain_lab.serving.batching import latency_report

__all__ = ["LoadResult", "check_loopback", "digits_payloads", "poisson_schedule", "run_load", "run_load_async",
           "sweep_rates"]

#: Status recorded for a request that got no HTTP answer (connection error, timeout).
NO_RESPONSE = 0


def check_loopback(url: str) -> str:
    """``url`` when its host is a loopback address (127.0.0.0/8, ::1, localhost); else ValueError.

    >>> check_loopback("http://127.0.0.1:8000/predict")
    'http://127.0.0.1:8000/predict'
    """
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"the load generator needs an http(s) URL, got {url!r}")
    host = parsed.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"refusing to send load to {host!r}: only loopback hosts (127.0.0.0/8, ::1, localhost) "
                         "are allowed")
    return url


def poisson_schedule(rate_per_s: float, n_requests: int, seed: int = 0) -> np.ndarray:
    """Send times in seconds from the start: 0, then exponential gaps of mean ``1 / rate_per_s``.

    >>> poisson_schedule(100.0, 3, seed=0).round(4).tolist()
    [0.0, 0.0068, 0.017]
    """
    if not (np.isfinite(rate_per_s) and rate_per_s > 0):
        raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s!r}")
    if isinstance(n_requests, bool) or int(n_requests) != n_requests or n_requests < 1:
        raise ValueError(f"n_requests must be an integer >= 1, got {n_requests!r}")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, int(n_requests) - 1)
    return np.concatenate([[0.0], np.cumsum(gaps)])


def digits_payloads(n: int = 360, seed: int = 0) -> list[dict[str, list[float]]]:
    """``n`` request bodies ``{"features": [...]}`` from the digits test split, in raw pixel units."""
    from bigtrain_lab.data import load_dataset

    X = load_dataset("digits", seed=seed).X_test
    return [{"features": X[i % len(X)].tolist()} for i in range(n)]


@dataclass
class LoadResult:
    """One load run. Per request ``i``: ``scheduled_s[i]`` and ``sent_s[i]`` (seconds from the start),
    ``latency_ms[i]`` (from the scheduled time to the answer, or to the failure) and ``status[i]`` (HTTP
    status; 0 = no answer). ``elapsed_s``: from the start to the last answer."""

    url: str
    offered_rate: float
    scheduled_s: np.ndarray
    sent_s: np.ndarray
    latency_ms: np.ndarray
    status: np.ndarray
    elapsed_s: float
    n_scheduled: int
    errors: list[str]

    @property
    def n(self) -> int:
        """Requests sent."""
        return len(self.status)

    @property
    def ok(self) -> np.ndarray:
        return self.status == 200

    def status_counts(self) -> dict[str, int]:
        """``{"200": 95, "503": 5, "no response": 0...}`` (only the statuses seen)."""
        counts = Counter("no response" if s == NO_RESPONSE else str(int(s)) for s in self.status)
        return dict(sorted(counts.items()))

    def report(self) -> dict[str, Any]:
        """Latency percentiles (ms) of the successful requests (None without any), ``throughput_per_s``
        (successful / elapsed), ``error_rate``, ``offered_rate``, ``status_counts``, the generator's send lag."""
        ok = self.ok
        latency = latency_report(self.latency_ms[ok]) if ok.any() else dict.fromkeys(
            ("p50", "p95", "p99", "mean", "max"))
        lag_ms = (self.sent_s - self.scheduled_s) * 1000.0
        return {**latency, "n": self.n, "n_ok": int(ok.sum()), "elapsed_s": self.elapsed_s,
                "throughput_per_s": float(ok.sum() / self.elapsed_s) if self.elapsed_s > 0 else 0.0,
                "error_rate": float(1.0 - ok.mean()) if self.n else 0.0, "offered_rate": self.offered_rate,
                "status_counts": self.status_counts(),
                "send_lag_p99_ms": float(np.percentile(lag_ms, 99)) if self.n else 0.0}

    def _intervals(self) -> tuple[np.ndarray, np.ndarray]:
        start = self.scheduled_s
        return start, start + self.latency_ms / 1000.0

    def in_flight_mean(self, start_s: float | None = None, end_s: float | None = None) -> float:
        """L: the time-averaged number of requests in the system (scheduled but not yet answered) over
        ``[start_s, end_s]`` (default the whole run), integrated exactly over the step function."""
        lo, hi = self._window(start_s, end_s)
        begin, end = self._intervals()
        overlap = np.clip(np.minimum(end, hi) - np.maximum(begin, lo), 0.0, None)
        return float(overlap.sum() / (hi - lo))

    def in_flight_max(self) -> int:
        """The most requests in the system at once."""
        begin, end = self._intervals()
        events = np.concatenate([np.stack([begin, np.ones_like(begin)], 1), np.stack([end, -np.ones_like(end)], 1)])
        events = events[np.lexsort((events[:, 1], events[:, 0]))]  # an end before a start at the same instant
        return int(np.cumsum(events[:, 1]).max()) if len(events) else 0

    def _window(self, start_s: float | None, end_s: float | None) -> tuple[float, float]:
        lo = 0.0 if start_s is None else float(start_s)
        hi = self.elapsed_s if end_s is None else float(end_s)
        if not hi > lo:
            raise ValueError(f"empty window [{lo}, {hi}]")
        return lo, hi

    def littles_law(self, start_s: float | None = None, end_s: float | None = None) -> dict[str, float]:
        """Little's law on ``[start_s, end_s]`` (default the whole run): ``L`` measured (``in_flight_mean``),
        ``lambda`` (requests completed in the window / its length), ``W`` (their mean latency, s) and
        ``lambda_W``. Over a whole run L = lambda W holds exactly; over a window, approximately."""
        lo, hi = self._window(start_s, end_s)
        _, end = self._intervals()
        done = (end >= lo) & (end <= hi)
        lam = float(done.sum() / (hi - lo))
        w = float(self.latency_ms[done].mean() / 1000.0) if done.any() else 0.0
        return {"L": self.in_flight_mean(lo, hi), "lambda": lam, "W": w, "lambda_W": lam * w}


class _Connections:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for POSTing JSON to a loopback server.

    About 0.1 ms of CPU per request on a 2-core CPU where ``httpx.AsyncClient`` takes about 1.6 ms: on a
    machine that also runs the server, httpx would become the bottleneck long before the server does (and
    httpcore's pool re-scans every queued request and connection on each event, which grows quadratically
    with the requests in flight). Idle connections are reused last-in first-out; at most ``limit`` open;
    a request waiting for a connection waits here (and its latency counts it)."""

    def __init__(self, url: str, limit: int) -> None:
        parsed = urlsplit(url)
        if parsed.scheme != "http":
            raise ValueError(f"the asyncio engine speaks plain http only, got {url!r} (use engine='httpx')")
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self.head = (f"POST {target} HTTP/1.1\r\nHost: {parsed.netloc}\r\nContent-Type: application/json\r\n"
                     "Content-Length: ").encode()
        self.idle: asyncio.LifoQueue = asyncio.LifoQueue()
        self.open, self.limit = 0, limit

    async def _acquire(self) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], bool]:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if not conn[0].at_eof():
                return conn, True
            self._close(conn)
        if self.open < self.limit:
            self.open += 1
            try:
                return await asyncio.open_connection(self.host, self.port), False
            except BaseException:
                self.open -= 1
                raise
        conn = await self.idle.get()
        return conn, True

    def _close(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.open -= 1
        conn[1].close()

    async def post(self, body: bytes) -> int:
        """The response status of one POST (the body is read and dropped)."""
        for attempt in range(2):
            conn, reused = await self._acquire()
            reader, writer = conn
            keep = False
            try:
                writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
                head = await reader.readuntil(b"\r\n\r\n")
                status, length, keep_alive = _parse_head(head)
                if length is None:
                    await reader.read()
                else:
                    await reader.readexactly(length)
                keep = keep_alive and length is not None  # reused only after a complete response
                return status
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                empty = not getattr(exc, "partial", b"")
                if attempt == 0 and reused and empty:  # the server had closed an idle connection: retry once
                    continue
                raise
            finally:
                if keep:
                    self.idle.put_nowait(conn)
                else:
                    self._close(conn)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        while not self.idle.empty():
            self._close(self.idle.get_nowait())


def _parse_head(head: bytes) -> tuple[int, int | None, bool]:
    """``(status, content length or None, keep-alive)`` of an HTTP/1.1 response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict((k.strip().lower(), v.strip().lower()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ln))
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ConnectionError("chunked responses are not supported by the load generator")
    length = int(headers["content-length"]) if "content-length" in headers else None
    return status, length, headers.get("connection") != "close"


async def run_load_async(url: str, *, rate_per_s: float, n_requests: int, seed: int = 0, timeout_s: float = 10.0,
                         max_duration_s: float = 60.0, payloads: Sequence[Mapping[str, Any]] | None = None,
                         max_connections: int = 512, engine: str = "asyncio") -> LoadResult:
    """:func:`run_load` as a coroutine (``await`` it in a notebook)."""
    check_loopback(url)
    for name, value in (("timeout_s", timeout_s), ("max_duration_s", max_duration_s)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if engine not in ("asyncio", "httpx"):
        raise ValueError(f"engine must be 'asyncio' or 'httpx', got {engine!r}")
    schedule = poisson_schedule(rate_per_s, n_requests, seed)
    n_scheduled = len(schedule)
    schedule = schedule[schedule <= max_duration_s]
    bodies = [json.dumps(b).encode() for b in (payloads if payloads is not None else digits_payloads())]
    if not bodies:
        raise ValueError("payloads is empty")
    n = len(schedule)
    sent, latency = np.full(n, np.nan), np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int64)
    errors: Counter[str] = Counter()
    async with _client(url, engine, max_connections, timeout_s) as post:
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            sent[i] = time.perf_counter() - t0
            try:
                async with asyncio.timeout(timeout_s):
                    status[i] = await post(bodies[i % len(bodies)])
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
                errors[type(exc).__name__] += 1
            latency[i] = (time.perf_counter() - t0 - schedule[i]) * 1000.0

        tasks = []
        for i, at in enumerate(schedule):
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))  # open loop: never wait for earlier answers
        await asyncio.wait(tasks)  # each ends within timeout_s of its start
        elapsed = float(np.max(schedule + latency / 1000.0))
    return LoadResult(url=url, offered_rate=float(rate_per_s), scheduled_s=schedule, sent_s=sent,
                      latency_ms=latency, status=status, elapsed_s=elapsed, n_scheduled=n_scheduled,
                      errors=[f"{k}: {v}" for k, v in errors.items()])


@contextlib.asynccontextmanager
async def _client(url: str, engine: str, max_connections: int,
                  timeout_s: float) -> AsyncIterator[Callable[[bytes], Awaitable[int]]]:
    """``post(body) -> status`` on one connection pool: the asyncio engine, or one ``httpx.AsyncClient``
    behind a semaphore (so that httpcore's pool never holds a queue of waiting requests)."""
    if engine == "asyncio":
        connections = _Connections(url, max_connections)
        try:
            yield connections.post
        finally:
            await connections.aclose()
        return
    gate = asyncio.Semaphore(max_connections)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), limits=limits) as client:

        async def post(body: bytes) -> int:
            async with gate:
                response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                return response.status_code

        yield post


def run_load(url: str, *, rate_per_s: float, n_requests: int, seed: int = 0, timeout_s: float = 10.0,
             max_duration_s: float = 60.0, payloads: Sequence[Mapping[str, Any]] | None = None,
             max_connections: int = 512, engine: str = "asyncio") -> LoadResult:
    """Send ``n_requests`` POSTs to ``url`` (loopback only) at Poisson times of rate ``rate_per_s``
    (seeded), open loop, and wait for the answers (each at most ``timeout_s``). Requests scheduled after
    ``max_duration_s`` are not sent (``n_scheduled`` keeps the count). ``payloads``: JSON bodies, cycled
    (default: digits test images). At most ``max_connections`` requests in flight; more wait in the
    client, which their latency counts. ``engine``: ``"asyncio"`` (a lean HTTP/1.1 client on asyncio
    streams, the default: see ``_Connections``) or ``"httpx"`` (one ``httpx.AsyncClient``; about 16 times
    the CPU per request). Works inside a running event loop (Jupyter) too: it then runs in a thread with
    its own loop."""
    coro = run_load_async(url, rate_per_s=rate_per_s, n_requests=n_requests, seed=seed, timeout_s=timeout_s,
                          max_duration_s=max_duration_s, payloads=payloads, max_connections=max_connections,
                          engine=engine)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="loadgen") as pool:
        return pool.submit(asyncio.run, coro).result()


def sweep_rates(url: str, rates: Sequence[float], *, n_requests: int, seed: int = 0,
                **kwargs: Any) -> list[dict[str, Any]]:
    """``run_load`` at each rate: its ``report()`` with ``littles_law()`` under ``"littles_law"``."""
    out = []
    for rate in rates:
        result = run_load(url, rate_per_s=rate, n_requests=n_requests, seed=seed, **kwargs)
        out.append({**result.report(), "littles_law": result.littles_law()})
    return out
