"""A 3-D (DP, TP, PP, ZeRO) planner: memory per GPU, step time and MFU of every valid plan of a model on a cluster.

``plans(model, hardware, nodes, global_batch)`` enumerates the plans, ``estimate(model, hardware, plan)`` prices
one. Everything it assumes is written here (and in ``Assumptions``), so that a wrong guess can be found:

Placement (Megatron's order): TP ranks are innermost, inside one node (``tp`` divides ``gpus_per_node``); then
PP stages; then DP replicas outermost. A group whose ranks fit in one node talks at ``intra_bandwidth``, one that
spans nodes at ``inter_bandwidth`` (per GPU, one direction: a ring crossing nodes is limited by its slowest link).

Memory per GPU (bytes), the largest over the first and the last pipeline stage:
  * model states: ``formulas.training_memory_per_gpu`` (weights / gradients / optimizer states split over
    ``tp * pp``, then ZeRO over ``dp``); parameters are assumed spread evenly over the stages;
  * activations: ``formulas.activation_bytes_per_layer`` (Korthikanti et al. 2022) x layers per stage x the
    micro-batches in flight: with 1F1B the first stage holds ``min(pp, grad_accum)`` (the last one 1);
    interleaving ``v`` chunks multiplies the first stage's by ``1 + (pp - 1) / (pp v)``; with full
    recomputation one layer's activations are rebuilt in full during its backward (added once);
    ``activation_scale`` = ``dtype_bytes / 2`` scales the 16-bit formula (2 for fp32 on a CPU);
  * logits on the last stage: ``4 s b V / tp`` bytes (fp32 logits kept for the cross-entropy's backward,
    vocabulary-parallel over TP). Buffers, fragmentation and the CUDA context are not counted: a plan *fits*
    when the total is at most ``usable_memory`` (default 0.9) of the GPU's memory.

Step time (seconds) of one optimizer step of ``global_batch`` sequences of ``seq`` tokens:
  * compute: model FLOPs ``global_batch * seq * (6 N + 12 L h s)`` (``formulas.flops_per_token``) plus the
    recomputed forward (full: ``2 N_layers + 4 L h s`` per token; selective: attention's ``4 L h s``), spread
    evenly over all GPUs at ``compute_efficiency * peak_flops``;
  * TP: 4 all-reduces (forward 2, backward 2; 6 with full recomputation) of ``s b h`` activations
    (``dtype_bytes`` each) per layer and micro-batch, a ring over ``tp`` GPUs inside the node, not overlapped
    (with sequence parallelism, a reduce-scatter plus an all-gather move the same bytes: same time);
  * PP: each micro-batch sends its activations forward and their gradients back, ``s b h / tp`` elements each
    way (Megatron's scatter-gather), not overlapped;
  * bubble: the stage's busy time x ``1 + (pp - 1) / (v m)`` (= ``1 / (1 - bubble_fraction(pp, m))`` for
    ``v = 1``), ``m = grad_accum`` micro-batches;
  * DP: a ring all-reduce of the stage's gradients (``N / (tp pp)`` x ``grad_comm_bytes``, one bucket: latency
    paid once per ring step); with ``overlap_dp`` it runs during the last micro-batch's backward (two thirds of
    its compute) and only what sticks out is added; without, all of it is added. ZeRO-3 (FSDP) instead gathers
    each unit's weights (every layer of the stage, plus the root) twice per micro-batch (forward, backward) and
    reduce-scatters the gradients once per step (Rajbhandari et al. 2020: 1.5x an all-reduce's bytes at one
    micro-batch), a latency per unit and ring step; with ``overlap_dp`` the gathers are prefetched, so only what
    exceeds the whole compute time is added. The optimizer step, data loading and kernel launch gaps are left out.
MFU = model FLOPs (no recomputation) / (step time x GPUs x peak), as Korthikanti et al. 2022 define it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bigtrain_lab.estimate.formulas import (
    RECOMPUTE,
    activation_bytes_per_layer,
    allreduce_seconds,
    flops_per_token,
    training_memory_per_gpu,
    transformer_params,
)

__all__ = ["A100_80GB", "HARDWARE", "H100_SXM", "MODELS", "Assumptions", "Hardware", "ModelShape", "Plan",
           "PlanEstimate", "as_dict", "cpu_assumptions", "estimate", "gloo_allreduce_probe", "invalid_reasons",
           "matmul_flops_probe", "measure_cpu_hardware", "plan_rows", "plans"]


def _int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _pos(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Hardware:
    """One accelerator and its links. Bandwidths are bytes/s per GPU in one direction."""

    name: str
    peak_flops: float  # dense FLOP/s of one GPU in the training dtype
    memory_bytes: float
    intra_bandwidth: float  # inside a node (NVLink)
    inter_bandwidth: float  # between nodes (InfiniBand / RoCE), per GPU
    gpus_per_node: int
    latency: float = 0.0  # seconds per ring step
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("peak_flops", "memory_bytes", "intra_bandwidth", "inter_bandwidth"):
            _pos(name, getattr(self, name))
        _int("gpus_per_node", self.gpus_per_node)
        if not (isinstance(self.latency, (int, float)) and self.latency >= 0):
            raise ValueError(f"latency must be >= 0, got {self.latency!r}")


#: NVIDIA H100 SXM5 80 GB: 989 TFLOP/s dense bf16, NVLink 4 (900 GB/s both directions per GPU), one 400 Gb/s
#: InfiniBand NIC per GPU (DGX H100). Bandwidths are link rates: ``Assumptions.comm_efficiency`` takes a share.
H100_SXM = Hardware("H100-SXM", 989e12, 80e9, 450e9, 50e9, 8, latency=5e-6,
                    source="NVIDIA H100 datasheet (dense bf16 989 TFLOP/s, NVLink 900 GB/s); DGX H100: 8x 400 Gb/s")
#: NVIDIA A100 SXM 80 GB: 312 TFLOP/s dense bf16, NVLink 3 (600 GB/s both directions), 200 Gb/s HDR per GPU
#: (DGX A100, as on Selene, the cluster of Narayanan et al. 2021).
A100_80GB = Hardware("A100-80GB", 312e12, 80e9, 300e9, 25e9, 8, latency=5e-6,
                     source="NVIDIA A100 datasheet (bf16 312 TFLOP/s, NVLink 600 GB/s); DGX A100: 8x 200 Gb/s HDR")
HARDWARE = {"H100-SXM": H100_SXM, "A100-80GB": A100_80GB}


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer: layers, hidden, heads, vocab, sequence length (tokens per sample).

    ``n_params`` overrides the count from the shape (``formulas.transformer_params``), e.g. a model's exact
    count with biases and position embeddings."""

    layers: int
    hidden: int
    heads: int
    vocab: int
    seq: int
    kv_heads: int | None = None
    ffn_hidden: int | None = None
    gated_mlp: bool = False
    tied_embeddings: bool = True
    n_params: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "vocab", "seq"):
            _int(name, getattr(self, name))
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.n_params is not None:
            _int("n_params", self.n_params)
        self.shape_params  # noqa: B018 - refuse bad kv_heads / ffn_hidden here

    @property
    def shape_params(self) -> int:
        return transformer_params(self.layers, self.hidden, self.vocab, n_heads=self.heads,
                                  n_kv_heads=self.kv_heads, ffn_hidden=self.ffn_hidden, gated_mlp=self.gated_mlp,
                                  tied_embeddings=self.tied_embeddings)

    @property
    def params(self) -> int:
        return self.shape_params if self.n_params is None else self.n_params

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def flops_per_token(self) -> float:
        return flops_per_token(self.params, self.layers, self.hidden, self.seq)


#: shapes of published models (Narayanan et al. 2021 Table 1 and Korthikanti et al. 2022 Table 3 use s = 2048 and
#: V = 51200; Llama 2: Touvron et al. 2023, 4k context, vocabulary 32000, SwiGLU, GQA with 8 KV heads on 70B)
MODELS = {
    "GPT-3 175B": ModelShape(96, 12288, 96, 51200, 2048, name="GPT-3 175B"),
    "Llama-2 7B": ModelShape(32, 4096, 32, 32000, 4096, ffn_hidden=11008, gated_mlp=True, tied_embeddings=False,
                             name="Llama-2 7B"),
    "Llama-2 70B": ModelShape(80, 8192, 64, 32000, 4096, kv_heads=8, ffn_hidden=28672, gated_mlp=True,
                              tied_embeddings=False, name="Llama-2 70B"),
    "GPT 1T": ModelShape(128, 25600, 160, 51200, 2048, name="GPT 1T"),
}


@dataclass(frozen=True)
class Plan:
    """``dp * tp * pp`` GPUs; each DP replica runs ``grad_accum`` micro-batches of ``micro_batch`` sequences per
    step (through the pipeline when ``pp > 1``): global batch = ``dp * micro_batch * grad_accum``."""

    dp: int
    tp: int = 1
    pp: int = 1
    zero_stage: int = 0
    micro_batch: int = 1
    grad_accum: int = 1

    def __post_init__(self) -> None:
        for name in ("dp", "tp", "pp", "micro_batch", "grad_accum"):
            _int(name, getattr(self, name))
        if isinstance(self.zero_stage, bool) or self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage!r}")

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def global_batch(self) -> int:
        return self.dp * self.micro_batch * self.grad_accum


@dataclass(frozen=True)
class Assumptions:
    """The knobs of the estimate (see the module docstring). Defaults: bf16 mixed-precision AdamW on GPUs."""

    compute_efficiency: float = 0.55  # share of peak the layers' kernels reach (Megatron: ~0.5-0.6 on A100/H100)
    comm_efficiency: float = 0.8  # share of the link rate a ring collective reaches (nccl-tests bus bandwidth)
    recompute: str = "selective"  # "none", "selective" or "full" (Korthikanti et al. 2022)
    sequence_parallel: bool = True
    interleave: int = 1  # virtual stages per GPU (Megatron's interleaved 1F1B)
    overlap_dp: bool = True
    dtype_bytes: int = 2  # activations and TP / PP messages
    state_bytes: tuple[float, float, float] = (2, 2, 12)  # weights, gradients, optimizer states per parameter
    grad_comm_bytes: float = 2  # bytes per gradient element in the DP all-reduce
    usable_memory: float = 0.9  # share of the GPU's memory a plan may use

    def __post_init__(self) -> None:
        for name in ("compute_efficiency", "comm_efficiency", "usable_memory"):
            if not 0 < _pos(name, getattr(self, name)) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.recompute not in RECOMPUTE:
            raise ValueError(f"recompute must be one of {RECOMPUTE}, got {self.recompute!r}")
        _int("interleave", self.interleave)
        _int("dtype_bytes", self.dtype_bytes)


@dataclass(frozen=True)
class PlanEstimate:
    """What ``estimate`` predicts for one plan. Bytes are per GPU (worst pipeline stage), times per step."""

    plan: Plan
    memory: dict[str, float]  # weights, gradients, optimizer states, activations, logits
    memory_per_gpu: float
    fits: bool
    times: dict[str, float]  # compute, tp_comm, pp_comm, bubble, dp_comm (exposed), dp_comm_total
    step_seconds: float
    mfu: float
    model_flops: float
    tokens_per_second: float
    hardware_flops: float = 0.0  # model FLOPs plus the recomputed forward
    notes: tuple[str, ...] = field(default_factory=tuple)

    def row(self) -> dict[str, Any]:
        """A flat dict for a table."""
        p = self.plan
        return {"dp": p.dp, "tp": p.tp, "pp": p.pp, "zero": p.zero_stage, "micro_batch": p.micro_batch,
                "grad_accum": p.grad_accum, "memory_gib": self.memory_per_gpu / 2**30,
                "step_s": self.step_seconds, "mfu": self.mfu, "fits": self.fits}


def _bandwidth(hardware: Hardware, ranks_in_node: int) -> float:
    return hardware.intra_bandwidth if ranks_in_node <= hardware.gpus_per_node else hardware.inter_bandwidth


def estimate(model: ModelShape, hardware: Hardware, plan: Plan, assumptions: Assumptions | None = None
             ) -> PlanEstimate:
    """Memory per GPU, step time and MFU of ``plan`` (the rules are the module docstring's)."""
    if not isinstance(model, ModelShape) or not isinstance(hardware, Hardware) or not isinstance(plan, Plan):
        raise TypeError("estimate(model: ModelShape, hardware: Hardware, plan: Plan)")
    a = Assumptions() if assumptions is None else assumptions
    problems = invalid_reasons(model, hardware, plan)
    if problems:
        raise ValueError(f"invalid plan {plan}: {'; '.join(problems)}")
    s, b, h, L, V = model.seq, plan.micro_batch, model.hidden, model.layers, model.vocab
    tp, pp, dp, m, v = plan.tp, plan.pp, plan.dp, plan.grad_accum, a.interleave
    n = model.params
    pw, pg, po = a.state_bytes
    kw = {"dp": dp, "tp": tp, "pp": pp, "zero_stage": plan.zero_stage}
    weights = training_memory_per_gpu(n, **kw, param_bytes=pw, grad_bytes=0, optimizer_bytes=0)
    grads = training_memory_per_gpu(n, **kw, param_bytes=0, grad_bytes=pg, optimizer_bytes=0)
    optim = training_memory_per_gpu(n, **kw, param_bytes=0, grad_bytes=0, optimizer_bytes=po)
    scale = a.dtype_bytes / 2
    per_layer = scale * activation_bytes_per_layer(s, b, h, model.heads, tp=tp,
                                                   sequence_parallel=a.sequence_parallel, recompute=a.recompute)
    rebuild = 0.0
    if a.recompute == "full":
        rebuild = scale * activation_bytes_per_layer(s, b, h, model.heads, tp=tp,
                                                     sequence_parallel=a.sequence_parallel)
    layers_per_stage = L / pp
    in_flight = min(pp, m)
    interleave_factor = 1 + (pp - 1) / (pp * v) if (v > 1 and pp > 1) else 1.0
    first_acts = per_layer * layers_per_stage * in_flight * interleave_factor + rebuild
    last_acts = per_layer * layers_per_stage + rebuild
    logits = 4.0 * s * b * V / tp
    first, last = first_acts + (logits if pp == 1 else 0.0), last_acts + logits
    acts, logit_bytes = (first_acts, logits if pp == 1 else 0.0) if first >= last else (last_acts, logits)
    memory = {"weights": weights, "gradients": grads, "optimizer states": optim, "activations": acts,
              "logits": logit_bytes}
    total_mem = sum(memory.values())
    fits = total_mem <= a.usable_memory * hardware.memory_bytes

    tokens = plan.global_batch * s
    model_flops = tokens * model.flops_per_token
    attention = 4.0 * L * h * s  # forward FLOPs per token of Q K^T and A V
    extra = {"none": 0.0, "selective": attention,
             "full": 2.0 * max(n - model.embedding_params, 0) + attention}[a.recompute]
    gpus = plan.gpus
    compute = (model_flops + tokens * extra) / (gpus * hardware.peak_flops * a.compute_efficiency)
    lat = hardware.latency
    tp_comm = 0.0
    if tp > 1:
        per_layer_ar = 6 if a.recompute == "full" else 4
        bw = hardware.intra_bandwidth * a.comm_efficiency
        tp_comm = layers_per_stage * m * per_layer_ar * allreduce_seconds(a.dtype_bytes * s * b * h, tp, bw, lat)
    pp_comm = 0.0
    if pp > 1:
        bw = _bandwidth(hardware, tp * pp) * a.comm_efficiency
        pp_comm = m * 2 * (lat + a.dtype_bytes * s * b * h / tp / bw)
    busy = compute + tp_comm + pp_comm
    pipeline = busy * (1 + (pp - 1) / (v * m))
    bubble = pipeline - busy
    dp_total = 0.0
    shard = n / (tp * pp)
    if dp > 1:
        bw = _bandwidth(hardware, gpus) * a.comm_efficiency
        if plan.zero_stage == 3:  # per FSDP unit (each layer, plus the root): gather, gather again, scatter
            units = layers_per_stage + 1
            gather = (dp - 1) * (units * lat + shard * pw / (dp * bw))
            scatter = (dp - 1) * (units * lat + shard * a.grad_comm_bytes / (dp * bw))
            dp_total = m * 2 * gather + scatter
        else:
            dp_total = allreduce_seconds(shard * a.grad_comm_bytes, dp, bw, lat)
    if not a.overlap_dp:
        hidden_behind = 0.0
    elif plan.zero_stage == 3:
        hidden_behind = compute  # the gathers are prefetched during every micro-batch's compute
    else:
        hidden_behind = (2 / 3) * compute / m  # the last micro-batch's backward
    dp_exposed = max(0.0, dp_total - hidden_behind)
    step = pipeline + dp_exposed
    times = {"compute": compute, "tp_comm": tp_comm, "pp_comm": pp_comm, "bubble": bubble,
             "dp_comm": dp_exposed, "dp_comm_total": dp_total}
    mfu = model_flops / (step * gpus * hardware.peak_flops)
    return PlanEstimate(plan, memory, total_mem, fits, times, step, mfu, model_flops, tokens / step,
                        model_flops + tokens * extra)


def invalid_reasons(model: ModelShape, hardware: Hardware, plan: Plan) -> list[str]:
    """Why ``plan`` cannot run ``model`` on ``hardware`` (empty when it can)."""
    why = []
    if plan.tp > hardware.gpus_per_node or hardware.gpus_per_node % plan.tp:
        why.append(f"tp={plan.tp} must divide the {hardware.gpus_per_node} GPUs of a node (TP stays inside one)")
    if model.heads % plan.tp or (model.kv_heads or model.heads) % plan.tp:
        why.append(f"tp={plan.tp} must divide the attention heads ({model.heads}, KV {model.kv_heads or model.heads})")
    if model.layers % plan.pp:
        why.append(f"pp={plan.pp} must divide the {model.layers} layers")
    if plan.pp > 1 and plan.zero_stage > 1:
        why.append("ZeRO-2/3 shard what pipeline micro-batches accumulate or reuse: with pp > 1 use ZeRO <= 1")
    return why


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def plans(model: ModelShape, hardware: Hardware, nodes: int, global_batch: int, *,
          micro_batches: tuple[int, ...] = (1, 2, 4, 8), zero_stages: tuple[int, ...] = (0, 1, 2, 3),
          assumptions: Assumptions | None = None) -> list[PlanEstimate]:
    """Every valid plan using all ``nodes * gpus_per_node`` GPUs for ``global_batch`` sequences per step.

    Valid: ``dp * tp * pp`` = the GPUs, ``tp`` divides a node's GPUs and the heads, ``pp`` divides the layers,
    ``dp * micro_batch`` divides ``global_batch`` (grad_accum = the quotient), ZeRO <= 1 with ``pp > 1``, and
    ZeRO stages above 0 only with ``dp > 1`` (else they shard nothing). Sorted: plans that fit by step time,
    then those that do not by memory per GPU.
    """
    _int("nodes", nodes)
    _int("global_batch", global_batch)
    gpus = nodes * hardware.gpus_per_node
    out = []
    for tp in _divisors(hardware.gpus_per_node):
        for pp in _divisors(gpus // tp) if gpus % tp == 0 else []:
            dp = gpus // (tp * pp)
            for mb in micro_batches:
                if global_batch % (dp * mb):
                    continue
                for zero in zero_stages:
                    if zero and dp == 1:
                        continue
                    plan = Plan(dp, tp, pp, zero, mb, global_batch // (dp * mb))
                    if not invalid_reasons(model, hardware, plan):
                        out.append(estimate(model, hardware, plan, assumptions))
    return sorted(out, key=lambda e: (not e.fits, e.step_seconds if e.fits else e.memory_per_gpu))


def plan_rows(estimates: list[PlanEstimate], top: int | None = None) -> list[dict[str, Any]]:
    """``PlanEstimate.row()`` of the first ``top`` estimates (all when None)."""
    return [e.row() for e in (estimates if top is None else estimates[:top])]


# ---- this machine as a "GPU": measured probes ---------------------------------------------------------------


def matmul_flops_probe(m: int = 512, k: int = 256, n: int = 1024, *, repeats: int = 20, threads: int = 1) -> float:
    """FLOP/s of this CPU on an ``(m, k) @ (k, n)`` float32 matmul (``2 m k n`` FLOPs), best of ``repeats``,
    with ``threads`` torch threads (restored after)."""
    import torch

    for name, value in (("m", m), ("k", k), ("n", n), ("repeats", repeats), ("threads", threads)):
        _int(name, value)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, w = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            x @ w
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            x @ w
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 2.0 * m * k * n / best


def _allreduce_worker(rank: int, world: int, store: str, out: str, message_bytes: int, repeats: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        def timed(numel: int) -> float:
            x = torch.ones(numel)
            for _ in range(2):
                dist.all_reduce(x)
            best = math.inf
            for _ in range(repeats):
                dist.barrier()
                t0 = time.perf_counter()
                dist.all_reduce(x)
                best = min(best, time.perf_counter() - t0)
            return best

        big, small = timed(max(message_bytes // 4, 1)), timed(1)
        if rank == 0:
            Path(out).write_text(json.dumps({"big": big, "small": small}))
    finally:
        dist.destroy_process_group()


def gloo_allreduce_probe(message_bytes: int = 4 * 2**20, *, world_size: int = 2, repeats: int = 10
                         ) -> dict[str, float]:
    """Ring all-reduce speed between ``world_size`` local gloo processes (one thread each).

    Returns ``seconds`` (best of ``repeats`` for ``message_bytes`` of float32), ``latency`` (a 4-byte
    all-reduce's time / ``2 (n - 1)`` steps) and ``bandwidth``: the per-link bytes/s that makes
    ``formulas.allreduce_seconds(message_bytes, n, bandwidth, latency)`` equal the measured time."""
    import torch.multiprocessing as mp

    _int("message_bytes", message_bytes, 4)
    _int("world_size", world_size, 2)
    _int("repeats", repeats)
    with tempfile.TemporaryDirectory(prefix="bigtrain-gloo-probe-") as tmp:
        out = os.path.join(tmp, "result.json")
        mp.spawn(_allreduce_worker, args=(world_size, os.path.join(tmp, "store"), out, message_bytes, repeats),
                 nprocs=world_size, join=True)
        r = json.loads(Path(out).read_text())
    steps = 2 * (world_size - 1)
    latency = r["small"] / steps
    transfer = max(r["big"] - steps * latency, 1e-12)
    bandwidth = steps * (message_bytes / world_size) / transfer
    return {"seconds": r["big"], "latency": latency, "bandwidth": bandwidth, "message_bytes": message_bytes,
            "world_size": world_size}


def measure_cpu_hardware(*, processes: int = 2, matmul: tuple[int, int, int] = (512, 256, 1024),
                         message_bytes: int = 4 * 2**20, repeats: int = 10) -> tuple[Hardware, dict[str, Any]]:
    """This CPU as the planner's "GPU": ``processes`` gloo ranks of one thread each, all in one "node".

    ``peak_flops``: ``matmul_flops_probe(*matmul)`` (one thread); bandwidth and latency: ``gloo_allreduce_probe``;
    memory: the machine's RAM divided by ``processes``. Returns the ``Hardware`` and the probes' raw numbers.
    Use it with ``Assumptions(compute_efficiency=1, comm_efficiency=1, ...)``: the probes already measure what
    is reached, not a datasheet rate. (Takes a few seconds: two processes start.)"""
    _int("processes", processes, 2)
    flops = matmul_flops_probe(*matmul, repeats=repeats)
    ar = gloo_allreduce_probe(message_bytes, world_size=processes, repeats=repeats)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 * 2**30
    hw = Hardware("this CPU (gloo)", flops, ram / processes, ar["bandwidth"], ar["bandwidth"], processes,
                  latency=ar["latency"], source=f"measured: {matmul} fp32 matmul, gloo all-reduce of "
                                                f"{message_bytes} bytes over {processes} processes")
    return hw, {"matmul": list(matmul), "matmul_flops": flops, "allreduce": ar, "ram_bytes": ram}


def cpu_assumptions(**overrides: Any) -> Assumptions:
    """``Assumptions`` for fp32 AdamW on a CPU measured by ``measure_cpu_hardware``: efficiencies 1 (the probes
    measure what is reached), no recomputation or sequence parallelism, fp32 activations and messages
    (4 bytes), model states 4 + 4 + 8 bytes per parameter, DP gradients in fp32, overlapped (DDP buckets)."""
    base = Assumptions(compute_efficiency=1.0, comm_efficiency=1.0, recompute="none", sequence_parallel=False,
                       dtype_bytes=4, state_bytes=(4, 4, 8), grad_comm_bytes=4, usable_memory=1.0)
    return replace(base, **overrides)


def as_dict(e: PlanEstimate) -> dict[str, Any]:
    """A JSON-ready dict of an estimate."""
    d = asdict(e)
    d["notes"] = list(e.notes)
    return d
