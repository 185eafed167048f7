r"""Train TinyGPT sharded with FSDP2 (``fully_shard``): each rank holds 1/N of every weight, gradient and
optimizer state, and gathers a block's full weights only while it computes it.

    torchrun --standalone --nproc_per_node=2 scripts/fsdp_train.py --steps 20           # 2 CPU processes (gloo)
    torchrun --standalone --nproc_per_node=8 scripts/fsdp_train.py --param-dtype bf16   # 1 node x 8 GPUs
    torchrun --standalone --nproc_per_node=2 scripts/fsdp_train.py --checkpoint-dir runs/fsdp \
        --checkpoint-every 5 --stop-after 10      # a time-limited job: stop at step 10 ...
    torchrun --standalone --nproc_per_node=2 scripts/fsdp_train.py --checkpoint-dir runs/fsdp \
        --checkpoint-every 5 --resume             # ... and carry on later, to --steps

Every transformer block is its own FSDP unit (all-gather its weights just before its forward and
backward, free them after, reduce-scatter its gradients), then the root module (embeddings, final norm,
tied lm_head). ``MixedPrecisionPolicy``: compute in ``--param-dtype`` (bf16 on GPUs), reduce gradients in
fp32, keep the sharded master weights and AdamW's state in fp32. Checkpoints are written with
``torch.distributed.checkpoint`` (DCP) to DIR/step_NNNNNN/: every rank writes its own shards in parallel,
and a checkpoint can be loaded back on a different number of ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from bigtrain_lab.distributed import micro_batches
from bigtrain_lab.distributed.env import exit_process
from bigtrain_lab.distributed.script import (
    Run,
    distributed_parser,
    gather_values,
    report,
    run_script,
    run_steps,
    save_final,
)
from bigtrain_lab.memory import MemoryBreakdown, measure_model_states, model_state_bytes
from bigtrain_lab.reproducibility import seed_everything

SCRIPT = "scripts/fsdp_train.py"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LATEST = "latest"  # a text file naming the newest complete checkpoint folder


def build_parser() -> argparse.ArgumentParser:
    parser, group = distributed_parser(__doc__)
    group.add_argument("--param-dtype", choices=tuple(DTYPES), default=None,
                       help="dtype of the gathered weights used for compute (default: bf16 on CUDA, fp32 on CPU, "
                            "where bf16 is slower)")
    group.add_argument("--stop-after", type=int, default=None,
                       help="stop cleanly after this step (after its checkpoint), as a time-limited job would")
    return parser


def check_args(args: argparse.Namespace) -> None:
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1, got {args.stop_after}")


def shard_model(model: nn.Module, param_dtype: torch.dtype) -> None:
    """FSDP2: one unit per transformer block, then the root (embeddings, final norm, tied head)."""
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def train_fsdp(run: Run) -> dict:
    job, env, args = run.job, run.env, run.args
    dataset, corpus = job.dataset()
    world = env.world_size
    param_dtype = DTYPES[args.param_dtype or ("bf16" if env.device.type == "cuda" else "fp32")]
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size).to(env.device)  # same init on every rank (same seed)
    n_params = sum(p.numel() for p in model.parameters())
    shard_model(model, param_dtype)
    optimizer = job.optimizer(model)  # on the shards
    env.print(f"FSDP2: {world} processes ({env.backend}, {env.device.type}) | compute in {param_dtype} | "
              f"{n_params:,} parameters, sharded {world} ways | global batch "
              f"{job.batch_size * job.grad_accum * world} windows/step")

    def grad_sync(last: bool) -> contextlib.AbstractContextManager:
        # FSDP2's no_sync: keep unsharded gradients and reduce-scatter only on the last micro-batch
        model.set_requires_gradient_sync(last)
        return contextlib.nullcontext()

    directory = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    start = 0
    if run.resuming and (path := latest_checkpoint(directory)) is not None:
        start = load(path, model, optimizer)
        env.print(f"resumed from {path} at step {start} (restart {env.restart_count})")
    stop = job.steps if args.stop_after is None else min(job.steps, args.stop_after)

    memory: MemoryBreakdown | None = None

    def measure_once(optimizer: torch.optim.Optimizer, *_: object) -> None:
        nonlocal memory
        if memory is None:  # after the first step every state exists; before zero_grad frees the grads
            memory = measure_model_states(model, optimizer, step_counters=False)

    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    stream = micro_batches(dataset, batch_size=job.batch_size, rank=env.rank, world_size=world, seed=job.seed,
                           start=start * job.grad_accum)
    hook = optimizer.register_step_post_hook(measure_once)
    losses: list[float] = []
    timer = run_steps(run, model, optimizer, stream, start=start, stop=stop, losses=losses, grad_sync=grad_sync,
                      autocast=contextlib.nullcontext(),  # FSDP's MixedPrecisionPolicy casts
                      save=lambda step, _: save(directory, model, optimizer, step, env.is_main))
    hook.remove()

    formula = model_state_bytes(n_params, precision="fp32", zero_stage=3, world_size=world).total
    if memory is not None:
        env.print(f"model states on rank 0: {memory.total / 2**20:.2f} MiB measured (params "
                  f"{memory.parameters / 2**20:.2f}, grads {memory.gradients / 2**20:.2f}, AdamW "
                  f"{memory.optimizer_states / 2**20:.2f}) | ZeRO-3 formula 16 B x {n_params:,} / {world} = "
                  f"{formula / 2**20:.2f} MiB | unsharded {16 * n_params / 2**20:.2f} MiB")
    if args.save_final:  # every rank takes part in gathering the full state_dict
        save_final(run, get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                             cpu_offload=True)))
    summary = report(run, timer, stop=stop, losses=losses, n_params=n_params)
    measured = memory.total if memory is not None else 0.0
    return {**summary, "param_dtype": str(param_dtype), "model_state_bytes_per_rank": gather_values(measured, run),
            "model_state_bytes_rank0": memory.as_dict() if memory is not None else None,
            "zero3_formula_bytes": formula,
            "unsharded_bytes": 16 * n_params}



def latest_checkpoint(directory: Path) -> Path | None:
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    path = directory / pointer.read_text().strip()
    return path if path.is_dir() else None


def save(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, is_main: bool) -> Path:
    """DCP save (every rank writes its shards), then rank 0 points ``latest`` at it, atomically: a crash
    while saving leaves ``latest`` on the previous complete checkpoint."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    path = directory / f"step_{step:06d}"
    dcp.save({"model": model_sd, "optim": optim_sd, "step": torch.tensor(step)}, checkpoint_id=path)
    dist.barrier()
    if is_main:
        tmp = directory / f".{LATEST}.tmp"
        tmp.write_text(path.name)
        os.replace(tmp, directory / LATEST)
    dist.barrier()
    return path


def load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """DCP load into the sharded model and optimizer; returns the step the checkpoint was taken at."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd, "step": torch.tensor(0)}
    dcp.load(state, checkpoint_id=path)  # reads the shards this rank needs, whatever wrote them
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return int(state["step"])


if __name__ == "__main__":
    exit_process(run_script(build_parser(), train_fsdp, script=SCRIPT, check=check_args))
