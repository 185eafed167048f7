"""Cached torchrun runs of scripts/tp_train.py for the tensor-parallel tests (each ~8-15 s on 2 busy cores).

TP = 2 gloo processes, the tiny job of ``tests/distributed_runs.py``; every rank sees the same batches, so
a correct run equals ``train_single_process(JOB, 1)`` (one process, the batch of ONE rank).
"""

from __future__ import annotations

import functools
import json

import torch

from tests.distributed_runs import JOB, ROOT, launch, one_process_weights

TP_SCRIPT = ROOT / "scripts" / "tp_train.py"
RUNS = {"megatron": [], "dtensor": ["--impl", "dtensor"], "sequence": ["--sequence-parallel"]}


@functools.cache
def tp_run(name: str) -> tuple[dict, dict]:
    """``(final full state_dict, summary)`` of the run ``name`` of RUNS."""
    result, folder = launch(TP_SCRIPT, f"tp-{name}",
                            ["--save-final", "final.pt", "--summary-json", "summary.json", *RUNS[name]])
    result.check()
    return torch.load(folder / "final.pt", weights_only=True), json.loads((folder / "summary.json").read_text())


def one_process() -> dict:
    """The same job on one process with one rank's batch."""
    return one_process_weights(JOB, 1)
