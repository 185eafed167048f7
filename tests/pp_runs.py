"""Shared, cached torchrun runs of ``scripts/pp_train.py`` (2 gloo stages; each run ~10-20 s on busy cores).

``functools.cache`` makes every run happen once per pytest process, whichever test asks first.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import torch

from bigtrain_lab.distributed import run_torchrun
from bigtrain_lab.distributed.job import Job, job_args
from tests.distributed_runs import _WORKDIR, ROOT, one_process_weights
from tests.distributed_runs import JOB as DP_JOB

PP_SCRIPT = ROOT / "scripts" / "pp_train.py"
#: tests/distributed_runs.py's tiny job with 2 blocks (one per stage): 6 steps of 8 windows, 4 micro-batches.
JOB: Job = dataclasses.replace(DP_JOB, n_layer=2)
STAGES = 2
MICROBATCHES = 4


def launch(name: str, extra: list[str]):
    """``scripts/pp_train.py`` on STAGES gloo processes in its own folder; returns (LaunchResult, folder)."""
    folder = _WORKDIR / name
    folder.mkdir(parents=True, exist_ok=True)
    result = run_torchrun(PP_SCRIPT, [*job_args(JOB), "--device", "cpu", "--log-every", "2", *extra],
                          nproc_per_node=STAGES, cwd=folder, echo=False, timeout_s=300)
    return result, folder


@functools.cache
def pp_run(schedule: str, impl: str = "kit") -> tuple[dict, dict]:
    """(full state_dict rank 0 saved, summary JSON) of a run with ``--pp-schedule schedule --impl impl``."""
    result, folder = launch(f"pp-{schedule}-{impl}", ["--pp-schedule", schedule, "--impl", impl, "--microbatches",
                                                      str(MICROBATCHES), "--save-final", "final.pt",
                                                      "--summary-json", "summary.json"])
    result.check()
    return (torch.load(folder / "final.pt", weights_only=True),
            json.loads((folder / "summary.json").read_text()))


def single_process() -> dict:
    """The same job on one process (the global batch: batch_size * grad_accum windows per step)."""
    return one_process_weights(JOB, 1)
