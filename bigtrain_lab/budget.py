"""Lesson budgets: what a lesson's fast run (the tests, ``BIGTRAIN_LAB_FAST=1``) and full run use.

Each lesson declares one ``Budget`` in the curriculum manifest: the same names with a fast and a full
value. A notebook asks for its run once and prints which one it is, instead of scattering
``x if FAST else y`` through its cells:

    RUN = lesson_budget(9)     # prints: lesson 09 · fast run (BIGTRAIN_LAB_FAST=1): epochs=6, ...
    history = fit_with_history(..., epochs=RUN.epochs)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bigtrain_lab.reproducibility import fast_mode

__all__ = ["Budget", "RunBudget", "lesson_budget"]


@dataclass(frozen=True)
class Budget:
    """A lesson's two runs: ``fast`` and ``full`` map the same names to values."""

    fast: Mapping[str, Any]
    full: Mapping[str, Any]

    def __post_init__(self) -> None:
        if set(self.fast) != set(self.full):
            raise ValueError(f"fast and full name different things: {sorted(set(self.fast) ^ set(self.full))}")
        bad = [k for k in self.fast if not k.isidentifier() or k.startswith("_") or k in ("fast", "lesson")]
        if bad:
            raise ValueError(f"budget names must be identifiers (not 'fast' or 'lesson'): {bad}")


class RunBudget:
    """The values of one run, as attributes (``RUN.epochs``); ``RUN.fast`` says which run it is."""

    def __init__(self, lesson: int, fast: bool, values: Mapping[str, Any]) -> None:
        self.lesson, self.fast, self.values = lesson, fast, dict(values)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"lesson {self.__dict__.get('lesson')} has no budget entry {name!r}; "
                             f"it has: {', '.join(values) or 'none'}")

    def __repr__(self) -> str:
        which = "fast run (BIGTRAIN_LAB_FAST=1)" if self.fast else "full run"
        listed = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"lesson {self.lesson:02d} · {which}: {listed or 'no budget entries'}"


def lesson_budget(number: int, *, fast: bool | None = None, echo: bool = True) -> RunBudget:
    """The budget lesson ``number`` runs with (fast when ``fast_mode()``, unless ``fast`` says), printed."""
    from bigtrain_lab import curriculum

    budget = curriculum.lesson(number).budget
    fast = fast_mode() if fast is None else fast
    run = RunBudget(number, fast, (budget.fast if fast else budget.full) if budget else {})
    if echo:
        print(run)
    return run
