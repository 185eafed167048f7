"""Simulated worker failure, to exercise ``torchrun --max-restarts`` and checkpoint-resume.

``--simulate-failure RANK:STEP`` makes rank RANK kill itself with SIGKILL (no clean-up, no Python
``finally``: what an out-of-memory kill or a lost node looks like) when it reaches step STEP, on the first
attempt only: torchrun restarts the worker group with ``TORCHELASTIC_RESTART_COUNT=1``, and the restarted
workers resume from the last checkpoint.
"""

from __future__ import annotations

import os
import signal


def parse_failure(spec: str | None) -> tuple[int, int] | None:
    """``"1:5"`` -> ``(1, 5)`` (rank 1 dies at step 5); ``None`` or ``""`` -> ``None``."""
    if not spec:
        return None
    try:
        rank, step = (int(part) for part in spec.split(":"))
    except ValueError:
        raise ValueError(f"--simulate-failure must look like RANK:STEP (e.g. 1:5), got {spec!r}") from None
    if rank < 0 or step < 0:
        raise ValueError(f"--simulate-failure rank and step must be >= 0, got {spec!r}")
    return rank, step


def maybe_fail(failure: tuple[int, int] | None, *, rank: int, step: int, restart_count: int) -> None:
    """SIGKILL this process if ``failure == (rank, step)`` and this is the first attempt."""
    if failure is None or restart_count > 0 or failure != (rank, step):
        return
    print(f"rank {rank}: simulated crash, SIGKILL at step {step}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
