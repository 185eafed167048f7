"""DDP on this machine's CPU: 1 vs 2 processes, the share of step time spent in the gradient all-reduce,
and the effect of DDP's bucket size.

    python bench/ddp_scaling.py [--steps 30] [--n-layer 4 --n-embd 128] [--buckets 0.05 1 25] [--out-dir DIR]
    bigtrain-lab bench ddp_scaling

Runs ``scripts/ddp_train.py`` under torchrun (gloo, one thread per process: OMP_NUM_THREADS=1 for every
run, which torchrun sets only when it starts more than one process) with a fixed per-process batch (weak scaling):
  1. 1 process vs 2 processes: ms per step, samples/s, and the scaling efficiency
     (samples/s with 2 / (2 x samples/s with 1));
  2. 2 processes with ``--skip-allreduce`` (every backward under no_sync): the step time without gradient
     communication; the difference is the exposed all-reduce time, as a share of the step;
  3. 2 processes with several ``--bucket-cap-mb``: small buckets mean many small all-reduces (latency),
     one huge bucket means no overlap with the backward pass.
Step times leave out each run's first step. Saves bench/results/ddp_scaling.json with the conditions it ran
under (bench/conditions.py; torch threads: 1 per process). Six torchrun launches of --steps steps each.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conditions import Conditions, save_result  # noqa: E402

from bigtrain_lab.distributed import run_torchrun  # noqa: E402
from bigtrain_lab.distributed.job import Job, job_args  # noqa: E402


def run(job: Job, nproc: int, extra: list[str], workdir: Path) -> dict:
    out = workdir / f"summary-{nproc}-{'-'.join(extra) or 'default'}.json".replace("--", "")
    result = run_torchrun(ROOT / "scripts" / "ddp_train.py",
                          [*job_args(job), "--device", "cpu", "--log-every", str(job.steps), "--summary-json",
                           str(out), *extra], nproc_per_node=nproc, echo=False, timeout_s=900,
                          env={"OMP_NUM_THREADS": "1"})  # torchrun sets it only when nproc > 1
    result.check()
    summary = json.loads(out.read_text())
    print(f"  {nproc} process(es) {' '.join(extra):<28} {1e3 * summary['step_seconds']:8.1f} ms/step "
          f"{summary['samples_per_second']:8.1f} samples/s", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--buckets", type=float, nargs="+", default=[0.05, 1.0, 25.0])
    p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where ddp_scaling.json goes")
    args = p.parse_args(argv)
    job = Job(steps=args.steps, n_layer=args.n_layer, n_head=4, n_embd=args.n_embd, batch_size=args.batch_size,
              block_size=args.block_size, max_chars=400_000)
    workdir = Path(tempfile.mkdtemp(prefix="bigtrain-ddp-bench-"))
    print(f"DDP scaling on {platform.processor() or platform.machine()}, TinyGPT {args.n_layer} layers x "
          f"{args.n_embd}, {args.batch_size} x {args.block_size} tokens per process per step, {args.steps} steps")
    conditions = Conditions.start(threads=1, workers=2)  # OMP_NUM_THREADS=1 in each of up to 2 ranks
    one = run(job, 1, [], workdir)
    two = run(job, 2, [], workdir)
    two_free = run(job, 2, ["--skip-allreduce"], workdir)
    buckets = {str(b): run(job, 2, ["--bucket-cap-mb", str(b)], workdir) for b in args.buckets}
    conditions.finish()
    efficiency = two["samples_per_second"] / (2 * one["samples_per_second"])
    exposed = two["step_seconds"] - two_free["step_seconds"]
    results = {
        "job": vars(job), "n_params": two["n_params"],
        "gradient_bytes": 4 * two["n_params"],
        "one_process": one, "two_processes": two, "two_processes_without_allreduce": two_free,
        "scaling_efficiency": efficiency, "exposed_allreduce_seconds": exposed,
        "allreduce_share_of_step": exposed / two["step_seconds"],
        "bucket_cap_mb": {b: {"step_seconds": s["step_seconds"], "samples_per_second": s["samples_per_second"]}
                          for b, s in buckets.items()},
    }
    print(f"scaling efficiency 1 -> 2 processes: {efficiency:.0%} | exposed all-reduce "
          f"{1e3 * exposed:.1f} ms = {results['allreduce_share_of_step']:.0%} of a 2-process step | gradients "
          f"{4 * two['n_params'] / 2**20:.1f} MiB")
    print(f"saved {save_result('ddp_scaling', results, conditions, out_dir=args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
