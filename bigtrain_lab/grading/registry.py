"""The exercise registry: every graded exercise has a stable id ``topic.name`` and a spec.

A spec knows how to draw cases (named edge cases plus fresh random ones), the reference that gives the
expected value (a well-kept library's implementation wherever one exists) and how to compare a
candidate's return value with it. The checker only sees the id and the callable it is handed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bigtrain_lab import curriculum

#: compare(got, expected) -> None when they agree, else a one-line reason shown to the learner.
Comparator = Callable[[Any, Any], str | None]

#: run(fn, *args, **kwargs) -> value: how a callable is driven on one case's arguments. The checker drives
#: the candidate and the reference alike, e.g. over a sequence of optimizer steps that feeds each step's
#: outputs back into the next call; without one, a case is the single call ``fn(*args, **kwargs)``.
Runner = Callable[..., Any]


class InputModified(Exception):
    """Raised by a ``Runner`` when the candidate modified, in place, a value the runner handed it."""


@dataclass(frozen=True)
class Case:
    """One call of the candidate: ``candidate(*args, **kwargs)`` (or ``run(candidate, *args, **kwargs)``
    when the exercise has a runner).

    ``raises`` names the exception type the candidate must raise instead of returning (e.g. a
    ``ValueError`` for invalid input); ``expected`` is then unused.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    raises: type[BaseException] | None = None


@dataclass(frozen=True)
class Exercise:
    """How to grade one exercise."""

    id: str
    reference: Callable[..., Any]
    make_cases: Callable[[np.random.Generator], list[Case]]
    compare: Comparator
    hint: str
    section: str  # the anchor, in the topic's lesson notebook, of the section that teaches it
    time_limit: float = 5.0  # seconds per case
    run: Runner | None = None  # None: each case is one call candidate(*case.args, **case.kwargs)
    notebook: str | None = None  # another notebook of the topic's lesson that holds ``section`` (None: the topic's)

    @property
    def topic(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def lesson(self) -> str:
        """``notebooks/NN_name.ipynb#section``: the topic's notebook from the curriculum manifest, unless the
        exercise names another notebook of the same lesson (a topic taught over two notebooks)."""
        return f"{self.notebook or curriculum.topic(self.topic).notebook}#{self.section}"


class UnknownExerciseError(LookupError):
    """Raised for an exercise id that is not registered; the message names the closest ids."""


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids must look like ``topic.name``, with a topic of the curriculum
    manifest, and be unique)."""
    topic, sep, name = exercise.id.partition(".")
    if not (sep and topic and name):
        raise ValueError(f"exercise id must look like 'topic.name', got {exercise.id!r}")
    curriculum.topic(topic)  # ValueError naming the topics when the manifest has no such topic
    if exercise.notebook is not None and exercise.notebook not in curriculum.lesson_of_topic(topic).notebooks:
        raise ValueError(f"{exercise.id}: notebook {exercise.notebook!r} is not a notebook of the lesson of {topic!r}")
    if exercise.id in _REGISTRY:
        raise ValueError(f"exercise id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_all() -> None:
    # Importing the package registers every topic's exercises.
    from bigtrain_lab.grading import exercises  # noqa: F401


def exercise_ids(topic: str | None = None) -> list[str]:
    """Sorted ids of every registered exercise (optionally of one topic)."""
    _load_all()
    return sorted(i for i, ex in _REGISTRY.items() if topic is None or ex.topic == topic)


def get_exercise(exercise_id: str) -> Exercise:
    """The spec of ``exercise_id``; an unknown id raises ``UnknownExerciseError`` naming close ids."""
    _load_all()
    if not isinstance(exercise_id, str):
        raise UnknownExerciseError(f"exercise id must be a string like 'metrics.roc_auc', got {exercise_id!r}")
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        close = difflib.get_close_matches(exercise_id, list(_REGISTRY), n=3, cutoff=0.5)
        same_topic = [i for i in _REGISTRY if i.split(".")[0] == exercise_id.split(".")[0]]
        suggestions = close or sorted(same_topic)[:5]
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        raise UnknownExerciseError(
            f"unknown exercise id {exercise_id!r}.{hint} "
            "`bigtrain_lab.grading.exercise_ids()` lists them all."
        ) from None
