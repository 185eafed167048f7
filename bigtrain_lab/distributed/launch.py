"""Run ``torchrun`` as a subprocess (from a notebook or a test) with live, rank-tagged logs.

torchrun's ``--tee 3`` copies every worker's stdout and stderr to the console with a prefix naming its
local rank (``[default0]:``, ``[default1]:``); this module streams those lines as they come, keeps them,
and returns the exit status. The launcher itself is torchrun: nothing here re-implements it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from queue import Empty, Queue
from typing import Any

RANK_PREFIX = re.compile(r"^\[(?P<role>[A-Za-z_]+)(?P<rank>\d+)\]:")


def torchrun_command(script: str | os.PathLike[str], args: Sequence[str] = (), *, nproc_per_node: int | str = 2,
                     nnodes: int = 1, max_restarts: int = 0, rdzv_endpoint: str | None = None,
                     rdzv_id: str | None = None, tee: bool = True,
                     python: str | os.PathLike[str] = sys.executable) -> list[str]:
    """The command line: ``python -m torch.distributed.run [options] script args``.

    One node: ``--standalone`` (a local rendezvous on a free port). Several nodes: ``--nnodes`` and the
    c10d rendezvous at ``rdzv_endpoint`` ("host:port" of one node, the same on every node).
    """
    if isinstance(nproc_per_node, int) and nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be >= 1 (or 'gpu'), got {nproc_per_node!r}")
    if nnodes < 1:
        raise ValueError(f"nnodes must be >= 1, got {nnodes!r}")
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, got {max_restarts!r}")
    cmd = [os.fspath(python), "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError("several nodes need rdzv_endpoint='host:port' (one node's address, the same "
                             "on every node)")
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
                f"--rdzv-id={rdzv_id or 'bigtrain'}"]
    cmd.append(f"--nproc-per-node={nproc_per_node}")
    if max_restarts:
        cmd.append(f"--max-restarts={max_restarts}")
    if tee:
        cmd += ["--tee", "3"]
    return [*cmd, os.fspath(script), *map(str, args)]


@dataclass
class LaunchResult:
    """What a torchrun run printed and how it ended."""

    command: list[str]
    returncode: int
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def rank_lines(self, local_rank: int) -> list[str]:
        """The lines one local rank printed, without their prefix."""
        out = []
        for line in self.lines:
            m = RANK_PREFIX.match(line)
            if m and int(m.group("rank")) == local_rank:
                out.append(line[m.end():])
        return out

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    def check(self) -> LaunchResult:
        """Raise ``RuntimeError`` unless the run succeeded, with the last lines of every rank and of
        torchrun itself (a worker's own error is usually above torchrun's summary)."""
        if not self.ok:
            ranks = sorted({int(m.group("rank")) for m in map(RANK_PREFIX.match, self.lines) if m})
            per_rank = "".join(f"\nlast lines of local rank {r}:\n" + "\n".join(self.rank_lines(r)[-12:])
                               for r in ranks)
            agent = [line for line in self.lines if not RANK_PREFIX.match(line)]
            raise RuntimeError(f"torchrun exited with status {self.returncode}:\n  {' '.join(self.command)}"
                               f"{per_rank}\nlast lines of torchrun:\n" + "\n".join(agent[-15:]))
        return self


def run_torchrun(script: str | os.PathLike[str], args: Sequence[str] = (), *, nproc_per_node: int | str = 2,
                 max_restarts: int = 0, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, timeout_s: float | None = 600.0,
                 echo: bool | Callable[[str], None] = True) -> LaunchResult:
    """Launch ``script`` under torchrun on this machine and stream its output line by line.

    ``echo``: print each line as it arrives (True), stay silent (False) or call a function with it.
    ``env``: extra environment variables for every process. The child runs in its own session; on a
    timeout or an interrupt the whole process group (torchrun and its workers) is killed.
    """
    cmd = torchrun_command(script, args, nproc_per_node=nproc_per_node, max_restarts=max_restarts)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    sink = print if echo is True else echo if callable(echo) else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env=child_env, cwd=cwd, start_new_session=True, errors="replace")
    lines: list[str] = []
    queue: Queue[str | None] = Queue()

    def read() -> None:  # a thread, so that a silent hang still meets the timeout
        assert proc.stdout is not None
        for raw in proc.stdout:
            queue.put(raw.rstrip("\n"))
        queue.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            left = None if timeout_s is None else timeout_s - (time.perf_counter() - start)
            if left is not None and left <= 0:
                raise TimeoutError(f"torchrun ran longer than {timeout_s:g} s; last lines:\n"
                                   + "\n".join(lines[-20:]))
            try:
                line = queue.get(timeout=left)
            except Empty:
                continue
            if line is None:
                break
            lines.append(line)
            if sink is not None:
                sink(line)
        returncode = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    return LaunchResult(cmd, returncode, lines, time.perf_counter() - start)


def _kill_group(proc: subprocess.Popen) -> None:
    # SIGTERM first: torchrun forwards it to its workers, which run in sessions of their own (a SIGKILL
    # of torchrun's group alone would leave them orphaned). Then SIGKILL whatever is left of the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group this launch created, nothing else
    proc.wait()


def json_line(prefix: str, result: dict[str, Any]) -> str:
    """The one line a worker's rank 0 prints for its launcher: ``prefix`` + ``result`` as JSON."""
    return prefix + json.dumps(result)


def find_json_line(lines: Sequence[str], prefix: str) -> dict[str, Any]:
    """The JSON object of the line (rank-tagged or not) that holds ``prefix``; ValueError with the output's
    last lines when there is none."""
    for line in lines:
        at = line.find(prefix)
        if at >= 0:
            return json.loads(line[at + len(prefix):])
    raise ValueError(f"no line starting with {prefix.strip()} in the output:\n" + "\n".join(lines[-20:]))
