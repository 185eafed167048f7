"""Published GPU training figures, with their sources, and the planner's predictions for them.

* ``KORTHIKANTI_2022``: Korthikanti et al. 2022, *Reducing Activation Recomputation in Large Transformer
  Models* (arXiv 2205.05198), Table 3 (configurations: A100-80GB, s = 2048, V = 51200, no data parallelism,
  interleaved 1F1B with 3 chunks for 175B and 530B) and Table 5 (seconds per iteration and MFU with sequence
  parallelism + selective recomputation). The MFU column is also in the Megatron-LM README; the MFU the
  planner's FLOP count gives from the published iteration time matches it (a check in the tests).
* ``NARAYANAN_2021``: Narayanan et al. 2021, *Efficient Large-Scale Language Model Training on GPU Clusters
  Using Megatron-LM* (SC 2021, arXiv 2104.04473), Table 1: weak scaling on Selene (DGX A100), achieved
  teraFLOP/s per GPU counted with full activation recomputation (their eq. 3, ``96 B s l h^2 (1 + s / 6h +
  V / 16 l h)``); the micro-batch size and schedule of each row are not in the table: the planner assumes
  micro-batch 1 and the non-interleaved schedule.
* ``LLAMA2_70B``: Touvron et al. 2023, *Llama 2: Open Foundation and Fine-Tuned Chat Models*, Table 1 (2.0T
  tokens, 4k context, 4M-token global batch) and Table 2 (1,720,320 A100-80GB GPU-hours for 70B). The cluster
  size and plan are not published: the planner picks its best plan on ``nodes`` nodes.

The Ultra-Scale Playbook's formulas are not used as a check here: they restate the ZeRO and Korthikanti formulas
this package already implements (``formulas``). Every comparison returns the relative error
``(predicted - published) / published``; no bound is promised beyond what the tests state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bigtrain_lab.estimate.planner import (
    A100_80GB,
    Assumptions,
    ModelShape,
    Plan,
    estimate,
    plans,
)

__all__ = ["KORTHIKANTI_2022", "LLAMA2_70B", "NARAYANAN_2021", "PublishedRun", "compare_korthikanti",
           "compare_llama2", "compare_narayanan", "compare_all"]

SEQ, VOCAB = 2048, 51200


@dataclass(frozen=True)
class PublishedRun:
    """One published run: model, plan, and what was reported."""

    name: str
    model: ModelShape
    plan: Plan
    interleave: int
    reported: dict[str, float]
    source: str


def _gpt(layers: int, hidden: int, heads: int, name: str) -> ModelShape:
    return ModelShape(layers, hidden, heads, VOCAB, SEQ, name=name)


_K = "Korthikanti et al. 2022, Tables 3 and 5"
#: (name, heads, hidden, layers, tp, pp, gpus, global batch, micro-batch, interleave, seconds/iteration, MFU)
KORTHIKANTI_2022 = tuple(
    PublishedRun(name, _gpt(layers, hidden, heads, name),
                 Plan(dp=gpus // (tp * pp), tp=tp, pp=pp, micro_batch=mb, grad_accum=batch // mb // (gpus // (tp * pp))),
                 v, {"step_seconds": sec, "mfu": mfu}, _K)
    for name, heads, hidden, layers, tp, pp, gpus, batch, mb, v, sec, mfu in (
        ("22B", 64, 6144, 48, 8, 1, 8, 4, 4, 1, 1.10, 0.415),
        ("175B (GPT-3)", 96, 12288, 96, 8, 8, 64, 64, 1, 3, 13.75, 0.514),
        ("530B (MT-NLG)", 128, 20480, 105, 8, 35, 280, 280, 1, 3, 37.83, 0.560),
        ("1T", 160, 25600, 128, 8, 64, 512, 512, 1, 1, 71.49, 0.563),
    ))

_N = "Narayanan et al. 2021, Table 1"
#: (billions, heads, hidden, layers, tp, pp, gpus, global batch, teraFLOP/s per GPU, % of peak)
NARAYANAN_2021 = tuple(
    PublishedRun(f"{billions}B", _gpt(layers, hidden, heads, f"{billions}B"),
                 Plan(dp=gpus // (tp * pp), tp=tp, pp=pp, micro_batch=1, grad_accum=batch // (gpus // (tp * pp))),
                 1, {"tflops_per_gpu": tf, "fraction_of_peak": peak}, _N)
    for billions, heads, hidden, layers, tp, pp, gpus, batch, tf, peak in (
        (1.7, 24, 2304, 24, 1, 1, 32, 512, 137, 0.44),
        (3.6, 32, 3072, 30, 2, 1, 64, 512, 138, 0.44),
        (7.5, 32, 4096, 36, 4, 1, 128, 512, 142, 0.46),
        (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135, 0.43),
        (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138, 0.44),
        (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140, 0.45),
        (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148, 0.47),
        (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155, 0.50),
        (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163, 0.52),
        (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163, 0.52),
    ))

#: Touvron et al. 2023: 70B (nominal), 2.0T tokens, 4k context, 4M tokens per step, Table 2's GPU-hours
LLAMA2_70B = {"n_params": 70e9, "tokens": 2.0e12, "seq": 4096, "global_batch_tokens": 4 * 2**20,
              "gpu_hours": 1_720_320, "hardware": "A100-80GB",
              "source": "Touvron et al. 2023, Tables 1 and 2"}


def _rel(predicted: float, published: float) -> float:
    return (predicted - published) / published


def compare_korthikanti(assumptions: Assumptions | None = None) -> list[dict[str, Any]]:
    """Planner vs Table 5 (sequence parallelism + selective recomputation, the paper's setting)."""
    base = Assumptions() if assumptions is None else assumptions
    rows = []
    for run in KORTHIKANTI_2022:
        a = Assumptions(**{**base.__dict__, "recompute": "selective", "sequence_parallel": True,
                           "interleave": run.interleave})
        e = estimate(run.model, A100_80GB, run.plan, a)
        implied_mfu = e.model_flops / (run.reported["step_seconds"] * run.plan.gpus * A100_80GB.peak_flops)
        rows.append({"name": run.name, "gpus": run.plan.gpus, "tp": run.plan.tp, "pp": run.plan.pp,
                     "published_step_s": run.reported["step_seconds"], "predicted_step_s": e.step_seconds,
                     "step_error": _rel(e.step_seconds, run.reported["step_seconds"]),
                     "published_mfu": run.reported["mfu"], "predicted_mfu": e.mfu,
                     "mfu_from_published_time": implied_mfu, "memory_gib": e.memory_per_gpu / 2**30,
                     "fits": e.fits, "source": run.source})
    return rows


def compare_narayanan(assumptions: Assumptions | None = None) -> list[dict[str, Any]]:
    """Planner vs Table 1: teraFLOP/s per GPU counted with full recomputation, as the paper counts them."""
    base = Assumptions() if assumptions is None else assumptions
    a = Assumptions(**{**base.__dict__, "recompute": "full", "sequence_parallel": False, "interleave": 1})
    rows = []
    for run in NARAYANAN_2021:
        e = estimate(run.model, A100_80GB, run.plan, a)
        tflops = e.hardware_flops / (e.step_seconds * run.plan.gpus) / 1e12
        published = run.reported["tflops_per_gpu"]
        rows.append({"name": run.name, "gpus": run.plan.gpus, "tp": run.plan.tp, "pp": run.plan.pp,
                     "dp": run.plan.dp, "published_tflops": published, "predicted_tflops": tflops,
                     "tflops_error": _rel(tflops, published), "predicted_mfu": e.mfu,
                     "memory_gib": e.memory_per_gpu / 2**30, "fits": e.fits, "source": run.source})
    return rows


def compare_llama2(nodes: int = 64, assumptions: Assumptions | None = None) -> dict[str, Any]:
    """Planner's best plan for Llama-2 70B on ``nodes`` DGX A100 nodes vs the published GPU-hours."""
    from bigtrain_lab.estimate.planner import MODELS

    model = MODELS["Llama-2 70B"]
    batch = LLAMA2_70B["global_batch_tokens"] // model.seq
    best = plans(model, A100_80GB, nodes, batch, assumptions=assumptions)[0]
    gpu_hours = LLAMA2_70B["tokens"] / best.tokens_per_second * best.plan.gpus / 3600
    published_mfu = (6 * LLAMA2_70B["n_params"] * LLAMA2_70B["tokens"]
                     / (LLAMA2_70B["gpu_hours"] * 3600 * A100_80GB.peak_flops))
    return {"name": "Llama-2 70B", "plan": best.row(), "published_gpu_hours": LLAMA2_70B["gpu_hours"],
            "predicted_gpu_hours": gpu_hours, "gpu_hours_error": _rel(gpu_hours, LLAMA2_70B["gpu_hours"]),
            "published_6nd_mfu": published_mfu, "predicted_mfu": best.mfu, "fits": best.fits,
            "source": LLAMA2_70B["source"]}


def compare_all(assumptions: Assumptions | None = None) -> dict[str, Any]:
    """Every comparison: ``{"korthikanti_2022": [...], "narayanan_2021": [...], "llama2_70b": {...}}``."""
    return {"korthikanti_2022": compare_korthikanti(assumptions), "narayanan_2021": compare_narayanan(assumptions),
            "llama2_70b": compare_llama2(assumptions=assumptions)}
