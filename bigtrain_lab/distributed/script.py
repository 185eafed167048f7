"""The skeleton of a distributed training script; ``scripts/ddp_train.py`` and ``scripts/fsdp_train.py`` add
only how they wrap the model and write checkpoints.

    parser, group = distributed_parser(__doc__)       # the job's flags and every run's; add the script's own
    exit_process(run_script(parser, train_fn, script="scripts/ddp_train.py"))  # env.exit_process

``run_script`` parses and checks the flags before any process group exists, starts the group, calls
``train_fn(run)``, tears the group down on every exit path and has rank 0 write the summary JSON.
``run_steps`` is the loop both scripts run: ``bigtrain_lab.train.train_step`` on each rank's micro-batches,
the loss averaged over ranks at log steps, checkpoints, and a step time without the first step and the
checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from bigtrain_lab.distributed.env import DEVICES, DistEnv, LaunchError, cleanup, init_distributed
from bigtrain_lab.distributed.faults import maybe_fail, parse_failure
from bigtrain_lab.distributed.job import Job
from bigtrain_lab.train import Batch, StepTimer, set_lr, to_device, train_step, trainable_parameters

GradSync = Callable[[bool], contextlib.AbstractContextManager]
#: ``save(step, losses)``: write a checkpoint after ``step`` steps (called on every rank)
Save = Callable[[int, list[float]], None]


@dataclass(frozen=True)
class Run:
    """What a script's training function is given: the job, who this process is, and the flags."""

    job: Job
    env: DistEnv
    args: argparse.Namespace
    failure: tuple[int, int] | None  # (rank, step) to SIGKILL at, from --simulate-failure

    @property
    def resuming(self) -> bool:
        """Read the last checkpoint: --resume was given, or torchrun restarted the group after a failure."""
        return self.args.checkpoint_dir is not None and (self.args.resume or self.env.restart_count > 0)

    def saves_at(self, done: int, stop: int) -> bool:
        """Whether a checkpoint is written after ``done`` steps of a run that stops at ``stop``."""
        every = self.args.checkpoint_every
        return self.args.checkpoint_dir is not None and (done == stop or (every > 0 and done % every == 0))


def distributed_parser(description: str) -> tuple[argparse.ArgumentParser, argparse._ArgumentGroup]:
    """A parser with the job's flags and the flags of every distributed run; returns it and the
    "distributed run" group, for the script's own flags."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    Job.add_arguments(parser)
    group = parser.add_argument_group("distributed run")
    group.add_argument("--device", choices=DEVICES, default="auto",
                       help="auto: GPU LOCAL_RANK with NCCL when CUDA is present, else the CPU with gloo")
    group.add_argument("--checkpoint-dir", default=None, help="where checkpoints go (see above)")
    group.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: at the end)")
    group.add_argument("--resume", action="store_true",
                       help="start from the last checkpoint in --checkpoint-dir when there is one (a torchrun "
                            "restart always does)")
    group.add_argument("--simulate-failure", metavar="RANK:STEP", default=None,
                       help="SIGKILL rank RANK when it reaches step STEP, on the first attempt only")
    group.add_argument("--save-final", metavar="PATH", default=None,
                       help="rank 0 saves the final full state_dict here")
    group.add_argument("--summary-json", metavar="PATH", default=None, help="rank 0 writes timings here")
    group.add_argument("--log-every", type=int, default=5, help="steps between loss lines (default 5)")
    return parser, group


def check_run_args(args: argparse.Namespace) -> None:
    """The checks every distributed run's flags pass (``ValueError`` otherwise)."""
    if args.checkpoint_every < 0 or args.log_every < 1:
        raise ValueError("need --checkpoint-every >= 0 and --log-every >= 1")
    needing = [f"--{name.replace('_', '-')}" for name in ("checkpoint_every", "resume", "stop_after")
               if getattr(args, name, None)]
    if needing and not args.checkpoint_dir:
        raise ValueError(f"{' and '.join(needing)} need{'s' if len(needing) == 1 else ''} --checkpoint-dir")


def refuse_checkpoint_flags(args: argparse.Namespace, script: str) -> None:
    """``ValueError`` for the checkpoint and fault flags, in a script that writes no checkpoints."""
    if args.checkpoint_dir or args.resume or args.simulate_failure:
        raise ValueError(f"{script} has no checkpoints (--checkpoint-dir, --resume, --simulate-failure)")


def run_script(parser: argparse.ArgumentParser, train_fn: Callable[[Run], dict[str, Any]], *, script: str,
               check: Callable[[argparse.Namespace], None] | None = None, argv: list[str] | None = None) -> int:
    """Parse and check the flags (bad ones: exit 2 with one line, before any process group), start the
    process group, ``train_fn(run) -> summary``, always tear the group down; rank 0 writes the summary to
    ``--summary-json``."""
    args = parser.parse_args(argv)
    try:
        job = Job.from_args(args)
        failure = parse_failure(args.simulate_failure)
        check_run_args(args)
        if check is not None:
            check(args)
        env = init_distributed(args.device, script=script)
    except (LaunchError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        summary = train_fn(Run(job, env, args, failure))
        if env.is_main and args.summary_json:
            Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    finally:
        # Free what Python can first (FSDP's hooks form reference cycles that hold the group); what C++
        # cycles still hold (DDP's reducer, DTensor's meshes) is why the scripts end with env.exit_process.
        gc.collect()
        cleanup()  # destroy_process_group on every exit path
    return 0


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TinyGPT's own loss (``forward(x, y) -> (logits, loss)``), through whatever wraps it."""
    return model(x, y)[1]


def run_steps(run: Run, model: nn.Module, optimizer: torch.optim.Optimizer, stream: Iterator[Batch], *,
              start: int, stop: int, losses: list[float], grad_sync: GradSync,
              autocast: contextlib.AbstractContextManager, save: Save, data_ranks: int | None = None,
              clip_in_step: bool = True) -> StepTimer:
    """Steps ``start .. stop - 1`` of ``run.job`` on this rank's micro-batches of ``stream``. Every
    ``--log-every`` steps and at the end, the loss averaged over the ranks is appended to ``losses`` and
    printed by rank 0; ``save(step, losses)`` after the steps ``run.saves_at``. Returns the timer.

    ``data_ranks``: how many ranks read different batches (the tokens a step trains on; default every rank,
    1 for tensor parallelism, where all ranks share one batch). ``clip_in_step=False``: ``train_step`` leaves
    the gradients unclipped, for a script that clips in an optimizer pre-hook (a global norm over shards)."""
    job, env = run.job, run.env
    schedule, grad_clip = job.lr_schedule(), job.optimizer_recipe().grad_clip
    scaler = torch.amp.GradScaler(env.device.type, enabled=False)  # fp32 or bf16: nothing to scale
    params = trainable_parameters(model) if clip_in_step else []
    grad_clip = grad_clip if clip_in_step else 0.0
    tokens_per_step = job.tokens_per_step(env.world_size if data_ranks is None else data_ranks)
    timer = StepTimer(env.device)
    for step in range(start, stop):
        maybe_fail(run.failure, rank=env.rank, step=step, restart_count=env.restart_count)
        lr = set_lr(optimizer, schedule, step)
        batches = [to_device(next(stream), env.device) for _ in range(job.grad_accum)]
        loss, _ = train_step(model, batches, optimizer, lm_loss, params=params, grad_clip=grad_clip,
                             scaler=scaler, autocast=autocast, grad_sync=grad_sync)
        timer.step(tokens_per_step)
        done = step + 1
        logs = done % run.args.log_every == 0 or done == stop
        if logs or run.saves_at(done, stop):
            with timer.paused():  # logging and checkpoints are not training time
                if logs:
                    losses.append(global_mean(loss, env.world_size))
                    env.print(f"step {done:>4}/{job.steps} | loss {losses[-1]:.4f} | lr {lr:.2e}")
                if run.saves_at(done, stop):
                    save(done, losses)
    return timer


def global_mean(value: torch.Tensor, world_size: int) -> float:
    """The mean of ``value`` over the ranks (all-reduce SUM: gloo has no AVG)."""
    total = value.detach().clone()
    dist.all_reduce(total)
    return float(total) / world_size


def gather_values(value: float, run: Run) -> list[float]:
    """Every rank's ``value``, in rank order (a collective: every rank calls it)."""
    mine = torch.tensor([float(value)], dtype=torch.float64, device=run.env.device)
    gathered = [torch.zeros_like(mine) for _ in range(run.env.world_size)]
    dist.all_gather(gathered, mine)
    return [float(g.item()) for g in gathered]


def report(run: Run, timer: StepTimer, *, stop: int, losses: list[float], n_params: int) -> dict[str, Any]:
    """Print the run's speed (rank 0) and return the summary fields every script writes."""
    env, job = run.env, run.job
    env.print(f"done: step {stop} | {timer.step_seconds * 1e3:.1f} ms/step | {timer.tokens_per_second:,.0f} "
              f"tokens/s over {env.world_size} processes")
    return {"world_size": env.world_size, "backend": env.backend, "device": str(env.device), "steps": stop,
            "step_seconds": timer.step_seconds, "tokens_per_second": timer.tokens_per_second,
            "samples_per_second": timer.tokens_per_second / job.block_size, "n_params": n_params,
            "final_loss": losses[-1] if losses else None,
            "peak_memory_bytes": torch.cuda.max_memory_allocated(env.device) if env.device.type == "cuda" else None}


def save_final(run: Run, state_dict: dict[str, torch.Tensor]) -> None:
    """Rank 0 writes ``state_dict`` to ``--save-final``."""
    if run.env.is_main:
        path = Path(run.args.save_final)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state_dict, path)
