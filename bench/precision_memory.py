"""fp32 vs bf16 speed, and activation checkpointing's memory and time, on TinyGPT; ZeRO sharding measured.

    python bench/precision_memory.py [--steps 20] [--rounds 5] [--threads 1] [--world-size 2] [--out-dir DIR]
    bigtrain-lab bench precision_memory

Measures, on TinyGPT at nanoGPT's CPU shape (n_layer=4, n_head=4, n_embd=128, block_size=64, batch 12):
  1. ms per training step (forward, backward, AdamW) in fp32 and under bf16 autocast, interleaved rounds,
     median; a 1024x1024 matmul in fp32 and bf16; the operator-time profile of one step in each precision;
  2. activation checkpointing: bytes saved for backward (saved_tensors_hooks), peak of live tensor
     storages over forward + backward (bigtrain_lab.memory.LiveTensorPeak) and ms per step, with and
     without; the calculator's activation formula next to each measurement;
  3. per-rank bytes of parameters, gradients and AdamW states under plain DDP, ZeRO-1
     (ZeroRedundancyOptimizer) and ZeRO-3 (FSDP2) on --world-size real gloo processes, next to the
     calculator's numbers.
Prints a table and saves bench/results/precision_memory.json with the conditions it ran under
(bench/conditions.py, with the torch threads it used, also under "settings"; the CPU's bf16/AMX flags are saved
as "cpu_flags"). Other processes on the machine add
noise: a run whose load average exceeds the core count is marked loaded and not quoted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from conditions import Conditions, save_result

from bigtrain_lab import environment_report, seed_everything
from bigtrain_lab.memory import (
    LiveTensorPeak,
    SavedTensorBytes,
    gpt_activation_bytes,
    measure_sharded_model_states,
    model_state_bytes,
)
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.precision import profile_step_ms, time_train_steps
from bigtrain_lab.recipes import NANOGPT_CPU_BATCH_SIZE, NANOGPT_CPU_SHAPE

ROOT = Path(__file__).resolve().parent.parent
SHAPE, BATCH = NANOGPT_CPU_SHAPE, NANOGPT_CPU_BATCH_SIZE
VOCAB = 222  # the standard-library corpus has 222 distinct characters


def model(**overrides) -> TinyGPT:
    seed_everything(0)
    return TinyGPT(GPTConfig(vocab_size=VOCAB, **{**SHAPE, **overrides}))


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, VOCAB, (BATCH, SHAPE["block_size"]), generator=g),
            torch.randint(0, VOCAB, (BATCH, SHAPE["block_size"]), generator=g))


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def profile_step(precision: str) -> dict[str, float]:
    """Operator self time per step (ms) by category: bigtrain_lab.precision.profile_step_ms over 4 steps."""
    return {k: round(v, 2) for k, v in profile_step_ms(model, batch(), precision=precision, steps=3, warmup=1).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each variant")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (default: torch's, the physical cores); the lesson times with 1")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"),
                        help="where precision_memory.json goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()  # what torch actually uses, recorded in "settings" and the conditions
    env = environment_report()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags {env.cpu_flags}")
    conditions = Conditions.start(threads=threads)

    # 1. precision
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a16, b16 = a.bfloat16(), b.bfloat16()
    gemm = {"fp32": median_ms(lambda: a @ b, args.steps), "bf16": median_ms(lambda: a16 @ b16, args.steps)}
    step_ms: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for precision in step_ms:
            step_ms[precision] += time_train_steps(model(), batch(), steps=args.steps, precision=precision)
    precision_rows = {p: {"ms_per_step": round(statistics.median(v), 2),
                          "tokens_per_s": round(BATCH * SHAPE["block_size"] / statistics.median(v) * 1000),
                          "gemm_1024_ms": round(gemm[p], 2), "profile_ms_per_step": profile_step(p)}
                      for p, v in step_ms.items()}
    bf16_over_fp32 = precision_rows["bf16"]["ms_per_step"] / precision_rows["fp32"]["ms_per_step"]
    for p, row in precision_rows.items():
        print(f"{p}: {row['ms_per_step']:8.2f} ms/step, {row['tokens_per_s']:7,} tokens/s, 1024^2 matmul "
              f"{row['gemm_1024_ms']:.2f} ms, profile {row['profile_ms_per_step']}")
    print(f"bf16 autocast step time / fp32 step time: {bf16_over_fp32:.2f}")

    # 2. activation checkpointing
    x, y = batch()
    ckpt_rows = {}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for flag in times:
            times[flag] += time_train_steps(model(gradient_checkpointing=flag), (x, y), steps=args.steps)
    for flag in (False, True):
        m = model(gradient_checkpointing=flag)
        with SavedTensorBytes(exclude=m.parameters()) as saved:
            m(x, y)
        with LiveTensorPeak() as live:
            m(x, y)[1].backward()
        formula = gpt_activation_bytes(n_layer=4, n_embd=128, n_head=4, vocab_size=VOCAB, seq_len=64,
                                       batch_size=BATCH, checkpointing=flag)
        ckpt_rows[str(flag).lower()] = {"saved_for_backward_bytes": saved.nbytes, "formula_bytes": formula,
                                        "peak_live_tensor_bytes": live.peak,
                                        "ms_per_step": round(statistics.median(times[flag]), 2)}
        print(f"checkpointing={flag!s:5s}: saved {saved.nbytes:>11,} B (formula {formula:,}), peak live "
              f"{live.peak:>11,} B, {ckpt_rows[str(flag).lower()]['ms_per_step']:.2f} ms/step")

    # 3. ZeRO on real processes
    config = GPTConfig(vocab_size=VOCAB, **SHAPE)
    n_params = TinyGPT(config).num_parameters(non_embedding=False)
    start = time.perf_counter()
    sharded = measure_sharded_model_states(config, world_size=args.world_size, backend="gloo")
    zero_rows = {}
    for name, stage in (("ddp", 0), ("zero1", 1), ("fsdp", 3)):
        calc = model_state_bytes(n_params, precision="fp32", zero_stage=stage, world_size=args.world_size)
        zero_rows[name] = {"zero_stage": stage, "measured_per_rank": sharded[name], "calculator": calc.as_dict()}
        print(f"ZeRO stage {stage} ({name}): measured per rank "
              f"{[round(r['parameters'] + r['gradients'] + r['optimizer_states']) for r in sharded[name]]}, "
              f"calculator {calc.total:,.0f}")
    print(f"(sharded run on {args.world_size} gloo processes: {time.perf_counter() - start:.1f} s)")

    conditions.finish()
    result = {
        "cpu_flags": env.cpu_flags,
        "model": {**SHAPE, "vocab_size": VOCAB, "batch_size": BATCH, "n_params": n_params},
        "settings": {"steps": args.steps, "rounds": args.rounds, "world_size": args.world_size, "threads": threads},
        "precision": precision_rows,
        "bf16_over_fp32_step_time": round(bf16_over_fp32, 3),
        "checkpointing": ckpt_rows,
        "zero": zero_rows,
    }
    print(f"saved {save_result('precision_memory', result, conditions, out_dir=args.out_dir)}")


if __name__ == "__main__":
    main()
