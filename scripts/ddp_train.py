r"""Train TinyGPT with DistributedDataParallel: the same script on CPU processes (gloo) and on GPUs (NCCL).

    torchrun --standalone --nproc_per_node=2 scripts/ddp_train.py --steps 20          # 2 CPU processes
    torchrun --standalone --nproc_per_node=8 scripts/ddp_train.py --steps 2000        # 1 node x 8 GPUs
    # 2 nodes x 8 GPUs: the same command on each node (NODE0 = the first node's address)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=NODE0:29500 \
        --rdzv-id=job1 scripts/ddp_train.py --steps 2000
    # survive a crashed worker: restart the group and resume from the last checkpoint
    torchrun --standalone --nproc_per_node=2 --max-restarts=1 scripts/ddp_train.py \
        --checkpoint-dir runs/ddp --checkpoint-every 5 --simulate-failure 1:7

Each process reads its RANK / LOCAL_RANK / WORLD_SIZE from torchrun, uses GPU LOCAL_RANK with NCCL (or
the CPU with gloo), sees its own part of the data through DistributedSampler (set_epoch every epoch),
and skips the gradient all-reduce (no_sync) on all but the last micro-batch of a step. Rank 0 alone
logs and writes checkpoints (DIR/ddp.pt, in bigtrain_lab.train's format); every rank reads them back on a
restart.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from bigtrain_lab.distributed import micro_batches
from bigtrain_lab.distributed.env import exit_process
from bigtrain_lab.distributed.job import Job
from bigtrain_lab.distributed.script import (
    Run,
    distributed_parser,
    report,
    run_script,
    run_steps,
    save_final,
)
from bigtrain_lab.reproducibility import seed_everything
from bigtrain_lab.train import (
    CHECKPOINT_FORMAT,
    autocast_context,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)

SCRIPT = "scripts/ddp_train.py"
CHECKPOINT_NAME = "ddp.pt"


def build_parser() -> argparse.ArgumentParser:
    parser, group = distributed_parser(__doc__)
    group.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast")
    group.add_argument("--bucket-cap-mb", type=float, default=25.0,
                       help="DDP's gradient bucket size: all-reduce starts when a bucket is full (default 25)")
    group.add_argument("--skip-allreduce", action="store_true",
                       help="benchmarks only: never synchronise gradients (every backward under no_sync; the "
                            "replicas drift apart), to measure what the all-reduce costs")
    return parser


def check_args(args: argparse.Namespace) -> None:
    if args.bucket_cap_mb <= 0:
        raise ValueError(f"--bucket-cap-mb must be > 0, got {args.bucket_cap_mb}")


def train_ddp(run: Run) -> dict:
    job, env, args = run.job, run.env, run.args
    dataset, corpus = job.dataset()
    env.print(f"DDP: {env.world_size} processes ({env.backend}, {env.device.type}) | {len(dataset):,} windows of "
              f"{job.block_size} | global batch {job.batch_size} x {job.grad_accum} x {env.world_size} = "
              f"{job.batch_size * job.grad_accum * env.world_size} windows "
              f"({job.tokens_per_step(env.world_size):,} tokens)/step")
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size).to(env.device)
    # DDP broadcasts rank 0's weights to the others at construction, and registers hooks that average
    # the gradients across ranks bucket by bucket, while backward is still running.
    ddp = DDP(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
              bucket_cap_mb=args.bucket_cap_mb)
    optimizer = job.optimizer(model)

    def grad_sync(last: bool) -> contextlib.AbstractContextManager:
        # no_sync: accumulate locally; only the last micro-batch's backward all-reduces the gradients
        return contextlib.nullcontext() if last and not args.skip_allreduce else ddp.no_sync()

    path = Path(args.checkpoint_dir) / CHECKPOINT_NAME if args.checkpoint_dir else None
    start, losses = 0, []
    if run.resuming and path.is_file():
        start, losses = load(path, model, optimizer, run)

    def save(step: int, losses: list[float]) -> None:
        if env.is_main:
            save_checkpoint(path, checkpoint_state(model, optimizer, step, losses, job))
        dist.barrier()  # nobody runs ahead of a checkpoint that is not on disk yet

    stream = micro_batches(dataset, batch_size=job.batch_size, rank=env.rank, world_size=env.world_size,
                           seed=job.seed, start=start * job.grad_accum)
    timer = run_steps(run, ddp, optimizer, stream, start=start, stop=job.steps, losses=losses,
                      grad_sync=grad_sync, autocast=autocast_context(env.device, args.precision), save=save)
    if args.save_final:
        save_final(run, model.state_dict())
    summary = report(run, timer, stop=job.steps, losses=losses, n_params=sum(p.numel() for p in model.parameters()))
    return {**summary, "bucket_cap_mb": args.bucket_cap_mb, "skip_allreduce": args.skip_allreduce}


def load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, run: Run) -> tuple[int, list[float]]:
    """Every rank reads the same file: ``(the step it was written at, the logged losses so far)``."""
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    run.env.print(f"resumed from {path} at step {state['step']} (restart {run.env.restart_count})")
    return state["step"], list(state["history"]["losses"])


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int, losses: list[float],
                     job: Job) -> dict:
    """A checkpoint in ``bigtrain_lab.train``'s format (``load_checkpoint`` reads it): the plain model's
    state_dict (no ``module.`` prefix), so it also loads into a single-process model."""
    return {"format": CHECKPOINT_FORMAT, "step": step, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scaler": {}, "rng": get_rng_state(),
            "train_config": {}, "history": {"losses": losses, "lrs": [], "grad_norms": [], "evals": [],
                                            "tokens": 0},
            "metadata": {"job": asdict(job)}}


if __name__ == "__main__":
    exit_process(run_script(build_parser(), train_ddp, script=SCRIPT, check=check_args))
