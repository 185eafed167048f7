"""Training memory: a calculator, and the instruments that measure the same quantities on a real model.

The calculator splits the memory of one training step into four parts:

* parameters, gradients and optimizer states (the "model states" of the ZeRO paper, Rajbhandari et al.,
  SC 2020). Per parameter, with Adam, three recipes (``precision``):

  - ``"fp32"``: fp32 weights, gradients, momentum and variance: 4 + 4 + 8 = 16 bytes;
  - ``"autocast"``: ``torch.autocast`` mixed precision (PyTorch AMP). The model's parameters stay fp32
    and *are* the master copy; only the matmuls run in bf16/fp16 (on bf16 copies of the weights made on
    the fly, which are activations, not model states), and the gradients are fp32: 4 + 4 + 8 = 16 bytes;
  - ``"mixed"``: the ZeRO paper's recipe (DeepSpeed's fp16/bf16 modes, Megatron-LM): the model itself is
    held in fp16/bf16 (weights 2, gradients 2) and the optimizer keeps an fp32 master copy, momentum and
    variance (12, the paper's K): 2 + 2 + 12 = 16 bytes.

  With data-parallel degree ``world_size``, ZeRO stage 1 shards the optimizer states over the ranks,
  stage 2 also the gradients, stage 3 also the parameters; stage 0 is plain DDP. The two mixed recipes
  need the same 16 bytes before sharding but shard differently: under ZeRO-3 both give 16 / N, under
  ZeRO-1 autocast keeps 8 bytes of fp32 weights and gradients per GPU where the 16-bit model keeps 4.
* activations: what autograd keeps from the forward pass for the backward pass. ``gpt_activation_bytes``
  counts, tensor by tensor, what ``bigtrain_lab.models.TinyGPT`` saves (fp32, or bf16 autocast), with or
  without activation checkpointing; activations are per micro-batch and ZeRO does not shard them.

The instruments: ``measure_model_states`` adds up the bytes of the parameter, gradient and optimizer-state
tensors of a real model and optimizer; ``SavedTensorBytes`` records every tensor autograd saves for
backward (``torch.autograd.graph.saved_tensors_hooks``); ``LiveTensorPeak`` follows every tensor storage
allocated by a PyTorch operator and reports the peak of their total (a ``TorchDispatchMode``). Each counts
storages once (views and the tied embedding share one) and counts storage bytes, not the allocator's
rounding, the kernels' scratch buffers or Python objects.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = [
    "BYTES_PER_ELEMENT",
    "OPTIMIZER_STATES",
    "MemoryBreakdown",
    "LiveTensorPeak",
    "SavedTensorBytes",
    "bytes_per_parameter",
    "gpt_activation_bytes",
    "gpt_num_parameters",
    "measure_model_states",
    "model_state_bytes",
    "storage_nbytes",
    "training_memory",
]

BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2}
#: fp32 tensors the optimizer keeps per parameter: Adam(W) momentum and variance, SGD's momentum buffer.
OPTIMIZER_STATES = {"adamw": 2, "sgd_momentum": 1, "sgd": 0}
#: the recipes of ``bytes_per_parameter``: fp32; torch.autocast (fp32 parameters are the master copy); a
#: 16-bit model with an fp32 master copy in the optimizer (the ZeRO paper's, DeepSpeed's, Megatron's).
STATE_PRECISIONS = ("fp32", "autocast", "mixed")
ACTIVATION_PRECISIONS = ("fp32", "bf16")
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of one training step's memory, by kind (per GPU when a ZeRO stage and world size applied)."""

    parameters: float
    gradients: float
    optimizer_states: float
    activations: float = 0.0

    @property
    def model_states(self) -> float:
        """Parameters + gradients + optimizer states (what ZeRO shards)."""
        return self.parameters + self.gradients + self.optimizer_states

    @property
    def total(self) -> float:
        return self.model_states + self.activations

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        parts = " + ".join(f"{k.replace('_', ' ')} {format_bytes(v)}" for k, v in self.as_dict().items())
        return f"{parts} = {format_bytes(self.total)}"


def format_bytes(n: float) -> str:
    """``1536 -> '1.50 KiB'``: binary units, three significant figures."""
    if not math.isfinite(n):
        return str(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# ----------------------------------------------------------------------------------------------------
# The calculator


def bytes_per_parameter(precision: str = "mixed", optimizer: str = "adamw") -> tuple[int, int, int]:
    """``(parameter, gradient, optimizer-state)`` bytes per parameter, before any sharding.

    ``precision="fp32"``: 4, 4 and 4 per optimizer state (Adam: 4 + 4 + 8 = 16).
    ``precision="autocast"``: the same 4, 4, 4 per state: under ``torch.autocast`` the parameters and
    gradients stay fp32 and the parameters are the master copy (Adam: 4 + 4 + 8 = 16); the bf16 weight
    copies autocast makes for the matmuls are counted with the activations.
    ``precision="mixed"``: a 16-bit model (2, 2) and, in the optimizer, an fp32 master copy plus the states
    (Adam: 2 + 2 + 12 = 16, the ZeRO paper's K = 12; DeepSpeed and Megatron-LM keep this layout).
    ``optimizer``: "adamw" (2 states), "sgd_momentum" (1), "sgd" (0).

    >>> bytes_per_parameter("autocast"), bytes_per_parameter("mixed")
    ((4, 4, 8), (2, 2, 12))
    """
    _check_choice("precision", precision, STATE_PRECISIONS)
    _check_choice("optimizer", optimizer, OPTIMIZER_STATES)
    states = 4 * OPTIMIZER_STATES[optimizer]
    if precision in ("fp32", "autocast"):
        return 4, 4, states
    return 2, 2, 4 + states


def model_state_bytes(n_params: int, *, precision: str = "mixed", optimizer: str = "adamw",
                      zero_stage: int = 0, world_size: int = 1) -> MemoryBreakdown:
    """Per-GPU bytes of parameters, gradients and optimizer states (activations 0).

    ``precision``: the recipe, "fp32", "autocast" or "mixed" (see ``bytes_per_parameter``).
    ZeRO stage 1 divides the optimizer states by ``world_size``, stage 2 also the gradients, stage 3 also
    the parameters; stage 0 (plain data parallelism) replicates everything. No rounding: a real
    implementation shards whole tensors or pads flat buffers, so its per-rank numbers differ slightly.
    """
    n_params = _check_int("n_params", n_params, 0)
    _check_choice("zero_stage", zero_stage, ZERO_STAGES)
    world_size = _check_int("world_size", world_size, 1)
    p, g, o = bytes_per_parameter(precision, optimizer)
    return MemoryBreakdown(
        parameters=n_params * p / (world_size if zero_stage >= 3 else 1),
        gradients=n_params * g / (world_size if zero_stage >= 2 else 1),
        optimizer_states=n_params * o / (world_size if zero_stage >= 1 else 1),
    )


def gpt_num_parameters(*, n_layer: int, n_embd: int, vocab_size: int, block_size: int,
                       bias: bool = True) -> int:
    """Parameters of a TinyGPT (GPT-2 layout, tied embeddings), position embeddings included.

    Per layer 12 C^2 weights (attention 4 C^2, MLP 8 C^2) plus 13 C biases and LayerNorm parameters
    (2 C, the LayerNorm gains, without biases); plus V C (token embedding, shared with the output
    layer), T C positions and the final LayerNorm (2 C, or C without biases).
    """
    L = _check_int("n_layer", n_layer, 1)
    C = _check_int("n_embd", n_embd, 1)
    V = _check_int("vocab_size", vocab_size, 1)
    T = _check_int("block_size", block_size, 1)
    per_layer = 12 * C * C + (13 * C if bias else 2 * C)
    return L * per_layer + V * C + T * C + (2 * C if bias else C)


def gpt_activation_bytes(*, n_layer: int, n_embd: int, n_head: int, vocab_size: int, seq_len: int,
                         batch_size: int, precision: str = "fp32", checkpointing: bool = False) -> int:
    """Bytes of the tensors ``TinyGPT`` (dropout 0, biases on) saves for backward in one forward pass.

    Counted tensor by tensor (``SavedTensorBytes`` measures the same thing; the tests check they agree
    exactly). With B = batch_size, T = seq_len, C = n_embd, H = n_head, V = vocab_size, per layer:

    * fp32: the two LayerNorm inputs and outputs (4 BTC), q, k, v (3 BTC, one buffer), the attention
      output (BTC; SDPA's flash kernel saves it and the log-sum-exp, B H T, instead of the T x T matrix),
      the MLP's hidden layer before and after GELU (8 BTC), LayerNorm means and inverse std (4 BT):
      16 BTC + 4 BT + B H T elements of 4 bytes.
    * bf16 autocast: matmul inputs and outputs are saved in bf16 (2 bytes), LayerNorm inputs and
      statistics stay fp32, and autocast also saves the bf16 copy of each matmul weight (12 C^2 elements).

    After the last layer: the final LayerNorm's input and output, its statistics, the log-softmax of
    the logits (B T V, fp32 in both modes) and, with bf16, the bf16 copy of the output layer (V C); plus
    the int64 token ids, targets and positions. With ``checkpointing`` each layer keeps only its input
    (BTC, fp32): the rest is recomputed during backward.
    """
    L = _check_int("n_layer", n_layer, 1)
    C = _check_int("n_embd", n_embd, 1)
    H = _check_int("n_head", n_head, 1)
    V = _check_int("vocab_size", vocab_size, 1)
    T = _check_int("seq_len", seq_len, 1)
    B = _check_int("batch_size", batch_size, 1)
    _check_choice("precision", precision, ACTIVATION_PRECISIONS)
    if not isinstance(checkpointing, bool):
        raise ValueError(f"checkpointing must be True or False, got {checkpointing!r}")
    btc, bt = B * T * C, B * T
    if checkpointing:
        per_layer = 4 * btc
    elif precision == "fp32":
        per_layer = 4 * (16 * btc + 4 * bt + B * H * T)
    else:
        per_layer = 4 * 2 * btc + 2 * 14 * btc + 4 * (4 * bt + B * H * T) + 2 * 12 * C * C
    if precision == "fp32":
        head = 4 * (2 * btc + 2 * bt + bt * V + 1)
    else:
        head = 4 * btc + 2 * btc + 4 * (2 * bt + bt * V + 1) + 2 * V * C
    token_ids = 8 * (2 * bt + T)  # input ids (embedding backward), targets, positions
    return L * per_layer + head + token_ids


def training_memory(n_params: int, *, activations: float = 0.0, precision: str = "mixed",
                    optimizer: str = "adamw", zero_stage: int = 0, world_size: int = 1) -> MemoryBreakdown:
    """``model_state_bytes`` plus ``activations`` bytes (per GPU: ZeRO does not shard activations)."""
    if not (isinstance(activations, int | float) and not isinstance(activations, bool)
            and math.isfinite(activations) and activations >= 0):
        raise ValueError(f"activations must be a finite number of bytes >= 0, got {activations!r}")
    states = model_state_bytes(n_params, precision=precision, optimizer=optimizer, zero_stage=zero_stage,
                               world_size=world_size)
    return MemoryBreakdown(states.parameters, states.gradients, states.optimizer_states, float(activations))


# ----------------------------------------------------------------------------------------------------
# The instruments


def storage_nbytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and shared tensors count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"expected tensors, got {type(t).__name__}")
        storage = t.untyped_storage()
        seen.setdefault(storage.data_ptr(), storage.nbytes())
    return sum(seen.values())


def _held_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes a rank holds for ``tensors``: distinct storages once; a DTensor (FSDP2) counts its local
    shard's elements, not the padded buffer behind it."""
    plain, sharded = [], 0
    for t in tensors:
        if hasattr(t, "to_local"):  # a DTensor: only this rank's shard lives here
            local = t.to_local()
            sharded += local.numel() * local.element_size()
        else:
            plain.append(t)
    return storage_nbytes(plain) + sharded


def measure_model_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                         *, extra_parameters: Iterable[torch.Tensor] = (),
                         step_counters: bool = True) -> MemoryBreakdown:
    """Bytes of the parameters, their ``.grad`` and the optimizer's state tensors that this process holds.

    ``extra_parameters``: more weights the run keeps (e.g. fp32 master copies whose gradients are
    freed after each step), counted with the optimizer states, as the ZeRO paper's K does.
    Optimizer states include Adam's ``step`` counters (one 4-byte scalar tensor per parameter tensor on
    CPU) unless ``step_counters=False``, which counts what the ZeRO formula counts. Under FSDP2 the
    parameters, gradients and states are DTensors and only the local shards count.
    """
    params = list(model.parameters())
    grads = [p.grad for p in params if p.grad is not None]
    states: list[torch.Tensor] = list(extra_parameters)
    if optimizer is not None:
        for state in optimizer.state.values():
            states += [v for v in state.values()
                       if isinstance(v, torch.Tensor) and (step_counters or v.dim() > 0)]
    return MemoryBreakdown(parameters=float(_held_bytes(params)), gradients=float(_held_bytes(grads)),
                           optimizer_states=float(_held_bytes(states)))


class SavedTensorBytes:
    """Context manager: the bytes of every tensor autograd saves for backward inside the block.

        with SavedTensorBytes(exclude=model.parameters()) as saved:
            loss = model(x, y)[1]
        saved.nbytes   # activations kept alive until backward

    Storages are counted once; tensors sharing a storage with ``exclude`` (the weights, which exist
    anyway) are left out. Under non-reentrant activation checkpointing the tensors saved inside a
    checkpointed region are replaced by recomputation and are not seen, only the region's inputs are:
    that is exactly what checkpointing keeps. ``by_dtype`` splits the total by dtype.
    """

    def __init__(self, *, exclude: Iterable[torch.Tensor] = ()):
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._seen: dict[int, tuple[int, torch.dtype]] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._exclude and ptr not in self._seen:
            self._seen[ptr] = (storage.nbytes(), t.dtype)
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> SavedTensorBytes:
        self._seen.clear()
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)

    @property
    def nbytes(self) -> int:
        return sum(n for n, _ in self._seen.values())

    @property
    def by_dtype(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n, dtype in self._seen.values():
            key = str(dtype).removeprefix("torch.")
            out[key] = out.get(key, 0) + n
        return out


class LiveTensorPeak(TorchDispatchMode):
    """Context manager: the peak total size of the tensor storages created inside the block and alive.

    Every PyTorch operator run inside (forward, backward, optimizer step: they all go through the
    dispatcher) reports its outputs; a storage that is new (not one of the operator's inputs, so views
    and in-place results do not count) is added with its size in bytes, and removed when it is freed.
    ``current`` is the total alive now, ``peak`` its maximum, checked after each operator. Tensors that
    existed before the block (weights, the batch) are not counted; memory inside a kernel (scratch
    space) and the allocator's rounding are not seen. On a GPU, ``torch.cuda.max_memory_allocated`` is
    the allocator's own view of the same quantity.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, ptr: int) -> None:
        self.current -= self._live.pop(ptr, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                ptr = storage.data_ptr()
                if ptr and ptr not in inputs and ptr not in self._live:
                    self._live[ptr] = storage.nbytes()
                    self.current += storage.nbytes()
                    weakref.finalize(storage, self._free, ptr)
        self.peak = max(self.peak, self.current)
        return out


# ----------------------------------------------------------------------------------------------------
# ZeRO, measured: PyTorch's own sharding code, on real processes (gloo) or on a fake process group


def measure_sharded_model_states(config: Any, *, world_size: int = 2, batch_size: int = 4,
                                 backend: str = "gloo") -> dict[str, list[dict[str, float]]]:
    """Run one AdamW step of ``TinyGPT(config)`` as each of ``world_size`` data-parallel ranks and
    measure, on each rank, the bytes of its parameters, gradients and optimizer states:

    * ``"ddp"`` (ZeRO stage 0): every rank holds everything;
    * ``"zero1"``: ``torch.distributed.optim.ZeroRedundancyOptimizer``, ZeRO stage 1 (a rank keeps the
      Adam states of the parameters assigned to it; PyTorch assigns whole tensors, greedily by size);
    * ``"fsdp"``: FSDP2 ``fully_shard`` on each block and on the model, ZeRO stage 3 (a rank keeps a
      1/world_size shard of every parameter, of its gradient and of its Adam states, padded so that
      every rank's shard has the same size).

    ``backend="gloo"`` spawns ``world_size`` processes that really communicate (seconds each, to start
    Python and import torch). ``backend="fake"`` runs the ranks one after the other in this process on
    PyTorch's fake process group (``torch.testing._internal.distributed.fake_pg``): the same sharding
    code, collectives that do nothing, so sizes are right and values are not (fast; for notebooks).
    Returns ``{"ddp": [rank 0, rank 1, ...], "zero1": [...], "fsdp": [...]}``, each a
    ``MemoryBreakdown.as_dict()``.
    """
    world_size = _check_int("world_size", world_size, 1)
    _check_choice("backend", backend, ("gloo", "fake"))
    batch_size = _check_int("batch_size", batch_size, 1)
    if backend == "fake":
        import torch.distributed as dist
        from torch.testing._internal.distributed.fake_pg import FakeStore

        by_rank = {}
        for rank in range(world_size):
            dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world_size)
            try:
                by_rank[rank] = _measure_rank(config, batch_size, rank)
            finally:
                dist.destroy_process_group()
    else:
        import socket

        import torch.multiprocessing as mp

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        mp.start_processes(_gloo_worker, args=(world_size, port, config, batch_size, queue),
                           nprocs=world_size, start_method="spawn", join=True)
        by_rank = dict(queue.get() for _ in range(world_size))
    results: dict[str, list[dict[str, float]]] = {}
    for rank in range(world_size):
        for name, values in by_rank[rank].items():
            results.setdefault(name, []).append(values)
    return results


def _gloo_worker(rank: int, world_size: int, port: int, config: Any, batch_size: int, queue: Any) -> None:
    import os

    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        queue.put((rank, _measure_rank(config, batch_size, rank)))
    finally:
        dist.destroy_process_group()


def _measure_rank(config: Any, batch_size: int, rank: int) -> dict[str, dict[str, float]]:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer

    from bigtrain_lab.models import TinyGPT

    generator = torch.Generator().manual_seed(rank)
    x = torch.randint(0, config.vocab_size, (batch_size, config.block_size), generator=generator)

    def build_and_step(wrap: Any = None, zero: bool = False) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = TinyGPT(config)
        if wrap is not None:
            for block in model.transformer.h:
                wrap(block)
            wrap(model)
        if zero:
            optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, lr=1e-3)
        else:
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        _, loss = model(x, x.roll(-1, dims=1))
        loss.backward()
        optimizer.step()
        return model, optimizer

    out: dict[str, dict[str, float]] = {}
    model, optimizer = build_and_step()  # plain DDP: the all-reduce changes values, not what is kept
    out["ddp"] = measure_model_states(model, optimizer).as_dict()
    model, optimizer = build_and_step(zero=True)
    out["zero1"] = measure_model_states(model, optimizer.optim).as_dict()
    model, optimizer = build_and_step(wrap=fully_shard)
    # FSDP2 parameters, gradients and Adam states are DTensors: count this rank's local shard
    shards = _LocalShards(model, optimizer)
    out["fsdp"] = measure_model_states(shards, shards).as_dict()
    return out


class _LocalShards(torch.nn.Module):
    """Presents the local shards of an FSDP2 model and its optimizer to ``measure_model_states``."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        super().__init__()
        local = [p.to_local() if hasattr(p, "to_local") else p for p in model.parameters()]
        for p, shard in zip(model.parameters(), local, strict=True):
            if p.grad is not None:
                shard.grad = p.grad.to_local() if hasattr(p.grad, "to_local") else p.grad
        self._shards = local
        self.state = {i: {k: v.to_local() if hasattr(v, "to_local") else v for k, v in s.items()}
                      for i, s in enumerate(optimizer.state.values())}

    def parameters(self, recurse: bool = True):  # noqa: ARG002
        return iter(self._shards)
