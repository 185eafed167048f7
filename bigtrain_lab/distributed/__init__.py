"""Distributed training on the real engine (``torch.distributed``), shared by ``scripts/ddp_train.py`` and
``scripts/fsdp_train.py`` and by lesson 05.

- ``env``: read torchrun's environment, pick the backend (NCCL with CUDA, gloo otherwise) and the device,
  start and end the process group, with clear errors when a script is launched wrong.
- ``launch``: run ``torchrun`` from a notebook as a subprocess, with live, rank-tagged logs.
- ``data``: a map-style dataset of corpus windows and the micro-batch stream a rank sees through
  ``DistributedSampler`` (with ``set_epoch``), resumable at any step.
- ``job``: the run both scripts share (flags, data, TinyGPT, AdamW, schedule), and the same job on one
  process through ``bigtrain_lab.train.train`` for weight-by-weight comparisons.
- ``faults``: simulate a crashed worker (SIGKILL) to exercise ``torchrun --max-restarts``.
- ``memory``: model-state bytes per rank, measured (local shards) and from the ZeRO formula.
- ``buckets``: watch DDP's gradient buckets launch during backward (a communication hook).
"""

from bigtrain_lab.distributed.data import CharWindows, global_batch_indices, micro_batches
from bigtrain_lab.distributed.env import DistEnv, LaunchError, cleanup, init_distributed, read_launch_env
from bigtrain_lab.distributed.launch import LaunchResult, run_torchrun, torchrun_command

__all__ = [
    "CharWindows",
    "DistEnv",
    "LaunchError",
    "LaunchResult",
    "cleanup",
    "global_batch_indices",
    "init_distributed",
    "micro_batches",
    "read_launch_env",
    "run_torchrun",
    "torchrun_command",
]
