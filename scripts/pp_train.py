r"""Train TinyGPT with pipeline parallelism: each rank holds a consecutive slice of the model (a *stage*) and
micro-batches flow through the ranks, activations forward and gradients backward (``dist.isend``/``irecv``).

    torchrun --standalone --nproc_per_node=2 scripts/pp_train.py --pp-schedule 1f1b --microbatches 4   # 2 CPU stages
    torchrun --standalone --nproc_per_node=8 scripts/pp_train.py --pp-schedule 1f1b --microbatches 32 --device cuda \
        --n-layer 8                                                                                # 8 GPU stages

Pipeline size = world size (no data parallelism: every stage sees the same global batch of
``batch_size * grad_accum`` windows, split into ``--microbatches`` micro-batches). Stage 0 holds the
embeddings and the first blocks, the last stage the last blocks, ``ln_f`` and the head; the tied
embedding/head matrix has a copy on both, their gradients summed by an all-reduce. ``--pp-schedule gpipe``: all
forwards then all backwards; ``--pp-schedule 1f1b``: PipeDream-Flush (``bigtrain_lab.parallel.pipeline``).
The summary JSON adds the measured bubble (idle share of each stage within a step, from the real
timestamps) next to the formula ``(p - 1) / (m + p - 1)``, one step's timeline and the peak bytes of
activations each stage held. ``--impl torch`` runs the same stages under torch.distributed.pipelining
(``PipelineStage`` with ``ScheduleGPipe`` / ``Schedule1F1B``) instead of the kit's executor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from bigtrain_lab.distributed import micro_batches
from bigtrain_lab.distributed.env import exit_process
from bigtrain_lab.distributed.script import (
    Run,
    distributed_parser,
    gather_values,
    refuse_checkpoint_flags,
    report,
    run_script,
    save_final,
)
from bigtrain_lab.estimate.formulas import bubble_fraction as bubble_formula
from bigtrain_lab.memory import measure_model_states
from bigtrain_lab.parallel.pipeline import (
    SCHEDULES,
    bubble_fraction,
    max_in_flight,
    pipeline_schedule,
    simulate,
)
from bigtrain_lab.parallel.stages import (
    GPTStage,
    StepRecord,
    clip_pipeline_grad_norm,
    gather_full_state_dict,
    run_schedule,
    stage_layers,
    sync_tied_gradients,
    tied_group,
)
from bigtrain_lab.reproducibility import seed_everything
from bigtrain_lab.train import StepTimer, set_lr

SCRIPT = "scripts/pp_train.py"


def build_parser() -> argparse.ArgumentParser:
    parser, group = distributed_parser(__doc__)
    group.add_argument("--pp-schedule", choices=SCHEDULES, default="1f1b",
                       help="pipeline schedule (default 1f1b; --schedule is the job's learning-rate schedule)")
    group.add_argument("--impl", choices=("kit", "torch"), default="kit",
                       help="kit: bigtrain_lab.parallel.stages.run_schedule (timeline, activation bytes); torch: "
                            "torch.distributed.pipelining's PipelineStage with ScheduleGPipe / Schedule1F1B (same "
                            "order, no timeline; 1f1b needs microbatches >= stages)")
    group.add_argument("--microbatches", type=int, default=4,
                       help="micro-batches per step; must divide batch_size * grad_accum (default 4)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    windows = args.batch_size * args.grad_accum
    if args.microbatches < 1 or windows % args.microbatches:
        raise ValueError(f"--microbatches must be >= 1 and divide batch_size * grad_accum = {windows}, "
                         f"got {args.microbatches}")
    stages = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's; the process group does not exist yet
    if args.n_layer < stages:
        raise ValueError(f"--n-layer {args.n_layer} blocks cannot fill {stages} pipeline stages: use --n-layer >= "
                         f"{stages} (the number of processes)")
    refuse_checkpoint_flags(args, "pp_train.py")



def _lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


def torch_pipeline(stage: GPTStage, kind: str, m: int, device: torch.device):
    """torch.distributed.pipelining's schedule over this rank's stage (the loss averaged over micro-batches:
    ``scale_grads=True`` divides the summed gradients by m, as the kit's 1/m does)."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    if kind == "1f1b" and m < stage.num_stages:
        raise ValueError(f"torch's Schedule1F1B needs microbatches >= stages, got {m} < {stage.num_stages} "
                         f"(use --impl kit)")
    pipe_stage = PipelineStage(stage, stage.stage, stage.num_stages, device)
    return {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[kind](pipe_stage, m, loss_fn=_lm_loss)


def torch_step(schedule, stage: GPTStage, x: torch.Tensor, y: torch.Tensor, m: int) -> StepRecord:
    losses: list[torch.Tensor] = []
    if stage.is_first and stage.is_last:
        schedule.step(x, target=y, losses=losses)
    elif stage.is_first:
        schedule.step(x)
    elif stage.is_last:
        schedule.step(target=y, losses=losses)
    else:
        schedule.step()
    loss = torch.stack([v.detach() for v in losses]).sum() / m if stage.is_last else None
    return StepRecord(loss=loss)


def train_pp(run: Run) -> dict:
    job, env, args = run.job, run.env, run.args
    p, m = env.world_size, args.microbatches
    windows = job.batch_size * job.grad_accum
    dataset, corpus = job.dataset()
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size)  # same init on every rank; each keeps its stage
    keys = list(model.state_dict())
    n_params = sum(q.numel() for q in model.parameters())
    stage = GPTStage(model, env.rank, p).to(env.device)
    del model
    optimizer = job.optimizer(stage)
    group = tied_group(p)
    schedule = pipeline_schedule(p, m, args.pp_schedule)
    layers = stage_layers(job.n_layer, p)
    env.print(f"pipeline: {p} stages ({env.backend}, {env.device.type}) | blocks per stage "
              f"{[len(r) for r in layers]} | {args.pp_schedule}, {m} micro-batches of {windows // m} windows | "
              f"{n_params:,} parameters")
    lr_schedule, grad_clip = job.lr_schedule(), job.optimizer_recipe().grad_clip
    stream = micro_batches(dataset, batch_size=windows, seed=job.seed)
    hidden = (windows // m, job.block_size, job.n_embd)
    pipe = torch_pipeline(stage, args.pp_schedule, m, env.device) if args.impl == "torch" else None
    timer = StepTimer(env.device)
    losses: list[float] = []
    steps_events: list[list[dict]] = []
    peak_bytes, peak_in_flight, state_bytes = 0, 0, 0.0
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    for step in range(job.steps):
        lr = set_lr(optimizer, lr_schedule, step)
        x, y = next(stream)
        with timer.paused():
            dist.barrier()  # every stage starts the step's clock together
        start = time.perf_counter()
        if pipe is not None:
            record = torch_step(pipe, stage, x.to(env.device), y.to(env.device), m)
        else:
            record = run_schedule(stage, schedule[env.rank], list(x.chunk(m)), list(y.chunk(m)),
                                  hidden_shape=hidden, clock_start=start)
        sync_tied_gradients(stage, group)
        clip_pipeline_grad_norm(stage, grad_clip)
        optimizer.step()
        if step == 0:
            state_bytes = measure_model_states(stage, optimizer, step_counters=False).total
        optimizer.zero_grad(set_to_none=True)
        timer.step(windows * job.block_size)
        steps_events.append([e.as_dict() for e in record.events])
        peak_bytes = max(peak_bytes, record.peak_activation_bytes)
        peak_in_flight = max(peak_in_flight, record.peak_in_flight)
        done = step + 1
        if done % args.log_every == 0 or done == job.steps:
            with timer.paused():
                loss = record.loss if record.loss is not None else torch.zeros((), device=env.device)
                total = loss.detach().clone()
                dist.all_reduce(total)  # only the last stage's is non-zero
                losses.append(float(total))
                env.print(f"step {done:>4}/{job.steps} | loss {losses[-1]:.4f} | lr {lr:.2e}")

    gathered: list | None = [None] * p if env.is_main else None
    dist.gather_object(steps_events, gathered, dst=0)
    full = gather_full_state_dict(stage, keys) if args.save_final else None
    if args.save_final:
        save_final(run, full)
    summary = report(run, timer, stop=job.steps, losses=losses, n_params=n_params)
    summary.update({
        "impl": args.impl, "schedule": args.pp_schedule, "microbatches": m, "num_stages": p,
        "blocks_per_stage": [len(r) for r in layers],
        "model_state_bytes_per_rank": gather_values(state_bytes, run),
        "activation_bytes_per_rank": gather_values(peak_bytes, run),
        "in_flight_per_rank": [int(v) for v in gather_values(peak_in_flight, run)],
        "in_flight_schedule": max_in_flight(schedule),
        "bubble_formula": bubble_formula(p, m),
        "bubble_simulated": bubble_fraction(simulate(schedule, 1.0, 2.0), p),
    })
    if pipe is not None:  # torch's schedule: no per-operation timestamps or activation accounting
        summary.update({"activation_bytes_per_rank": None, "in_flight_per_rank": None, "bubble_measured": None,
                        "timeline": []})
    elif gathered is not None:
        per_step = [[e for rank_steps in gathered for e in rank_steps[i]] for i in range(job.steps)]
        bubbles = [bubble_fraction(events, p) for events in per_step]
        later = bubbles[1:] or bubbles  # the first step allocates and warms up
        summary.update({"bubble_measured": statistics.median(later), "bubble_measured_per_step": bubbles,
                        "timeline": sorted(per_step[-1], key=lambda e: (e["start"], e["stage"]))})
        env.print(f"bubble: measured {summary['bubble_measured']:.3f} (median over steps 2..) | formula "
                  f"(p-1)/(m+p-1) = {summary['bubble_formula']:.3f} | activations held per stage "
                  f"{[int(b) for b in summary['activation_bytes_per_rank']]} B")
    return summary


if __name__ == "__main__":
    exit_process(run_script(build_parser(), train_pp, script=SCRIPT, check=check_args))
