"""A learner's kernel under limits: a scratch folder and HOME, a time limit, a memory limit, an output cap,
and, where bubblewrap is present, a sandbox without network and with a read-only file system.

``confined_kernel(...)`` starts the kernel and yields a ``GradingClient`` (nbclient's ``NotebookClient``)
whose ``run_cell`` and ``run_code`` execute code there; ``client.stopped`` says which limit stopped it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

#: Environment variables a kernel inherits from the grader; everything else (tokens, keys) stays out.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX",
              "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BIGTRAIN_LAB_FAST", "PYDEVD_DISABLE_FILE_VALIDATION")


@dataclass(frozen=True)
class Limits:
    """Per notebook: ``timeout`` seconds for the whole run, ``memory_mb`` of resident memory for the
    kernel's processes, ``output_bytes`` of captured output; ``sandbox``: run under bubblewrap."""

    timeout: float = 600.0
    memory_mb: int = 4096
    output_bytes: int = 2_000_000
    sandbox: bool = False


class SandboxUnavailable(RuntimeError):
    """``--sandbox`` was asked for on a machine where bubblewrap cannot run."""


def sandbox_problem() -> str:
    """Why ``--sandbox`` cannot work here ('' when it can): bubblewrap missing or not allowed to run."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ("bubblewrap (`bwrap`) is not installed: `apt-get install bubblewrap` (Debian/Ubuntu), "
                "or grade without --sandbox (the kernels then run with your user's rights)")
    try:
        probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--dev", "/dev", "true"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to start: {exc}"
    if probe.returncode != 0:
        return (f"bubblewrap cannot create namespaces on this machine ({probe.stderr.strip()[:200]}); "
                "grade without --sandbox, or in a container that allows user namespaces")
    return ""


def _readable_roots() -> list[str]:
    """What a sandboxed kernel needs to read: the system, Python's prefixes and the installed packages,
    and nothing of the instructor's own folders."""
    import bigtrain_lab

    roots = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt",
             sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(bigtrain_lab.__file__).parent)]
    for entry in sys.path:  # site-packages outside the prefixes (user site, editable installs' .pth targets)
        if entry and Path(entry).is_dir() and "site-packages" in entry:
            roots.append(entry)
    seen: list[str] = []
    for root in roots:
        if Path(root).exists() and root not in seen:
            seen.append(root)
    return seen


def bwrap_prefix(scratch: Path) -> list[str]:
    """The bubblewrap command line that confines a kernel to ``scratch`` (read-write, and the only place
    it can write), without network, in its own PID namespace, dying with the grader."""
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--proc", "/proc", "--dev", "/dev",
           "--tmpfs", "/tmp"]
    for root in _readable_roots():
        cmd += ["--ro-bind", root, root]
    cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch / "work"),
            # in its own PID namespace the kernel's parent is PID 1, which ipykernel reads as "the grader
            # exited": turn its parent polling off (--die-with-parent does that job)
            "--setenv", "JPY_PARENT_PID", "1"]
    return cmd


class _ConfinedKernelManager(AsyncKernelManager):
    """Starts the kernel behind a command prefix (bubblewrap) when one is set."""

    prefix: list[str] = []

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self.prefix, *super().format_kernel_cmd(extra_arguments)]


class GradingClient(NotebookClient):
    """nbclient's client with an output cap and a memory watchdog; ``stopped`` is ``(limit, message)``
    once a limit stopped the kernel."""

    def __init__(self, nb: nbformat.NotebookNode, limits: Limits, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.limits = limits
        self.stopped: tuple[str, str] | None = None
        self.output_size = 0
        self.code_limit = 60.0
        self._done = threading.Event()

    # ---- limits -----------------------------------------------------------------------------------
    def _kernel_processes(self) -> list[psutil.Process]:
        """The kernel's process and all its descendants (bubblewrap's child, workers it started)."""
        try:
            root = psutil.Process(self.km.provisioner.process.pid)  # type: ignore[union-attr]
            return [root, *root.children(recursive=True)]
        except (AttributeError, psutil.Error):
            return []

    def stop(self, limit: str, message: str) -> None:
        """Record which limit was hit and kill the kernel's whole process tree."""
        if self.stopped is None:
            self.stopped = (limit, message)
        for p in self._kernel_processes():
            with suppress(psutil.Error):
                p.kill()

    def _memory_mb(self) -> float:
        total = 0
        for p in self._kernel_processes():
            with suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def start_watchdog(self) -> None:
        def watch() -> None:
            while not self._done.wait(0.05):
                used = self._memory_mb()
                if used > self.limits.memory_mb:
                    self.stop("memory", f"the kernel used {used:.0f} MB, more than the memory limit of "
                                        f"{self.limits.memory_mb} MB, and was stopped")
                    return

        threading.Thread(target=watch, daemon=True, name="bigtrain-memory-watchdog").start()

    def stop_watchdog(self) -> None:
        self._done.set()

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        self.output_size += len(str(msg.get("content", "")))
        if self.output_size > self.limits.output_bytes:
            self.stop("output", f"the notebook printed more than the output cap of "
                                f"{self.limits.output_bytes / 1e6:g} MB and was stopped")
            return None
        return super().output(outs, msg, display_id, cell_index)

    # ---- running code -----------------------------------------------------------------------------
    def run_code(self, code: str, limit: float) -> bool:
        """Execute ``code`` (not part of the notebook); False when ``limit`` seconds passed first (the
        kernel is then interrupted). Raises ``DeadKernelError`` when the kernel is gone."""
        if self.stopped is not None:
            raise DeadKernelError(self.stopped[1])
        self.code_limit = limit
        cell = nbformat.v4.new_code_cell(code, metadata={"bigtrain_code": True})
        self.nb.cells.append(cell)  # nbclient stores the executed cell at its index
        try:
            self.execute_cell(cell, len(self.nb.cells) - 1, store_history=False)
        except CellTimeoutError:
            run_sync(self.km.interrupt_kernel)()
            if self.stopped is not None:
                raise DeadKernelError(self.stopped[1]) from None
            return False
        finally:
            self.nb.cells.pop()
        if self.stopped is not None:
            raise DeadKernelError(self.stopped[1])
        return True


def kernel_log(scratch: Path, limit: int = 600) -> str:
    """The end of what the kernel process itself wrote (its own errors), for a report."""
    path = scratch / "run" / "kernel.log"
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if "WARNING" not in ln]
    except OSError:
        return ""
    return "\n".join(lines)[-limit:]


def kernel_env(scratch: Path) -> dict[str, str]:
    """The kernel's environment: a few of the grader's variables, HOME and TMPDIR in its scratch folder."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update(HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"),
               BIGTRAIN_LAB_HOME=str(scratch / "home" / ".bigtrain-lab"), MPLBACKEND="agg",
               PYTHONNOUSERSITE="1", JUPYTER_PLATFORM_DIRS="1")
    return env


@contextmanager
def confined_kernel(nb: nbformat.NotebookNode, scratch: Path, limits: Limits,
                    kernel_name: str = "python3") -> Iterator[GradingClient]:
    """Start a kernel for ``nb`` confined to ``scratch`` (created here) and yield its client; the kernel
    is shut down (killed if need be) on exit."""
    for sub in ("work", "home", "tmp", "run"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    km = _ConfinedKernelManager(kernel_name=kernel_name)
    # interrupt through the kernel's control channel, not a signal to the process group (which does not
    # reach a kernel in its own session under bubblewrap)
    km.kernel_spec.interrupt_mode = "message"
    if limits.sandbox:
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(problem)
        km.transport = "ipc"  # no network inside: the kernel talks to the grader over Unix sockets
        km.connection_file = str(scratch / "run" / "kernel.json")
        km.ip = str(scratch / "run" / "ipc")
        km.prefix = bwrap_prefix(scratch)
    deadline = time.monotonic() + limits.timeout
    client = GradingClient(nb, limits, km=km, kernel_name=kernel_name, allow_errors=True, timeout=None,
                           startup_timeout=120,
                           resources={"metadata": {"path": str(scratch / "work")}})

    def cell_timeout(cell: nbformat.NotebookNode) -> int:
        # the notebook's cells share the notebook's time limit; each grader call has its own
        if cell.get("metadata", {}).get("bigtrain_code"):
            return max(1, round(client.code_limit))
        return max(1, int(deadline - time.monotonic()))

    client.timeout_func = cell_timeout
    log = (scratch / "run" / "kernel.log").open("w")  # the kernel's own messages (shown when it fails)
    try:
        with client.setup_kernel(env=kernel_env(scratch), cwd=str(scratch / "work"), cleanup_kc=True,
                                 stdout=log, stderr=log):
            client.reset_execution_trackers()
            client.start_watchdog()
            try:
                yield client
            finally:
                client.stop_watchdog()
    finally:
        if km.has_kernel:
            with suppress(Exception):  # already gone
                run_sync(km.shutdown_kernel)(now=True)
        log.close()
