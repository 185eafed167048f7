"""Ring all-reduce, simulated to teach it: N workers that can only send messages to each other.

Each worker is a thread running ``fn(rank, world_size, tensor, send, recv) -> Tensor``, the same shape
of program a real ``torch.distributed`` rank runs with ``dist.send`` / ``dist.recv``: it sees only its
own tensor, and ``send(dst, t)`` / ``recv(src)`` are its only way to learn the others'. Every message is
recorded, so the communication pattern can be checked, not just the sum.

Ring all-reduce (Patarasuk & Yuan 2009; Baidu's "Bringing HPC techniques to deep learning", 2017; what
NCCL and gloo run for large tensors): split the tensor into N chunks.
1. Reduce-scatter, N-1 steps: at step s worker r sends chunk (r - s) mod N to its right neighbour
   (r + 1) mod N and adds the chunk (r - s - 1) mod N it receives from its left one. After N-1 steps
   worker r holds the complete sum of chunk (r + 1) mod N.
2. All-gather, N-1 steps: the complete chunks travel once more around the ring, copied, not added.
Each worker sends 2(N-1) messages of 1/N of the tensor: 2(N-1)/N of the tensor in all, nearly
independent of N; a parameter server receives N tensors and sends N back.

Also here: the chunk-by-chunk states of the ring for the widget (``ring_allreduce_steps``), and a
latency-bandwidth model of an all-reduce and of data-parallel step time (``data_parallel_step``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from queue import Empty, Queue

import torch

Send = Callable[[int, torch.Tensor], None]
Recv = Callable[[int], torch.Tensor]
Worker = Callable[[int, int, torch.Tensor, Send, Recv], torch.Tensor]


class DeadlockError(RuntimeError):
    """A worker waited for a message that never came."""


class _Aborted(Exception):
    """Another worker failed: this one stops waiting."""


@dataclass(frozen=True)
class Message:
    """One ``send``: the sender's ``index``-th message, from ``src`` to ``dst``, of ``numel`` elements."""

    index: int
    src: int
    dst: int
    numel: int


@dataclass
class RingRun:
    """What the workers returned, every message they sent, and the true sum (``torch.stack(...).sum(0)``)."""

    world_size: int
    numel: int
    results: list = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    expected_sum: torch.Tensor | None = None

    def sends_of(self, rank: int) -> list[Message]:
        return [m for m in self.messages if m.src == rank]

    @property
    def elements_sent(self) -> int:
        return sum(m.numel for m in self.messages)

    def __repr__(self) -> str:
        n = self.world_size
        sends = [len(self.sends_of(r)) for r in range(n)]
        off_ring = sum(m.dst != (m.src + 1) % n for m in self.messages)
        return (f"RingRun(workers={n}, tensor of {self.numel} elements, messages per worker={sends}, "
                f"elements sent={self.elements_sent} (= {self.elements_sent / max(self.numel, 1):.3g} x the "
                f"tensor), messages not to the right neighbour={off_ring})")


def run_workers(fn: Worker, tensors: Sequence[torch.Tensor], *, recv_timeout_s: float = 2.0) -> RingRun:
    """Run ``fn(rank, world_size, tensor, send, recv)`` for every rank on its own thread.

    ``send(dst, t)`` delivers a copy of ``t`` to ``dst`` (never blocks); ``recv(src)`` returns the next
    message from ``src`` in the order sent, or raises ``DeadlockError`` after ``recv_timeout_s``. Each
    worker gets its own copy of its tensor (it may work in place). The first exception of a worker is
    re-raised here.
    """
    n = len(tensors)
    if n < 1:
        raise ValueError("need at least one worker")
    links: dict[tuple[int, int], Queue] = {(s, d): Queue() for s in range(n) for d in range(n) if s != d}
    run = RingRun(world_size=n, numel=tensors[0].numel(), results=[None] * n,
                  expected_sum=torch.stack([t.detach() for t in tensors]).sum(0))
    lock = threading.Lock()
    errors: list[tuple[int, BaseException]] = []
    failed = threading.Event()

    def make_comm(rank: int) -> tuple[Send, Recv]:
        count = 0

        def check_peer(peer: object, what: str) -> int:
            if isinstance(peer, bool) or not isinstance(peer, int) or not 0 <= peer < n or peer == rank:
                raise ValueError(f"rank {rank}: {what} must be another worker's rank in 0..{n - 1}, got {peer!r}")
            return peer

        def send(dst: int, tensor: torch.Tensor) -> None:
            nonlocal count
            dst = check_peer(dst, "send's dst")
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"rank {rank}: send() takes a tensor, got {type(tensor).__name__}")
            with lock:
                run.messages.append(Message(count, rank, dst, tensor.numel()))
            count += 1
            links[rank, dst].put(tensor.detach().clone())

        def recv(src: int) -> torch.Tensor:
            src = check_peer(src, "recv's src")
            deadline = time.monotonic() + recv_timeout_s
            while True:  # poll, so that a worker's crash stops the others at once
                if failed.is_set():
                    raise _Aborted
                try:
                    return links[src, rank].get(timeout=0.02)
                except Empty:
                    if time.monotonic() > deadline:
                        raise DeadlockError(
                            f"rank {rank} waited {recv_timeout_s:g} s for a message from rank {src} that never "
                            f"came (does every recv have a matching send?)") from None

        return send, recv

    def work(rank: int) -> None:
        send, recv = make_comm(rank)
        try:
            run.results[rank] = fn(rank, n, tensors[rank].detach().clone(), send, recv)
        except _Aborted:
            pass
        except Exception as exc:  # re-raised on the calling thread
            with lock:
                errors.append((rank, exc))
            failed.set()

    threads = [threading.Thread(target=work, args=(r,), daemon=True, name=f"worker-{r}") for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return run


def ring_allreduce(rank: int, world_size: int, tensor: torch.Tensor, send: Send, recv: Recv) -> torch.Tensor:
    """One worker's part of a ring all-reduce (sum): reduce-scatter, then all-gather. Returns the sum of
    every worker's ``tensor``, same shape and dtype."""
    n = world_size
    if n == 1:
        return tensor.clone()
    chunks = list(torch.tensor_split(tensor.detach().flatten().clone(), n))  # views of one buffer
    right, left = (rank + 1) % n, (rank - 1) % n
    for step in range(n - 1):  # reduce-scatter: add what comes from the left
        send(right, chunks[(rank - step) % n])
        chunks[(rank - step - 1) % n] += recv(left)
    for step in range(n - 1):  # all-gather: chunk (rank + 1) % n is complete here; pass complete ones on
        send(right, chunks[(rank + 1 - step) % n])
        chunks[(rank - step) % n].copy_(recv(left))
    return torch.cat(chunks).view_as(tensor)


def parameter_server_allreduce(rank: int, world_size: int, tensor: torch.Tensor, send: Send,
                               recv: Recv) -> torch.Tensor:
    """The same sum through a parameter server (rank 0 here): every worker sends its whole tensor to the
    server, which adds them and sends the sum back. Correct, but the server's link carries 2(N-1) whole
    tensors while the other links idle."""
    if rank == 0:
        total = tensor.clone()
        for src in range(1, world_size):
            total += recv(src)
        for dst in range(1, world_size):
            send(dst, total)
        return total
    send(0, tensor)
    return recv(0)


def link_traffic(run: RingRun) -> dict[tuple[int, int], int]:
    """Elements carried by each directed link ``(src, dst)`` over a whole run."""
    traffic: dict[tuple[int, int], int] = {}
    for m in run.messages:
        traffic[m.src, m.dst] = traffic.get((m.src, m.dst), 0) + m.numel
    return traffic


# ---- the ring, step by step (for the widget) ------------------------------------------------------------

@dataclass(frozen=True)
class RingStep:
    """The ring after ``step`` steps: ``holdings[r][c]`` = the workers whose chunk ``c`` is summed in worker
    ``r``'s copy; ``transfers`` = ``(src, dst, chunk)`` of the step that led here (none for step 0)."""

    step: int
    phase: str
    transfers: tuple[tuple[int, int, int], ...]
    holdings: tuple[tuple[frozenset[int], ...], ...]


def ring_allreduce_steps(world_size: int) -> list[RingStep]:
    """The 2(N-1) + 1 states of a ring all-reduce of N chunks on N workers (the start included)."""
    n = world_size
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    held = [[frozenset({r}) for _ in range(n)] for r in range(n)]
    states = [RingStep(0, "start", (), tuple(map(tuple, held)))]
    for step in range(2 * (n - 1)):
        gather = step >= n - 1
        s = step - (n - 1) if gather else step
        moves = tuple((r, (r + 1) % n, (r + (1 if gather else 0) - s) % n) for r in range(n))
        incoming = [(dst, chunk, held[src][chunk]) for src, dst, chunk in moves]
        for dst, chunk, data in incoming:
            held[dst][chunk] = data if gather else held[dst][chunk] | data
        states.append(RingStep(step + 1, "all-gather" if gather else "reduce-scatter", moves,
                               tuple(map(tuple, held))))
    return states


# ---- cost model -------------------------------------------------------------------------------------------

def allreduce_seconds(nbytes: float, world_size: int, *, bandwidth: float, latency: float = 0.0,
                      algorithm: str = "ring") -> float:
    """Time of an all-reduce of ``nbytes`` over ``world_size`` workers in the latency-bandwidth
    (alpha-beta) model: a message of m bytes costs ``latency + m / bandwidth`` (seconds, bytes/s).

    ring: 2(N-1) steps of nbytes/N each. parameter_server: one server receives N gradients and sends N
    updated copies back through its one link (2 N nbytes over it). naive_ring: the whole tensor passed
    N-1 times around the ring (a "reduce" without the split into chunks).
    """
    n = world_size
    if n < 1 or bandwidth <= 0 or latency < 0 or nbytes < 0:
        raise ValueError(f"need world_size >= 1, bandwidth > 0, latency >= 0, nbytes >= 0; got {n}, "
                         f"{bandwidth}, {latency}, {nbytes}")
    if n == 1:
        return 0.0
    if algorithm == "ring":
        return 2 * (n - 1) * (latency + nbytes / n / bandwidth)
    if algorithm == "parameter_server":
        return 2 * (latency + n * nbytes / bandwidth)
    if algorithm == "naive_ring":
        return 2 * (n - 1) * (latency + nbytes / bandwidth)
    raise ValueError(f"algorithm must be 'ring', 'parameter_server' or 'naive_ring', got {algorithm!r}")


def data_parallel_step(world_size: int, n_params: float, *, compute_s: float, bandwidth: float,
                       latency: float = 5e-6, grad_bytes: int = 4, overlap: float = 1.0,
                       algorithm: str = "ring") -> dict[str, float]:
    """Step time of data parallelism with a fixed per-worker batch (weak scaling).

    Every step computes for ``compute_s`` (forward + backward, about 1/3 + 2/3) and all-reduces the
    gradients (``n_params * grad_bytes``). DDP overlaps the all-reduce with the backward pass: up to
    ``overlap`` x the backward time (2/3 of compute) hides communication. Returns ``comm_s``,
    ``exposed_comm_s``, ``step_s``, ``efficiency`` (= compute / step: 1 is perfect scaling) and
    ``speedup`` (= world_size x efficiency, samples/s relative to one worker).
    """
    if compute_s <= 0 or not 0.0 <= overlap <= 1.0:
        raise ValueError(f"need compute_s > 0 and overlap in [0, 1], got {compute_s}, {overlap}")
    comm = allreduce_seconds(n_params * grad_bytes, world_size, bandwidth=bandwidth, latency=latency,
                             algorithm=algorithm)
    exposed = max(0.0, comm - overlap * (2.0 / 3.0) * compute_s)
    step = compute_s + exposed
    efficiency = compute_s / step
    return {"comm_s": comm, "exposed_comm_s": exposed, "step_s": step, "efficiency": efficiency,
            "speedup": world_size * efficiency}


def ring_bytes_per_worker(nbytes: float, world_size: int) -> float:
    """Bytes each worker sends in a ring all-reduce: 2(N-1)/N x the tensor."""
    return 0.0 if world_size == 1 else 2 * (world_size - 1) / world_size * nbytes


__all__ = ["DeadlockError", "Message", "RingRun", "RingStep", "allreduce_seconds", "data_parallel_step",
           "link_traffic", "parameter_server_allreduce", "ring_allreduce", "ring_allreduce_steps",
           "ring_bytes_per_worker", "run_workers"]

