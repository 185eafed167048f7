"""The planner against this machine: DDP, FSDP, TP and PP runs of ONE TinyGPT job on 2 gloo processes, each
step time and memory per rank next to what ``bigtrain_lab.estimate.planner`` predicts for the same plan on this
CPU as measured by its probes.

    python bench/parallel_plans.py [--steps 12] [--n-layer 4 --n-embd 128 --n-head 4] [--batch-size 8]
    python bench/parallel_plans.py --steps 3 --n-layer 2 --n-embd 32 --out-dir /tmp   # a quick check

1. ``planner.measure_cpu_hardware``: a one-thread float32 matmul of the job's MLP shape ((batch x block, C) @
   (C, 4C)) gives the "peak" FLOP/s, a gloo all-reduce between 2 processes the link bandwidth and latency.
2. ``scripts/ddp_train.py`` (Plan dp 2), ``scripts/fsdp_train.py`` (dp 2, ZeRO-3), ``scripts/tp_train.py --tp 2``
   (tp 2: both ranks see the same batch), ``scripts/pp_train.py --pp-schedule 1f1b --microbatches 4`` (pp 2, the
   batch split into 4 micro-batches) under torchrun, OMP_NUM_THREADS=1; a script that is not there is skipped.
3. For each: measured ``step_seconds`` (first step left out by the scripts' timer), ``model_state_bytes_per_rank``
   and ``activation_bytes_per_rank`` where the script reports them, the planner's prediction
   (``planner.cpu_assumptions``: fp32 AdamW, efficiencies 1, DDP-style overlap) and the relative error
   ``(predicted - measured) / measured``.
4. A tiny model's step is mostly framework overhead, not matmul FLOPs, so the FLOP-based time is far too short.
   A second prediction takes the compute efficiency from ONE process running the same job (ddp_train.py with
   nproc 1: model FLOPs / (step time x probe FLOP/s)) and checks only what parallelism adds: the split of the
   work, the communication and the bubble (``step_error_calibrated``).
Saves bench/results/parallel_plans.json with the conditions (bench/conditions.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conditions import Conditions, save_result  # noqa: E402

from bigtrain_lab.distributed import run_torchrun  # noqa: E402
from bigtrain_lab.distributed.job import Job, job_args  # noqa: E402
from bigtrain_lab.estimate.planner import (  # noqa: E402
    ModelShape,
    Plan,
    as_dict,
    cpu_assumptions,
    estimate,
    measure_cpu_hardware,
)

MICROBATCHES = 4


def runs(job: Job) -> dict[str, tuple[str, list[str], Plan]]:
    """name -> (script, extra flags, the plan it runs)."""
    bs, ga = job.batch_size, job.grad_accum
    return {
        "DDP": ("ddp_train.py", [], Plan(dp=2, micro_batch=bs, grad_accum=ga)),
        "FSDP (ZeRO-3)": ("fsdp_train.py", [], Plan(dp=2, zero_stage=3, micro_batch=bs, grad_accum=ga)),
        "TP": ("tp_train.py", ["--tp", "2"], Plan(dp=1, tp=2, micro_batch=bs, grad_accum=ga)),
        "PP (1F1B)": ("pp_train.py", ["--pp-schedule", "1f1b", "--microbatches", str(MICROBATCHES)],
                      Plan(dp=1, pp=2, micro_batch=bs * ga // MICROBATCHES, grad_accum=MICROBATCHES)),
    }


def run_script(job: Job, script: str, extra: list[str], workdir: Path, nproc: int = 2) -> dict | None:
    path = ROOT / "scripts" / script
    if not path.is_file():
        print(f"  skipped {script}: scripts/{script} is not there yet")
        return None
    out = workdir / f"{path.stem}-{nproc}.json"
    result = run_torchrun(path, [*job_args(job), "--device", "cpu", "--log-every", str(job.steps),
                                 "--summary-json", str(out), *extra], nproc_per_node=nproc, echo=False,
                          timeout_s=900,
                          env={"OMP_NUM_THREADS": "1"})
    if not result.ok or not out.is_file():
        print(f"  {script} failed:\n{result.tail(15)}")
        return None
    return json.loads(out.read_text())


def _rel(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or not measured:
        return None
    return (predicted - measured) / measured


def compare(name: str, plan: Plan, summary: dict, model: ModelShape, hardware, assumptions,
            calibrated_assumptions) -> dict:
    e = estimate(model, hardware, plan, assumptions)
    cal = estimate(model, hardware, plan, calibrated_assumptions)
    states = e.memory["weights"] + e.memory["gradients"] + e.memory["optimizer states"]
    acts = e.memory["activations"] + e.memory["logits"]
    measured_states = summary.get("model_state_bytes_per_rank")
    measured_acts = summary.get("activation_bytes_per_rank")
    worst_states = max(measured_states) if measured_states and max(measured_states) > 0 else None
    worst_acts = max(measured_acts) if measured_acts and max(measured_acts) > 0 else None
    row = {"name": name, "plan": vars(plan), "measured_step_seconds": summary["step_seconds"],
           "predicted_step_seconds": e.step_seconds, "step_error": _rel(e.step_seconds, summary["step_seconds"]),
           "predicted_step_seconds_calibrated": cal.step_seconds,
           "step_error_calibrated": _rel(cal.step_seconds, summary["step_seconds"]),
           "measured_model_state_bytes_per_rank": measured_states, "predicted_model_state_bytes": states,
           "model_state_error": _rel(states, worst_states),
           "measured_activation_bytes_per_rank": measured_acts, "predicted_activation_bytes": acts,
           "activation_error": _rel(acts, worst_acts), "final_loss": summary.get("final_loss"),
           "n_params": summary.get("n_params"), "prediction": as_dict(e)}

    def fmt(x: float | None) -> str:
        return "   n/a" if x is None else f"{x:+6.0%}"

    print(f"  {name:<14} step {1e3 * summary['step_seconds']:8.1f} ms measured, {1e3 * e.step_seconds:8.1f} ms "
          f"predicted ({fmt(row['step_error'])}), {1e3 * cal.step_seconds:8.1f} ms calibrated "
          f"({fmt(row['step_error_calibrated'])}) | states {fmt(row['model_state_error'])} | activations "
          f"{fmt(row['activation_error'])}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where parallel_plans.json goes")
    args = p.parse_args(argv)
    if args.batch_size % MICROBATCHES or args.n_layer % 2 or args.n_head % 2:
        p.error(f"--batch-size must be a multiple of {MICROBATCHES}, --n-layer and --n-head even (PP 2, TP 2)")
    job = Job(steps=args.steps, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
              batch_size=args.batch_size, block_size=args.block_size, max_chars=400_000)
    _, corpus = job.dataset()
    print(f"TinyGPT {job.n_layer} layers x {job.n_embd}, {job.n_head} heads, vocabulary {corpus.vocab_size}, "
          f"{job.batch_size} x {job.block_size} tokens per rank per step, {job.steps} steps, 2 gloo processes")
    conditions = Conditions.start(threads=1, workers=2)
    rows_tokens = job.batch_size * job.block_size
    hardware, probes = measure_cpu_hardware(matmul=(rows_tokens, job.n_embd, 4 * job.n_embd))
    print(f"  probes: matmul {probes['matmul_flops'] / 1e9:.2f} GFLOP/s (1 thread), gloo all-reduce "
          f"{hardware.intra_bandwidth / 1e9:.2f} GB/s per link, latency {1e6 * hardware.latency:.0f} us per step")
    workdir = Path(tempfile.mkdtemp(prefix="bigtrain-plans-bench-"))
    single = run_script(job, "ddp_train.py", [], workdir, nproc=1)
    if single is None:
        raise SystemExit("the one-process run failed")
    model = ModelShape(job.n_layer, job.n_embd, job.n_head, corpus.vocab_size, job.block_size,
                       n_params=int(single["n_params"]), name="TinyGPT")
    one = estimate(model, hardware, Plan(dp=1, micro_batch=job.batch_size, grad_accum=job.grad_accum),
                   cpu_assumptions())
    efficiency = min(1.0, one.step_seconds / single["step_seconds"])
    print(f"  1 process      step {1e3 * single['step_seconds']:8.1f} ms measured, {1e3 * one.step_seconds:8.1f} ms "
          f"from FLOPs: compute efficiency {efficiency:.3f} of the probe's FLOP/s")
    calibrated = cpu_assumptions(compute_efficiency=efficiency)
    rows, skipped = [], []
    for name, (script, extra, plan) in runs(job).items():
        summary = run_script(job, script, extra, workdir)
        if summary is None:
            skipped.append(name)
            continue
        rows.append(compare(name, plan, summary, model, hardware, cpu_assumptions(), calibrated))
    conditions.finish()
    results = {"job": vars(job), "vocab_size": corpus.vocab_size, "hardware": vars(hardware), "probes": probes,
               "assumptions": vars(cpu_assumptions()), "one_process": single,
               "calibrated_compute_efficiency": efficiency, "runs": rows, "skipped": skipped}
    print(f"saved {save_result('parallel_plans', results, conditions, out_dir=args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
