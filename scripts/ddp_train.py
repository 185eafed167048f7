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
logs and writes checkpoints; every rank reads them back on a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from bigtrain_lab.distributed import DistEnv, LaunchError, cleanup, init_distributed, micro_batches
from bigtrain_lab.distributed.faults import maybe_fail, parse_failure
from bigtrain_lab.distributed.job import Job
from bigtrain_lab.reproducibility import seed_everything
from bigtrain_lab.train import (
    CHECKPOINT_FORMAT,
    TrainConfig,
    autocast_context,
    configure_adamw,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)

SCRIPT = "scripts/ddp_train.py"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    Job.add_arguments(p)
    r = p.add_argument_group("distributed run")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: GPU LOCAL_RANK with NCCL when CUDA is present, else the CPU with gloo")
    r.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast")
    r.add_argument("--bucket-cap-mb", type=float, default=25.0,
                   help="DDP's gradient bucket size: all-reduce starts when a bucket is full (default 25)")
    r.add_argument("--checkpoint-dir", default=None, help="rank 0 writes DIR/ddp.pt here")
    r.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: at the end)")
    r.add_argument("--resume", action="store_true",
                   help="start from DIR/ddp.pt when it exists (a torchrun restart always does)")
    r.add_argument("--simulate-failure", metavar="RANK:STEP", default=None,
                   help="SIGKILL rank RANK when it reaches step STEP, on the first attempt only")
    r.add_argument("--save-final", metavar="PATH", default=None, help="rank 0 saves the final state_dict here")
    r.add_argument("--summary-json", metavar="PATH", default=None, help="rank 0 writes timings here")
    r.add_argument("--skip-allreduce", action="store_true",
                   help="benchmarks only: never synchronise gradients (every backward under no_sync; the "
                        "replicas drift apart), to measure what the all-reduce costs")
    r.add_argument("--log-every", type=int, default=5)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        job = Job.from_args(args)
        failure = parse_failure(args.simulate_failure)
        if args.checkpoint_every < 0 or args.log_every < 1 or args.bucket_cap_mb <= 0:
            raise ValueError("need --checkpoint-every >= 0, --log-every >= 1 and --bucket-cap-mb > 0")
        if (args.checkpoint_every or args.resume) and not args.checkpoint_dir:
            raise ValueError("--checkpoint-every and --resume need --checkpoint-dir")
        env = init_distributed(args.device, script=SCRIPT)
    except (LaunchError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        train_ddp(job, env, args, failure)
    finally:
        # Free the model first: its hooks form reference cycles that hold the process group (FSDP's device
        # mesh); left to the interpreter's exit, they were torn down after the group and gloo's threads
        # aborted the process ("terminate called without an active exception"), at random.
        gc.collect()
        cleanup()  # destroy_process_group on every exit path
    return 0


def train_ddp(job: Job, env: DistEnv, args: argparse.Namespace, failure: tuple[int, int] | None) -> None:
    dataset, corpus = job.dataset()
    world = env.world_size
    env.print(f"DDP: {world} processes ({env.backend}, {env.device.type}) | {len(dataset):,} windows of "
              f"{job.block_size} | global batch {job.batch_size} x {job.grad_accum} x {world} = "
              f"{job.batch_size * job.grad_accum * world} windows ({job.tokens_per_step(world):,} tokens)/step")
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size).to(env.device)
    # DDP broadcasts rank 0's weights to the others at construction, and registers hooks that average
    # the gradients across ranks bucket by bucket, while backward is still running.
    ddp = DDP(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
              bucket_cap_mb=args.bucket_cap_mb)
    betas = TrainConfig().betas
    optimizer = configure_adamw(model, job.lr, job.weight_decay, betas)
    schedule = job.schedule()
    autocast = autocast_context(env.device, args.precision)

    ckpt = Path(args.checkpoint_dir) / "ddp.pt" if args.checkpoint_dir else None
    start, losses = 0, []
    if ckpt is not None and ckpt.is_file() and (args.resume or env.restart_count > 0):
        state = load_checkpoint(ckpt)  # every rank reads the same file
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start, losses = state["step"], list(state["history"]["losses"])
        env.print(f"resumed from {ckpt} at step {start} (restart {env.restart_count})")

    stream = micro_batches(dataset, batch_size=job.batch_size, rank=env.rank, world_size=world, seed=job.seed,
                           start=start * job.grad_accum)
    timed_steps, timed_seconds = 0, 0.0
    clock = time.perf_counter()
    for step in range(start, job.steps):
        maybe_fail(failure, rank=env.rank, step=step, restart_count=env.restart_count)
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=env.device)
        for micro in range(job.grad_accum):
            x, y = (t.to(env.device, non_blocking=True) for t in next(stream))
            last = micro == job.grad_accum - 1 and not args.skip_allreduce
            # no_sync: accumulate locally; only the last micro-batch's backward all-reduces the gradients.
            # The backward pass must run inside the context, it is where the hooks fire.
            with contextlib.nullcontext() if last else ddp.no_sync():
                with autocast:
                    _, loss = ddp(x, y)
                (loss / job.grad_accum).backward()
            step_loss += loss.detach().float() / job.grad_accum
        torch.nn.utils.clip_grad_norm_(model.parameters(), job.grad_clip)  # same averaged grads everywhere
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        if done % args.log_every == 0 or done == job.steps:
            dist.all_reduce(step_loss)  # the loss over the global batch (SUM: gloo has no AVG)
            step_loss /= world
            losses.append(float(step_loss))
            env.print(f"step {done:>4}/{job.steps} | loss {losses[-1]:.4f} | lr {lr:.2e}")
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        now = time.perf_counter()  # checkpointing is not training time
        if step > start:  # the first step (warm-up, allocation) is not timed
            timed_steps, timed_seconds = timed_steps + 1, timed_seconds + (now - clock)
        if ckpt is not None and (done == job.steps or (args.checkpoint_every and done % args.checkpoint_every == 0)):
            if env.is_main:
                save_checkpoint(ckpt, checkpoint_state(model, optimizer, done, losses, job))
            dist.barrier()  # nobody runs ahead of a checkpoint that is not on disk yet
        clock = time.perf_counter()

    step_s = timed_seconds / timed_steps if timed_steps else math.nan
    tokens_s = job.tokens_per_step(world) / step_s if timed_steps else math.nan
    env.print(f"done: {job.steps} steps | {step_s * 1e3:.1f} ms/step | {tokens_s:,.0f} tokens/s over "
              f"{world} processes")
    if env.is_main and args.save_final:
        Path(args.save_final).parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.save_final)
    if env.is_main and args.summary_json:
        summary = {"world_size": world, "backend": env.backend, "device": str(env.device), "steps": job.steps,
                   "step_seconds": step_s, "tokens_per_second": tokens_s,
                   "samples_per_second": job.batch_size * job.grad_accum * world / step_s if timed_steps else None,
                   "bucket_cap_mb": args.bucket_cap_mb, "skip_allreduce": args.skip_allreduce,
                   "n_params": sum(p.numel() for p in model.parameters()), "final_loss": losses[-1] if losses else None,
                   "peak_memory_bytes": torch.cuda.max_memory_allocated(env.device)
                   if env.device.type == "cuda" else None}
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))


def checkpoint_state(model, optimizer, step: int, losses: list[float], job: Job) -> dict:
    """A checkpoint in ``bigtrain_lab.train``'s format (``load_checkpoint`` reads it): the plain model's
    state_dict (no ``module.`` prefix), so it also loads into a single-process model."""
    return {"format": CHECKPOINT_FORMAT, "step": step, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scaler": {}, "rng": get_rng_state(),
            "train_config": {}, "history": {"losses": losses, "lrs": [], "grad_norms": [], "evals": [],
                                            "tokens": 0},
            "metadata": {"job": asdict(job)}}


if __name__ == "__main__":
    sys.exit(main())
