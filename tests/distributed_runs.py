"""Shared, cached torchrun runs for the distributed tests (each run costs ~10-30 s on 2 busy cores).

``functools.cache`` makes every run happen once per pytest process, whichever test file asks first.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch

from bigtrain_lab.distributed import run_torchrun
from bigtrain_lab.distributed.job import Job, job_args

ROOT = Path(__file__).resolve().parent.parent
DDP_SCRIPT = ROOT / "scripts" / "ddp_train.py"
FSDP_SCRIPT = ROOT / "scripts" / "fsdp_train.py"
#: A tiny job: 6 steps of 2 micro-batches of 4 windows per rank, a 1-layer TinyGPT.
JOB = Job(steps=6, batch_size=4, grad_accum=2, n_layer=1, n_head=2, n_embd=32, block_size=16, max_chars=30_000,
          warmup_steps=1)
WORLD = 2
_WORKDIR = Path(tempfile.mkdtemp(prefix="bigtrain-dist-tests-"))


def launch(script: Path, name: str, extra: list[str], *, max_restarts: int = 0):
    """Run ``script`` on WORLD gloo processes in its own folder; returns (LaunchResult, folder)."""
    folder = _WORKDIR / name
    folder.mkdir(parents=True, exist_ok=True)
    result = run_torchrun(script, [*job_args(JOB), "--device", "cpu", "--log-every", "2", *extra],
                          nproc_per_node=WORLD, max_restarts=max_restarts, cwd=folder, echo=False, timeout_s=300)
    return result, folder


def _final(result, folder: Path) -> dict:
    result.check()
    return torch.load(folder / "final.pt", weights_only=True)


@functools.cache
def ddp_uninterrupted() -> dict:
    result, folder = launch(DDP_SCRIPT, "ddp", ["--save-final", "final.pt"])
    return _final(result, folder)


@functools.cache
def fsdp_uninterrupted() -> tuple[dict, dict]:
    result, folder = launch(FSDP_SCRIPT, "fsdp", ["--save-final", "final.pt", "--summary-json", "summary.json"])
    return _final(result, folder), json.loads((folder / "summary.json").read_text())


@functools.cache
def one_process_weights(job: Job, world_size: int) -> dict:
    """The final state_dict of ``job`` trained on ONE process with the global batch of ``world_size`` ranks
    (``train_single_process``): what a correct DDP / FSDP (world_size ranks) or TP / PP run (world_size 1: every
    rank sees the same batch) ends with."""
    from bigtrain_lab.distributed.job import train_single_process

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on busy cores: one thread is ~10x faster (like the workers)
    try:
        model, _ = train_single_process(job, world_size)
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def single_process() -> dict:
    return one_process_weights(JOB, WORLD)
