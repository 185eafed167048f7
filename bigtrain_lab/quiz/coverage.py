"""Which questions of the seed interview banks the question bank covers, as data.

The kit was commissioned from two Chinese interview documents (not shipped with it): ``000`` has 30 questions,
``003`` has 22 questions (its 面试题库 and 满分答案解析 lists repeat them with the same numbers) and, separately,
ten programming tasks (算法编程题库). A bank entry cites a question as ``seed:NNN#K`` and a programming task as
``seed:NNN#taskK``. ``NOT_YET_COVERED`` lists the questions that have no entry yet, each with the lesson that
will bring it; ``tests/test_quiz.py`` fails when the bank and this list disagree, and ``00_start_here`` prints the
sentence ``coverage_sentence`` makes from them.

>>> parse_source("seed:003#task4")
('003', 'task', 4)
>>> parse_source("seed:000#19")
('000', 'question', 19)
>>> source_problem("seed:003#23")
'seed 003 has questions 1..22'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

#: Seed document -> question number -> what it asks (short, English).
SEED_QUESTIONS: Mapping[str, Mapping[int, str]] = MappingProxyType({
    "000": MappingProxyType({
        1: "data augmentation", 2: "transfer learning", 3: "regularisation", 4: "learning-rate adjustment",
        5: "choosing the batch size", 6: "parallel training", 7: "distributed training", 8: "model compression",
        9: "dynamic vs static graphs", 10: "attention", 11: "ensemble learning",
        12: "where transfer learning applies", 13: "compression algorithms", 14: "adaptive learning rates",
        15: "visualising a model", 16: "the role of preprocessing", 17: "visualising training progress",
        18: "parallel computation", 19: "evaluating a model", 20: "hyperparameter tuning",
        21: "interpretability", 22: "model security", 23: "distributed training (again)", 24: "deployment",
        25: "real-time prediction", 26: "hyperparameter tuning methods", 27: "compression methods",
        28: "transfer-learning tricks", 29: "learning-rate strategies", 30: "regularisation methods",
    }),
    "003": MappingProxyType({
        1: "evaluating a large model", 2: "cutting training time", 3: "data democratisation",
        4: "data skew (imbalance)", 5: "interpretability", 6: "data privacy", 7: "getting labels",
        8: "data augmentation", 9: "model fusion (ensembles)", 10: "regularisation", 11: "learning-rate strategies",
        12: "overfitting", 13: "optimisation algorithms", 14: "saving and loading a model", 15: "preprocessing",
        16: "data augmentation (again)", 17: "debugging a model", 18: "loss functions", 19: "optimisation targets",
        20: "learning strategies", 21: "evaluation methods", 22: "compression methods",
    }),
})

#: Seed document -> programming task number (算法编程题库) -> what it asks.
SEED_TASKS: Mapping[str, Mapping[int, str]] = MappingProxyType({
    "003": MappingProxyType({
        1: "a neural-network classifier", 2: "data augmentation (rotation, scaling)",
        3: "model fusion (weighted average, voting)", 4: "model pruning", 5: "federated training",
        6: "a learning-rate schedule", 7: "an explanation tool (SHAP or LIME)", 8: "differential privacy",
        9: "a lightweight model on a backbone", 10: "transfer learning",
    }),
})

#: Seed questions without a bank entry yet -> the new lesson that brings them.
NOT_YET_COVERED: Mapping[str, str] = MappingProxyType({
})

SOURCE_RE = re.compile(r"kit|seed:(?P<doc>\d{3})#(?P<task>task)?(?P<number>[1-9]\d*)")


def parse_source(source: str) -> tuple[str, str, int] | None:
    """``("003", "task", 4)`` for ``seed:003#task4``, ``("000", "question", 19)`` for ``seed:000#19``, None for
    ``kit``; ValueError for anything else."""
    m = SOURCE_RE.fullmatch(source)
    if m is None:
        raise ValueError(f"a source is 'kit', 'seed:NNN#K' (question K) or 'seed:NNN#taskK' (programming task K); "
                         f"got {source!r}")
    if source == "kit":
        return None
    return m["doc"], "task" if m["task"] else "question", int(m["number"])


def source_problem(source: str) -> str | None:
    """Why ``source`` names no question or task of the seeds (None when it is fine)."""
    try:
        parsed = parse_source(source)
    except ValueError as why:
        return str(why)
    if parsed is None:
        return None
    doc, kind, number = parsed
    table = (SEED_QUESTIONS if kind == "question" else SEED_TASKS).get(doc)
    if table is None:
        known = ", ".join(SEED_QUESTIONS if kind == "question" else SEED_TASKS)
        return f"no seed document {doc} with {kind}s (known: {known})"
    if number not in table:
        label = "questions" if kind == "question" else "programming tasks (taskK)"
        return f"seed {doc} has {label} {min(table)}..{max(table)}"
    return None


def all_questions() -> list[str]:
    """Every question of the seeds as ``seed:NNN#K``, in document order."""
    return [f"seed:{doc}#{k}" for doc, table in SEED_QUESTIONS.items() for k in table]


def covered_questions(sources: Iterable[str]) -> set[str]:
    """The seed questions (not tasks) among ``sources`` (the bank entries' ``source`` values)."""
    return {s for s in sources if (p := parse_source(s)) is not None and p[1] == "question"}


def coverage_sentence(sources: Iterable[str]) -> str:
    """"N of M questions ... have an entry; the K missing:" and a line per missing question (what it asks, the
    lesson that brings it), from the bank's sources and ``NOT_YET_COVERED``.

    >>> coverage_sentence(["seed:000#1"]).startswith("1 of 52 questions")
    True
    """
    everything = all_questions()
    covered = covered_questions(sources)
    missing = [q for q in everything if q not in covered]
    head = (f"{len(everything) - len(missing)} of {len(everything)} questions of the interview banks this kit was "
            f"built from have an entry in the bank")
    if not missing:
        return head + "."
    listed = "".join(f"\n- {q.removeprefix('seed:').replace('#', ' #')} {_title(q)} "
                     f"(new lesson: {NOT_YET_COVERED.get(q, 'not planned yet')})" for q in missing)
    return f"{head}; the {len(missing)} missing:{listed}"


def _title(ref: str) -> str:
    doc, kind, number = parse_source(ref)  # type: ignore[misc]
    return (SEED_QUESTIONS if kind == "question" else SEED_TASKS)[doc][number]
