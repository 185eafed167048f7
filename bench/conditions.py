"""The conditions a bench measured under, recorded the same way by every bench (DESIGN.md, "Measured numbers").

    from conditions import Conditions, save_result      # a bench script's folder is on sys.path

    conditions = Conditions.start(threads=1)             # after setting threads, before measuring
    result = {...}                                       # measure
    save_result("NAME", result, conditions.finish())     # bench/results/NAME.json with "conditions"

A run is *loaded* when the 1-minute load average, before or after the measurement, exceeds the number of
logical cores: its figures are saved (with a loud warning) but ``bigtrain_lab.bench_results.read_bench``
refuses them. Run on its own (``python bench/conditions.py``), it prints this machine's conditions now:
whether it is idle enough to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot save {type(obj).__name__} in a bench result")


def warning_line(name: str, conditions: Conditions) -> str:
    return (f"WARNING: LOADED MACHINE: load average {conditions.load_before} -> {conditions.load_after} on "
            f"{conditions.cores} cores ({conditions.workers} busy with this bench) while "
            f"measuring: {name}.json must not be quoted; re-run `{conditions.command}` on an idle machine")


def save_result(name: str, result: dict, conditions: Conditions, *, out_dir: str | Path | None = None) -> Path:
    """Write {**result, "conditions": conditions.as_dict()} to out_dir/NAME.json (default bench/results/),
    via a temporary file + rename; print a loud warning line when conditions.loaded."""
    if not conditions.finished:
        conditions.finish()
    folder = Path(out_dir) if out_dir is not None else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    text = json.dumps({**result, "conditions": conditions.as_dict()}, indent=1, default=_json_default) + "\n"
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=f".{name}-", suffix=".tmp",
                                     delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile makes it private
    os.replace(tmp.name, path)
    if conditions.loaded:
        print(warning_line(name, conditions), file=sys.stderr, flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    now = Conditions.start(command="python bench/conditions.py").finish()
    for key, value in now.as_dict().items():
        print(f"{key:14s} {value}")
    print("LOADED: wait for an idle machine before measuring" if now.loaded else "idle enough to measure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
