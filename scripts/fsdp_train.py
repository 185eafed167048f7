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
``torch.distributed.checkpoint`` (DCP): every rank writes its own shards in parallel, and a checkpoint
can be loaded back on a different number of ranks.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from bigtrain_lab.distributed import DistEnv, LaunchError, cleanup, init_distributed, micro_batches
from bigtrain_lab.distributed.faults import maybe_fail, parse_failure
from bigtrain_lab.distributed.job import Job
from bigtrain_lab.memory import measure_model_states, model_state_bytes
from bigtrain_lab.reproducibility import seed_everything
from bigtrain_lab.train import TrainConfig, configure_adamw

SCRIPT = "scripts/fsdp_train.py"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LATEST = "latest"  # a text file naming the newest complete checkpoint folder


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    Job.add_arguments(p)
    r = p.add_argument_group("distributed run")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    r.add_argument("--param-dtype", choices=tuple(DTYPES), default=None,
                   help="dtype of the gathered weights used for compute (default: bf16 on CUDA, fp32 on CPU, "
                        "where bf16 is slower)")
    r.add_argument("--checkpoint-dir", default=None, help="DCP checkpoints go to DIR/step_NNNNNN/")
    r.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: at the end)")
    r.add_argument("--resume", action="store_true",
                   help="start from DIR's latest checkpoint when there is one (a torchrun restart always does)")
    r.add_argument("--stop-after", type=int, default=None,
                   help="stop cleanly after this step (after its checkpoint), as a time-limited job would")
    r.add_argument("--simulate-failure", metavar="RANK:STEP", default=None,
                   help="SIGKILL rank RANK when it reaches step STEP, on the first attempt only")
    r.add_argument("--save-final", metavar="PATH", default=None,
                   help="gather the full state_dict and save it here from rank 0")
    r.add_argument("--summary-json", metavar="PATH", default=None, help="rank 0 writes timings and memory here")
    r.add_argument("--log-every", type=int, default=5)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        job = Job.from_args(args)
        failure = parse_failure(args.simulate_failure)
        if args.checkpoint_every < 0 or args.log_every < 1:
            raise ValueError("need --checkpoint-every >= 0 and --log-every >= 1")
        if (args.checkpoint_every or args.resume or args.stop_after) and not args.checkpoint_dir:
            raise ValueError("--checkpoint-every, --resume and --stop-after need --checkpoint-dir")
        env = init_distributed(args.device, script=SCRIPT)
    except (LaunchError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        train_fsdp(job, env, args, failure)
    finally:
        # Free the model first: its hooks form reference cycles that hold the process group (FSDP's device
        # mesh); left to the interpreter's exit, they were torn down after the group and gloo's threads
        # aborted the process ("terminate called without an active exception"), at random.
        gc.collect()
        cleanup()  # destroy_process_group on every exit path
    return 0


def shard_model(model: torch.nn.Module, param_dtype: torch.dtype) -> None:
    """FSDP2: one unit per transformer block, then the root (embeddings, final norm, tied head)."""
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def latest_checkpoint(directory: Path) -> Path | None:
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    path = directory / pointer.read_text().strip()
    return path if path.is_dir() else None


def save(directory: Path, model, optimizer, step: int, is_main: bool) -> Path:
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


def load(path: Path, model, optimizer) -> int:
    """DCP load into the sharded model and optimizer; returns the step the checkpoint was taken at."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd, "step": torch.tensor(0)}
    dcp.load(state, checkpoint_id=path)  # reads the shards this rank needs, whatever wrote them
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return int(state["step"])


def train_fsdp(job: Job, env: DistEnv, args: argparse.Namespace, failure: tuple[int, int] | None) -> None:
    dataset, corpus = job.dataset()
    world = env.world_size
    param_dtype = DTYPES[args.param_dtype or ("bf16" if env.device.type == "cuda" else "fp32")]
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size).to(env.device)  # same init on every rank (same seed)
    n_params = sum(p.numel() for p in model.parameters())
    shard_model(model, param_dtype)
    optimizer = configure_adamw(model, job.lr, job.weight_decay, TrainConfig().betas)  # on the shards
    schedule = job.schedule()
    env.print(f"FSDP2: {world} processes ({env.backend}, {env.device.type}) | compute in {param_dtype} | "
              f"{n_params:,} parameters, sharded {world} ways | global batch "
              f"{job.batch_size * job.grad_accum * world} windows/step")

    directory = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    start = 0
    if directory is not None and (args.resume or env.restart_count > 0):
        path = latest_checkpoint(directory)
        if path is not None:
            start = load(path, model, optimizer)
            env.print(f"resumed from {path} at step {start} (restart {env.restart_count})")
    stop = job.steps if args.stop_after is None else min(job.steps, args.stop_after)

    stream = micro_batches(dataset, batch_size=job.batch_size, rank=env.rank, world_size=world, seed=job.seed,
                           start=start * job.grad_accum)
    memory = None
    timed_steps, timed_seconds, clock, loss_value = 0, 0.0, time.perf_counter(), math.nan
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    for step in range(start, stop):
        maybe_fail(failure, rank=env.rank, step=step, restart_count=env.restart_count)
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=env.device)
        for micro in range(job.grad_accum):
            x, y = (t.to(env.device, non_blocking=True) for t in next(stream))
            # FSDP2's no_sync: keep unsharded gradients and reduce-scatter only on the last micro-batch
            model.set_requires_gradient_sync(micro == job.grad_accum - 1)
            _, loss = model(x, y)
            (loss / job.grad_accum).backward()
            step_loss += loss.detach().float() / job.grad_accum
        torch.nn.utils.clip_grad_norm_(model.parameters(), job.grad_clip)  # the norm over all shards
        optimizer.step()
        if memory is None:  # after the first step every state exists; before zero_grad frees the grads
            memory = measure_model_states(model, optimizer, step_counters=False)
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        if done % args.log_every == 0 or done == stop:
            dist.all_reduce(step_loss)
            loss_value = float(step_loss) / world
            env.print(f"step {done:>4}/{job.steps} | loss {loss_value:.4f} | lr {lr:.2e}")
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        now = time.perf_counter()  # checkpointing is not training time
        if step > start:  # the first step (warm-up, allocation) is not timed
            timed_steps, timed_seconds = timed_steps + 1, timed_seconds + (now - clock)
        if directory is not None and (done == stop or (args.checkpoint_every and done % args.checkpoint_every == 0)):
            save(directory, model, optimizer, done, env.is_main)
        clock = time.perf_counter()

    step_s = timed_seconds / timed_steps if timed_steps else math.nan
    tokens_s = job.tokens_per_step(world) / step_s if timed_steps else math.nan
    formula = model_state_bytes(n_params, precision="fp32", zero_stage=3, world_size=world).total
    if memory is not None:
        env.print(f"model states on rank 0: {memory.total / 2**20:.2f} MiB measured (params "
                  f"{memory.parameters / 2**20:.2f}, grads {memory.gradients / 2**20:.2f}, AdamW "
                  f"{memory.optimizer_states / 2**20:.2f}) | ZeRO-3 formula 16 B x {n_params:,} / {world} = "
                  f"{formula / 2**20:.2f} MiB | unsharded {16 * n_params / 2**20:.2f} MiB")
    env.print(f"done: step {stop} | {step_s * 1e3:.1f} ms/step | {tokens_s:,.0f} tokens/s over {world} processes")

    if args.save_final:
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if env.is_main:
            Path(args.save_final).parent.mkdir(parents=True, exist_ok=True)
            torch.save(full, args.save_final)
    # every rank's measured bytes, for the summary
    totals = torch.tensor([memory.total if memory else 0], dtype=torch.float64, device=env.device)
    gathered = [torch.zeros_like(totals) for _ in range(world)]
    dist.all_gather(gathered, totals)
    if env.is_main and args.summary_json:
        summary = {"world_size": world, "backend": env.backend, "device": str(env.device), "steps": stop,
                   "param_dtype": str(param_dtype), "step_seconds": step_s, "tokens_per_second": tokens_s,
                   "loss": loss_value, "n_params": n_params,
                   "model_state_bytes_per_rank": [float(g.item()) for g in gathered],
                   "model_state_bytes_rank0": memory.as_dict() if memory else None, "zero3_formula_bytes": formula,
                   "unsharded_bytes": 16 * n_params,
                   "peak_memory_bytes": torch.cuda.max_memory_allocated(env.device)
                   if env.device.type == "cuda" else None}
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
