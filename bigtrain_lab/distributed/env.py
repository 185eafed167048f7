"""torchrun's environment -> rank, world size, backend and device; process-group start and end.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device and tells each who it
is through environment variables: ``RANK`` (0 .. WORLD_SIZE-1 over all nodes), ``LOCAL_RANK`` (0 ..
LOCAL_WORLD_SIZE-1 on this node: which GPU to use), ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, and
``MASTER_ADDR`` / ``MASTER_PORT`` (where the rendezvous store lives). ``TORCHELASTIC_RESTART_COUNT``
counts the restarts of the worker group (``--max-restarts``).
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist

REQUIRED_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
DEVICES = ("auto", "cpu", "cuda")


class LaunchError(RuntimeError):
    """The script was started in a way it cannot run; the message says how to launch it."""


@dataclass(frozen=True)
class DistEnv:
    """Who this process is in the job, and what it runs on."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    restart_count: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes checkpoints."""
        return self.rank == 0

    def print(self, *args, **kwargs) -> None:
        """``print`` on rank 0 only (every rank printing the same line N times is noise)."""
        if self.is_main:
            print(*args, **kwargs, flush=True)


def read_launch_env(environ: Mapping[str, str] | None = None, *, script: str = "this script") -> dict[str, int]:
    """Rank, local rank, world sizes and restart count from torchrun's variables.

    Raises ``LaunchError`` naming the missing variables and the command to use when the process was not
    started by torchrun (e.g. ``python scripts/ddp_train.py``), or when the variables are inconsistent.
    """
    environ = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_VARS if name not in environ]
    if missing:
        raise LaunchError(
            f"{script} must be launched by torchrun, which sets {', '.join(missing)} for every process. "
            f"For example, 2 processes on this machine:\n"
            f"    torchrun --standalone --nproc_per_node=2 {script} ...\n"
            f"(torchrun is python -m torch.distributed.run; plain `python {script}` starts one process "
            f"that does not know its rank)")
    try:
        values = {name: int(environ[name]) for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
        values["TORCHELASTIC_RESTART_COUNT"] = int(environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError as exc:
        raise LaunchError(f"torchrun's variables must be integers: {exc}") from None
    if not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise LaunchError(f"RANK={values['RANK']} is outside [0, WORLD_SIZE={values['WORLD_SIZE']})")
    if not 0 <= values["LOCAL_RANK"] < values["LOCAL_WORLD_SIZE"] <= values["WORLD_SIZE"]:
        raise LaunchError(f"inconsistent LOCAL_RANK={values['LOCAL_RANK']}, "
                          f"LOCAL_WORLD_SIZE={values['LOCAL_WORLD_SIZE']}, WORLD_SIZE={values['WORLD_SIZE']}")
    return {"rank": values["RANK"], "local_rank": values["LOCAL_RANK"], "world_size": values["WORLD_SIZE"],
            "local_world_size": values["LOCAL_WORLD_SIZE"],
            "restart_count": values["TORCHELASTIC_RESTART_COUNT"]}


def choose_backend(device: str, local_rank: int, local_world_size: int,
                   cuda_devices: int | None = None) -> tuple[str, torch.device]:
    """``(backend, device)``: NCCL on GPU ``LOCAL_RANK`` when CUDA is used, gloo on the CPU otherwise.

    ``device``: "auto" (CUDA when present), "cpu" or "cuda". One process per GPU: more processes on a
    node than it has GPUs is a ``LaunchError`` (two NCCL ranks on one GPU hang or fail).
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if cuda_devices is None:
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cpu" or (device == "auto" and cuda_devices == 0):
        return "gloo", torch.device("cpu")
    if cuda_devices == 0:
        raise LaunchError("--device cuda, but no CUDA device is visible (check nvidia-smi and "
                          "CUDA_VISIBLE_DEVICES); --device cpu runs on gloo")
    if local_world_size > cuda_devices:
        raise LaunchError(
            f"{local_world_size} processes on this node (--nproc_per_node) but only {cuda_devices} CUDA "
            f"device(s) visible: one process per GPU, so use --nproc_per_node={cuda_devices} "
            f"(or --nproc_per_node=gpu)")
    return "nccl", torch.device("cuda", local_rank)


def init_distributed(device: str = "auto", *, script: str = "this script", timeout_s: float = 300.0,
                     environ: Mapping[str, str] | None = None) -> DistEnv:
    """Read torchrun's environment, pick backend and device, ``init_process_group`` and return who we are.

    ``timeout_s`` bounds how long a collective waits for a missing peer before raising (instead of
    hanging forever when another rank died or diverged).
    """
    info = read_launch_env(environ, script=script)
    backend, dev = choose_backend(device, info["local_rank"], info["local_world_size"])
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # before any CUDA work: else every rank allocates on GPU 0
    timeout = timedelta(seconds=timeout_s)
    # torchrun's store outlives a restart of the worker group: without a prefix per attempt, a restarted
    # rank can read the addresses the killed attempt published and fail to connect ("Connection refused"
    # in gloo's connectFullMesh), depending on who writes first. Namespacing the keys by the restart
    # count makes every attempt rendezvous afresh.
    store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
    store = dist.PrefixStore(f"bigtrain/attempt_{info['restart_count']}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout,
                            device_id=dev if dev.type == "cuda" else None)
    return DistEnv(backend=backend, device=dev, **info)


def cleanup() -> None:
    """``destroy_process_group`` when one is running (a clean exit: no leaked NCCL communicators)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End a torchrun worker with ``code`` after ``cleanup()``, without tearing the interpreter down.

    ``destroy_process_group`` does not always end a gloo group: DDP's reducer, FSDP's and DTensor's
    meshes hold it through reference cycles that cross C++, which ``gc`` cannot free, so its worker
    threads (``pt_gloo_runloop``, ``gloo_tcp_loop``) outlive it (tests/test_distributed_exit.py). The
    interpreter's teardown then destroyed the group around them and, rarely and at random, aborted a rank
    that had finished and written everything ("terminate called without an active exception", SIGABRT:
    once in CI, rank 1 of the DTensor TP test; 85 repeats on this machine did not bring it back).
    ``os._exit`` skips that teardown: stdout and stderr are flushed here; files the script wrote are
    closed by then (call it only on success, so that an exception prints its traceback).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass(frozen=True)
class NcclDefaults:
    """What the installed torch does about a hung or failed NCCL collective, read from its own sources
    (None where this torch's files do not say).

    ``async_error_handling``: ProcessGroupNCCL's default ``TORCH_NCCL_ASYNC_ERROR_HANDLING`` and its mode's
    name (``(3, "SkipCleanUp")``: tear the process down without aborting the communicators; 1 =
    ``TearDown``: abort them, then tear down; 2 = only abort; 0 = nothing). ``torchrun_async_error_handling``:
    the value torchrun's agent exports to its workers when the variable is unset. ``trace_buffer_size``:
    the flight recorder's default number of entries (``TORCH_NCCL_TRACE_BUFFER_SIZE``; 0 = off).
    ``dump_requires``: the header's comment on what ``TORCH_NCCL_DUMP_ON_TIMEOUT`` must be set with."""

    async_error_handling: tuple[int, str] | None
    torchrun_async_error_handling: int | None
    trace_buffer_size: int | None
    dump_requires: str | None


def nccl_defaults() -> NcclDefaults:
    """Read the installed torch's ProcessGroupNCCL and FlightRecorder headers (shipped in ``torch/include``
    even by CPU wheels) and torchrun's agent source for the error-handling and flight-recorder defaults."""
    from torch.distributed.elastic.agent.server import local_elastic_agent

    include = os.path.join(os.path.dirname(torch.__file__), "include", "torch", "csrc", "distributed", "c10d")

    def read(name: str) -> str:
        try:
            with open(os.path.join(include, name), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""

    pg, recorder = read("ProcessGroupNCCL.hpp"), read("FlightRecorder.hpp")
    mode = re.search(r"the default value \((\d) - (\w+)\)", pg)
    agent = re.search(r'"TORCH_NCCL_ASYNC_ERROR_HANDLING", str\((\d)\)', inspect.getsource(local_elastic_agent))
    buffer = re.search(r'"TORCH_NCCL_TRACE_BUFFER_SIZE"\}, (\d+)\)', recorder)
    dump = re.search(r"// Control whether dumping debug info on watchdog\s*// timeout is enabled\. (.*?)\n"
                     r"static std::vector<std::string> TORCH_NCCL_DUMP_ON_TIMEOUT", pg, re.S)
    return NcclDefaults(
        async_error_handling=(int(mode[1]), mode[2]) if mode else None,
        torchrun_async_error_handling=int(agent[1]) if agent else None,
        trace_buffer_size=int(buffer[1]) if buffer else None,
        dump_requires=" ".join(dump[1].replace("//", " ").split()) if dump else None)
