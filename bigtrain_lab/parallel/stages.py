"""TinyGPT cut into pipeline stages, and one rank's executor of a schedule (``pipeline.pipeline_schedule``).

**Splitting.** Stage 0 holds the token and position embeddings and the first blocks; the last stage the last
blocks, ``ln_f`` and the head; the stages in between only blocks (``stage_layers`` spreads the blocks as evenly
as possible). TinyGPT *ties* the head to the token embedding (one matrix, ``wte.weight is lm_head.weight``). Cut
in two, the matrix lives on two ranks: stage 0 uses it to embed, the last stage to produce logits. Each holds
a copy, initialised alike; after the backward the two partial gradients (embedding's and head's) are summed
by an all-reduce between those two ranks (``sync_tied_gradients``), so both copies take the same AdamW step and
stay equal -- what Megatron-LM does with its "embedding group". Untying (two independent matrices) would
train a different model than one process does. The gradient-norm clip is computed over the stages' gradients
together, the tied matrix counted once (``clip_pipeline_grad_norm``).

**Executing.** ``run_schedule`` runs one stage's list of operations for one optimizer step: ``F(mb)`` receives
the activation from the previous rank (stage 0: embeds the tokens), runs its blocks and sends the output to the
next rank (last stage: the loss, divided by ``m`` so that the summed gradients are those of the mean over the
whole batch); ``B(mb)`` receives the gradient of its output from the next rank (last stage: backward of the
loss), back-propagates and sends the gradient of its input to the previous rank. Sends are posted with
``isend`` and batched with the next receive (``batch_isend_irecv``, as Megatron's
``send_forward_recv_backward``), so two neighbours sending to each other at the same time do not deadlock.
Each operation's compute time is recorded (``Event``), and the bytes of activations held for the backward.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.models import TinyGPT
from bigtrain_lab.parallel.pipeline import Event

__all__ = ["GPTStage", "StepRecord", "clip_pipeline_grad_norm", "gather_full_state_dict", "run_schedule",
           "split_model", "stage_layers", "sync_tied_gradients", "tied_group"]


def stage_layers(n_layer: int, num_stages: int) -> list[range]:
    """The blocks of each stage: ``n_layer`` split into ``num_stages`` consecutive runs, the first
    ``n_layer % num_stages`` stages one block longer (a stage may get none when ``num_stages > n_layer``)."""
    for name, v in (("n_layer", n_layer), ("num_stages", num_stages)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    base, extra = divmod(n_layer, num_stages)
    out, start = [], 0
    for s in range(num_stages):
        n = base + (1 if s < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


class GPTStage(nn.Module):
    """Stage ``stage`` of ``num_stages`` of a TinyGPT: the model's own modules (not copies).

    ``forward(x, targets=None)``: stage 0 takes token ids ``(B, T)``, the others the hidden states
    ``(B, T, C)``; the last stage returns the mean cross-entropy against ``targets`` (or the logits without
    targets), the others the hidden states. ``model_keys`` maps this stage's parameter names to TinyGPT's.
    """

    def __init__(self, model: TinyGPT, stage: int, num_stages: int):
        super().__init__()
        if not isinstance(model, TinyGPT):
            raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < num_stages:
            raise ValueError(f"stage must be in 0..{num_stages - 1}, got {stage!r}")
        layers = stage_layers(model.config.n_layer, num_stages)[stage]
        self.stage, self.num_stages = stage, num_stages
        self.is_first, self.is_last = stage == 0, stage == num_stages - 1
        self.block_size = model.config.block_size
        tr = model.transformer
        self.wte = tr.wte if self.is_first else None
        self.wpe = tr.wpe if self.is_first else None
        self.drop = tr.drop if self.is_first else None
        self.h = nn.ModuleList(tr.h[i] for i in layers)
        self.ln_f = tr.ln_f if self.is_last else None
        self.lm_head = model.lm_head if self.is_last else None
        self.layers = layers
        # stage names -> TinyGPT names (the tied matrix under both of TinyGPT's names where this stage has it)
        full = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            full.setdefault(id(p), []).append(name)
        self.model_keys: dict[str, list[str]] = {
            name: full[id(p)] for name, p in self.named_parameters(remove_duplicate=False)}

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_first:
            if x.dim() != 2 or x.dtype != torch.long:
                raise ValueError(f"stage 0 takes token ids (B, T) int64, got {tuple(x.shape)} {x.dtype}")
            pos = torch.arange(x.size(1), device=x.device)
            x = self.drop(self.wte(x) + self.wpe(pos))
        for block in self.h:
            x, _ = block(x)
        if not self.is_last:
            return x
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    def tied_weight(self) -> nn.Parameter | None:
        """The embedding/head matrix when it is split across two ranks and this stage holds a copy."""
        if self.num_stages == 1:
            return None
        if self.is_first:
            return self.wte.weight
        return self.lm_head.weight if self.is_last else None

    def model_state_dict(self) -> dict[str, torch.Tensor]:
        """This stage's parameters (and buffers) under TinyGPT's names, detached, on the CPU."""
        out = {}
        for name, p in self.named_parameters(remove_duplicate=False):
            for key in self.model_keys[name]:
                out[key] = p.detach().cpu().clone()
        return out


def split_model(model: TinyGPT, num_stages: int) -> list[GPTStage]:
    """All ``num_stages`` stages of ``model`` (one process simulating the pipeline; a rank keeps its own)."""
    return [GPTStage(model, s, num_stages) for s in range(num_stages)]


def tied_group(num_stages: int):
    """The process group of the first and last ranks, which hold the tied matrix (None when one rank holds it).
    Every rank must call it (``dist.new_group`` is collective)."""
    if num_stages == 1:
        return None
    return dist.new_group([0, num_stages - 1])


def sync_tied_gradients(stage: GPTStage, group) -> None:
    """Sum the tied matrix's gradient over the first and last ranks (embedding part + head part)."""
    w = stage.tied_weight()
    if w is None:
        return
    if w.grad is None:
        w.grad = torch.zeros_like(w)
    dist.all_reduce(w.grad, group=group)


def clip_pipeline_grad_norm(stage: GPTStage, max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` over the whole pipeline: the squared gradient norms of every stage summed by an
    all-reduce (the tied matrix counted on the first stage only), then every stage scales by the same
    ``min(1, max_norm / (norm + 1e-6))``. Returns the norm before clipping. Call after ``sync_tied_gradients``."""
    params = [p for p in stage.parameters() if p.grad is not None]
    skip = stage.tied_weight() if stage.is_last and not stage.is_first else None
    local = [p.grad for p in params if p is not skip]
    device = params[0].grad.device if params else torch.device("cpu")
    sq = (torch.stack([g.detach().float().pow(2).sum() for g in local]).sum() if local
          else torch.zeros((), device=device))
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(sq)
    norm = sq.sqrt()
    if max_norm > 0:
        coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for p in params:
            p.grad.detach().mul_(coef.to(p.grad.dtype))
    return norm


def gather_full_state_dict(stage: GPTStage, keys: Sequence[str]) -> dict[str, torch.Tensor] | None:
    """The full TinyGPT state_dict on rank 0 (None elsewhere), gathered from every stage, in ``keys`` order
    (``TinyGPT.state_dict()``'s). A collective: every rank calls it."""
    part = stage.model_state_dict()
    world = dist.get_world_size()
    parts: list[dict] | None = [None] * world if dist.get_rank() == 0 else None  # type: ignore[list-item]
    dist.gather_object(part, parts, dst=0)
    if parts is None:
        return None
    merged: dict[str, torch.Tensor] = {}
    for p in parts:
        for k, v in p.items():
            merged.setdefault(k, v)
    missing = [k for k in keys if k not in merged]
    if missing:
        raise RuntimeError(f"no stage holds {missing[:5]}")
    return {k: merged[k] for k in keys}


@dataclass
class StepRecord:
    """One step of one stage: ``loss`` (last stage: the batch's mean loss, else None), the compute
    ``events`` (times in seconds from ``clock_start``), the peak bytes of activations held for the backward
    and the peak number of micro-batches in flight."""

    loss: torch.Tensor | None
    events: list[Event] = field(default_factory=list)
    peak_activation_bytes: int = 0
    peak_in_flight: int = 0


class _Saved:
    """Storages autograd saves for backward inside the block (weights excluded), counted once."""

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
        self.seen: dict[int, int] = {}
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in self.exclude:
            self.seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    def add(self, t: torch.Tensor) -> None:
        s = t.untyped_storage()
        self.seen.setdefault(s.data_ptr(), s.nbytes())


class _P2P:
    """Point-to-point with the neighbours: sends wait to be batched with the next receive."""

    def __init__(self):
        self.pending: list[dist.P2POp] = []
        self.works: list = []
        self.keep: list[torch.Tensor] = []  # send buffers alive until their sends complete

    def send(self, tensor: torch.Tensor, peer: int) -> None:
        tensor = tensor.contiguous()
        self.keep.append(tensor)
        self.pending.append(dist.P2POp(dist.isend, tensor, peer))

    def flush(self, recv: tuple[torch.Tensor, int] | None = None) -> None:
        ops = list(self.pending)
        self.pending.clear()
        if recv is not None:
            ops.append(dist.P2POp(dist.irecv, recv[0], recv[1]))
        if not ops:
            return
        works = dist.batch_isend_irecv(ops)
        if recv is not None:
            works[-1].wait()
            self.works += works[:-1]
        else:
            self.works += works

    def finish(self) -> None:
        self.flush()
        for w in self.works:
            w.wait()
        self.works.clear()
        self.keep.clear()


def run_schedule(stage: GPTStage, ops: Sequence[tuple[str, int]], inputs: Sequence[torch.Tensor] | None,
                 targets: Sequence[torch.Tensor] | None, *, hidden_shape: Sequence[int],
                 dtype: torch.dtype = torch.float32, clock_start: float | None = None) -> StepRecord:
    """Run this rank's operations ``ops`` (stage ``stage.stage``, rank = stage index) for one step.

    ``inputs[mb]``: token ids of micro-batch ``mb`` (stage 0); ``targets[mb]`` (last stage); ``hidden_shape``:
    ``(micro_batch, T, C)`` of the activations that travel between stages. Gradients accumulate in the
    parameters' ``.grad`` (each micro-batch's loss divided by ``m``); the caller then syncs the tied matrix,
    clips and steps.
    """
    ops = [(str(k), int(mb)) for k, mb in ops]
    m = len(ops) // 2
    position = {op: i for i, op in enumerate(ops)}
    if sorted(ops) != sorted([(k, i) for k in "FB" for i in range(m)]) or any(
            position[("B", i)] < position[("F", i)] for i in range(m)):
        raise ValueError(f"stage {stage.stage}: ops must run F and B of micro-batches 0..m-1 once each, every B "
                         f"after its F, got {ops}")
    if stage.is_first and (inputs is None or len(inputs) < m):
        raise ValueError(f"the first stage needs {m} micro-batches of inputs")
    if stage.is_last and (targets is None or len(targets) < m):
        raise ValueError(f"the last stage needs {m} micro-batches of targets")
    params = list(stage.parameters())
    if not params:
        raise ValueError(f"stage {stage.stage} holds no parameters (no blocks between the embeddings and the head): "
                         f"use at least as many blocks as stages")
    device = params[0].device
    rank, prev, nxt = stage.stage, stage.stage - 1, stage.stage + 1
    exclude = {p.untyped_storage().data_ptr() for p in stage.parameters()}
    start = time.perf_counter() if clock_start is None else clock_start
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    comm = _P2P()
    held: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}  # mb -> (input, output, bytes)
    record = StepRecord(loss=torch.zeros((), device=device) if stage.is_last else None)
    in_use = 0
    for kind, mb in ops:
        if kind == "F":
            if stage.is_first:
                comm.flush()
                x = inputs[mb].to(device)
            else:
                x = torch.empty(tuple(hidden_shape), dtype=dtype, device=device)
                comm.flush((x, prev))
                x.requires_grad_()
            t0 = time.perf_counter() - start
            saved = _Saved(exclude)
            with saved.hooks:
                out = stage(x, targets[mb].to(device)) if stage.is_last else stage(x)
            if stage.is_last:
                out = out / m
                record.loss += out.detach()
            else:
                saved.add(out)
            if not stage.is_first:
                saved.add(x)
            nbytes = sum(saved.seen.values())
            held[mb] = (x, out, nbytes)
            in_use += nbytes
            record.peak_activation_bytes = max(record.peak_activation_bytes, in_use)
            record.peak_in_flight = max(record.peak_in_flight, len(held))
            sync()
            record.events.append(Event(rank, "F", mb, t0, time.perf_counter() - start))
            if not stage.is_last:
                comm.send(out.detach(), nxt)
        else:
            x, out, nbytes = held.pop(mb)
            if stage.is_last:
                comm.flush()
                grad = None
            else:
                grad = torch.empty_like(out)
                comm.flush((grad, nxt))
            t0 = time.perf_counter() - start
            torch.autograd.backward(out, grad)
            in_use -= nbytes
            sync()
            record.events.append(Event(rank, "B", mb, t0, time.perf_counter() - start))
            if not stage.is_first:
                comm.send(x.grad, prev)
    comm.finish()
    return record
