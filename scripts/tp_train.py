r"""Train TinyGPT with tensor parallelism (Megatron-LM): every rank holds 1/N of each block's attention
heads and MLP columns, and all ranks see the SAME batches (TP = world size, no data parallelism).

    torchrun --standalone --nproc_per_node=2 scripts/tp_train.py --steps 20 --n-head 4     # 2 CPU processes
    torchrun --standalone --nproc_per_node=2 scripts/tp_train.py --impl dtensor             # PyTorch's DTensor TP
    torchrun --standalone --nproc_per_node=2 scripts/tp_train.py --sequence-parallel        # + sequence parallel
    torchrun --standalone --nproc_per_node=8 scripts/tp_train.py --tp 8 --device cuda --n-head 8  # 1 node x 8 GPUs

``--impl megatron``: the kit's modules (``bigtrain_lab.parallel.tensor``): column-parallel ``c_attn``
(q|k|v rows of the rank's heads) and ``c_fc``, row-parallel ``c_proj``; Megatron's ``f`` / ``g`` give
one all-reduce forward and one backward per attention and per MLP. ``--impl dtensor``:
``torch.distributed.tensor.parallel`` (``init_device_mesh``, ``parallelize_module`` with
``ColwiseParallel`` / ``RowwiseParallel``) does the sharding and inserts the same collectives from the
placements. ``--sequence-parallel`` (megatron): LayerNorms, dropouts and the residual stream work on a
1/N shard of the sequence; all-gather and reduce-scatter replace the all-reduces (same bytes moved).
Embeddings, LayerNorms and the tied lm_head are replicated. The gradient norm for clipping is the global
one (sharded parts summed over ranks). TP all-reduces sit on the critical path of every layer: keep TP
inside a node (NVLink), e.g. 2 nodes x 8 GPUs run TP 8 per node (with data parallelism across nodes,
which this script leaves out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn

from bigtrain_lab.distributed import micro_batches
from bigtrain_lab.distributed.env import exit_process
from bigtrain_lab.distributed.script import (
    Run,
    distributed_parser,
    gather_values,
    refuse_checkpoint_flags,
    report,
    run_script,
    run_steps,
    save_final,
)
from bigtrain_lab.memory import MemoryBreakdown, SavedTensorBytes, measure_model_states
from bigtrain_lab.parallel.comm import count_collectives
from bigtrain_lab.parallel.tensor import (
    clip_tensor_parallel_grads_,
    dtensor_full_state_dict,
    dtensor_tensor_parallel_gpt,
    gather_tensor_parallel_state_dict,
    sync_sequence_parallel_grads,
    tensor_parallel_gpt,
)
from bigtrain_lab.reproducibility import seed_everything
from bigtrain_lab.train import configure_adamw, to_device

SCRIPT = "scripts/tp_train.py"
IMPLS = ("megatron", "dtensor")


def build_parser() -> argparse.ArgumentParser:
    parser, group = distributed_parser(__doc__)
    group.add_argument("--tp", type=int, default=None, help="tensor-parallel size (default and only choice: "
                                                            "the world size)")
    group.add_argument("--impl", choices=IMPLS, default="megatron",
                       help="megatron: the kit's modules; dtensor: torch.distributed.tensor.parallel")
    group.add_argument("--sequence-parallel", action="store_true",
                       help="shard LayerNorm / dropout regions along the sequence (megatron impl)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    refuse_checkpoint_flags(args, "tp_train.py")
    if args.tp is not None and args.tp < 1:
        raise ValueError(f"--tp must be >= 1, got {args.tp}")
    if args.sequence_parallel and args.impl != "megatron":
        raise ValueError("--sequence-parallel needs --impl megatron")
    world = os.environ.get("WORLD_SIZE")
    if args.tp is not None and world is not None and args.tp != int(world):
        raise ValueError(f"--tp {args.tp} must equal the number of processes ({world}): this script runs TP only")



def measure_one_step(model: nn.Module, batch, impl: str, autocast) -> tuple[int | None, dict[str, int]]:
    """Activation bytes saved for backward over one forward (this rank; megatron only: DTensor's saved
    tensors are wrappers without a storage of their own), and the collectives of one forward + backward
    (``bigtrain_lab.parallel.comm``'s counters; DTensor's counted by ``CommDebugMode``)."""
    from torch.distributed.tensor import DTensor

    x, y = batch
    weights = [p.to_local() if isinstance(p, DTensor) else p for p in model.parameters()]
    calls: dict[str, int] = {}
    if impl == "dtensor":
        from torch.distributed.tensor.debug import CommDebugMode

        modes = [CommDebugMode(), CommDebugMode()]
        # its module tracker's backward hooks warn about the embedding's integer input: harmless here
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
    else:
        modes = [count_collectives(), count_collectives()]
    saved = SavedTensorBytes(exclude=weights) if impl == "megatron" else contextlib.nullcontext()
    with modes[0] as fwd, saved, autocast:
        loss = model(x, y)[1]
    with modes[1] as bwd:
        loss.backward()
    for phase, counted in (("forward", fwd), ("backward", bwd)):
        if impl == "dtensor":
            for op, n in counted.get_comm_counts().items():
                calls[f"{phase} {getattr(op, '__name__', str(op))}"] = n
        else:
            calls.update(counted)
    for p in model.parameters():
        p.grad = None
    return (saved.nbytes if impl == "megatron" else None), calls


def train_tp(run: Run) -> dict:
    job, env, args = run.job, run.env, run.args
    world = env.world_size
    tp = args.tp or world
    if tp != world:
        raise ValueError(f"--tp {tp} must equal the number of processes ({world}): this script runs TP only")
    dataset, corpus = job.dataset()
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size).to(env.device)  # the same init on every rank, then cut
    n_params = sum(p.numel() for p in model.parameters())
    group = dist.group.WORLD
    if args.impl == "megatron":
        model = tensor_parallel_gpt(model, env.rank, world, group, sequence_parallel=args.sequence_parallel)
        optimizer = job.optimizer(model)
    else:
        from torch.distributed.device_mesh import init_device_mesh

        model = dtensor_tensor_parallel_gpt(model, init_device_mesh(env.device.type, (world,)))
        chosen = job.optimizer_recipe()
        # fused AdamW refuses a mix of DTensors (sharded) and plain tensors (replicated): foreach kernels
        optimizer = configure_adamw(model, chosen.lr, chosen.weight_decay, chosen.betas, fused=False)
    env.print(f"TP={world} ({args.impl}{', sequence parallel' if args.sequence_parallel else ''}; {env.backend}, "
              f"{env.device.type}) | {n_params:,} parameters | every rank sees the same "
              f"{job.batch_size * job.grad_accum} windows/step")

    params = [p for p in model.parameters() if p.requires_grad]
    grad_clip = job.optimizer_recipe().grad_clip

    def finish_grads(*_: object) -> None:
        # before every optimizer step: SP's partial LayerNorm / bias gradients summed, then the global clip
        sync_sequence_parallel_grads(params, group)
        if grad_clip > 0:
            clip_tensor_parallel_grads_(params, grad_clip, group)

    stream = micro_batches(dataset, batch_size=job.batch_size, rank=0, world_size=1, seed=job.seed)  # DP = 1
    autocast = contextlib.nullcontext()
    x0, y0 = dataset[0]  # a batch of micro-batch shape, for measuring (no optimizer step, no RNG used)
    first = to_device((x0[None].repeat(job.batch_size, 1), y0[None].repeat(job.batch_size, 1)), env.device)
    activation_bytes, collectives = measure_one_step(model, first, args.impl, autocast)

    memory: MemoryBreakdown | None = None

    def measure_once(optimizer: torch.optim.Optimizer, *_: object) -> None:
        nonlocal memory
        if memory is None:
            memory = measure_model_states(model, optimizer, step_counters=False)

    pre = optimizer.register_step_pre_hook(finish_grads)
    post = optimizer.register_step_post_hook(measure_once)
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    losses: list[float] = []
    # every rank reads the same batches (data_ranks=1); the pre-hook clips the global norm over the shards
    # (train_step's clip_grad_norm_ would clip each rank by its own factor, and refuses DTensor + plain grads)
    timer = run_steps(run, model, optimizer, stream, start=0, stop=job.steps, losses=losses,
                      grad_sync=lambda _last: contextlib.nullcontext(), autocast=autocast,
                      save=lambda *_: None, data_ranks=1, clip_in_step=False)
    pre.remove()
    post.remove()

    if args.save_final:  # a collective: every rank takes part in the gather
        full = gather_tensor_parallel_state_dict(model, group) if args.impl == "megatron" \
            else dtensor_full_state_dict(model)
        save_final(run, full)
    summary = report(run, timer, stop=job.steps, losses=losses, n_params=n_params)
    if activation_bytes is not None:
        env.print(f"activations saved for backward by one forward on rank 0: {activation_bytes / 2**20:.3f} MiB")
    env.print(f"collectives of one forward + backward: {collectives}")
    out = {**summary, "tp": world, "impl": args.impl, "sequence_parallel": args.sequence_parallel,
           "model_state_bytes_per_rank": gather_values(memory.total if memory is not None else 0.0, run),
           "collectives": collectives, "unsharded_bytes": 16 * n_params}
    if activation_bytes is not None:
        out["activation_bytes_per_rank"] = gather_values(activation_bytes, run)
    return out


if __name__ == "__main__":
    exit_process(run_script(build_parser(), train_tp, script=SCRIPT, check=check_args))
