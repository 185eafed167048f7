"""The conditions a measurement ran under: CPU, cores, torch threads and version, the load average before and
after, and whether other work shared the machine (DESIGN.md, "Measured numbers"). Benches record them through
``bench/conditions.py``; a lesson's full run records them with the figures it keeps (``full_run``).

A run is *loaded* when the 1-minute load average before it exceeds the logical cores, or the one after it
exceeds the cores plus the run's own busy workers: its figures are saved but never quoted.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Conditions", "cpu_model", "default_command", "load_average"]


def cpu_model() -> str:
    """The "model name" of /proc/cpuinfo; platform.processor() (or the machine type) where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average, or None where the OS has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def default_command() -> str:
    """This process's command line, as ``python bench/NAME.py ARGS`` when it runs a bench script."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    shown = f"bench/{script.name}" if script.parent.name == "bench" else str(script)
    return shlex.join(["python", shown, *sys.argv[1:]])


def _torch_info(threads: int | None) -> tuple[int, str, str | None]:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return (torch.get_num_threads() if threads is None else int(threads)), torch.__version__, gpu


class Conditions:
    """Start with Conditions.start(threads=...) before measuring; .finish() after; .as_dict(); .loaded"""

    def __init__(self, *, cpu: str, cores: int, torch_threads: int, torch_version: str, python: str,
                 gpu: str | None, command: str, started_at: str, load_before: float | None,
                 workers: int | None = None) -> None:
        self.cpu, self.cores, self.torch_threads = cpu, cores, torch_threads
        self.workers = torch_threads if workers is None else workers
        self.torch_version, self.python, self.gpu = torch_version, python, gpu
        self.command, self.started_at, self.load_before = command, started_at, load_before
        self.load_after: float | None = None
        self.wall_seconds: float | None = None
        self._t0 = time.perf_counter()

    @classmethod
    def start(cls, *, threads: int | None = None, command: str | None = None,
              workers: int | None = None) -> Conditions:
        """Record the machine and the load average now. ``threads``: the torch threads the measurement
        uses (default: ``torch.get_num_threads()`` now); ``command``: default this process's command line;
        ``workers``: the CPUs the bench itself keeps busy (default ``threads``; e.g. 2 for two DDP ranks),
        which the load average after the run includes."""
        torch_threads, torch_version, gpu = _torch_info(threads)
        return cls(cpu=cpu_model(), cores=os.cpu_count() or 1, torch_threads=torch_threads,
                   torch_version=torch_version, python=platform.python_version(), gpu=gpu,
                   command=command or default_command(),
                   started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                   load_before=load_average(), workers=workers)

    @property
    def finished(self) -> bool:
        return self.wall_seconds is not None

    def finish(self) -> Conditions:
        """Record the load average after the measurement and the wall seconds since start; returns self."""
        self.load_after = load_average()
        self.wall_seconds = round(time.perf_counter() - self._t0, 1)
        return self

    @property
    def max_load(self) -> float | None:
        loads = [x for x in (self.load_before, self.load_after) if x is not None]
        return max(loads) if loads else None

    @property
    def loaded(self) -> bool:
        """Other work shared the machine: the load average before the run exceeded the cores, or the load
        after it exceeded the cores plus the bench's own busy workers. Such figures must not be quoted."""
        before = self.load_before is not None and self.load_before > self.cores
        after = self.load_after is not None and self.load_after > self.cores + self.workers
        return before or after

    def as_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "cores": self.cores, "torch_threads": self.torch_threads,
                "torch": self.torch_version, "python": self.python, "gpu": self.gpu,
                "workers": self.workers, "load_before": self.load_before, "load_after": self.load_after,
                "loaded": self.loaded,
                "wall_seconds": self.wall_seconds, "command": self.command, "started_at": self.started_at}

    def __repr__(self) -> str:
        return f"Conditions({self.as_dict()!r})"
