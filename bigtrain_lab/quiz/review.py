"""Spaced repetition, offline: a Leitner schedule of the bank's questions and the graded exercises.

Every card (a bank question, by its id, or an exercise, as ``exercise:<id>``) sits in a box 1..5; box ``b``
comes back ``INTERVALS[b - 1]`` days after its last review (box 1: the same day). A miss sends a card to
box 1, a hit moves it up one box ("easy" two, "hard" keeps it where it is). The schedule lives next to the
grader's progress file: ``$BIGTRAIN_LAB_HOME/review.json`` (default ``~/.bigtrain-lab/review.json``),
rewritten atomically (a temporary file, then ``replace``) on every answer, read afresh before each write so
that two notebooks never undo each other's answers.

A drill (``drill``) shows what is due first (most overdue first), then cards never seen, then the rest
(soonest due first). A due exercise card is not a question: only a passing ``check()`` clears it, so the
drill lists it as a reminder ("re-do exercise <id> in <exercise notebook>; lesson: <section>") above the
questions. ``record_check`` is what ``check()`` calls after every graded check.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bigtrain_lab import curriculum
from bigtrain_lab.kit_home import kit_home
from bigtrain_lab.quiz.bank import RATINGS, Question, Rating, questions, shuffle_choices

#: Days until a card in box 1..5 is due again.
INTERVALS: tuple[int, ...] = (0, 1, 3, 7, 21)
N_BOXES = len(INTERVALS)
EXERCISE_PREFIX = "exercise:"
FILE_NAME = "review.json"
VERSION = 1

Outcome = bool | Rating


class ReviewStoreError(ValueError):
    """The review file is unreadable or corrupt; the message names the file and what to do."""


@dataclass(frozen=True)
class Card:
    """One card of the schedule: its box, when it is due, and how often it was hit and missed."""

    box: int
    due: dt.date
    hits: int = 0
    misses: int = 0
    last: dt.date | None = None
    lesson: str | None = None  # exercise cards: the lesson section that teaches the exercise

    def is_due(self, today: dt.date) -> bool:
        return self.due <= today

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": self.box, "due": self.due.isoformat(), "hits": self.hits,
                               "misses": self.misses}
        if self.last is not None:
            out["last"] = self.last.isoformat()
        if self.lesson is not None:
            out["lesson"] = self.lesson
        return out


@dataclass(frozen=True)
class ExerciseReminder:
    """A due exercise card, shown above a drill: re-do ``exercise_id`` in ``notebook``; see ``lesson``."""

    exercise_id: str
    notebook: str | None
    lesson: str
    box: int


@dataclass(frozen=True)
class Drill:
    """What a drill asks (questions, choices shuffled), the due exercises to re-do, and a warning if the
    schedule could not be read (then nothing is written to it)."""

    questions: list[Question]
    reminders: list[ExerciseReminder]
    warning: str | None = None


def review_file() -> Path:
    """``$BIGTRAIN_LAB_HOME/review.json`` (default ``~/.bigtrain-lab/review.json``): the folder of
    ``bigtrain_lab.grading.progress.progress_file()``, found without importing the grader (a test checks
    that they agree)."""
    return kit_home() / FILE_NAME


def exercise_card(exercise_id: str) -> str:
    """The card id of an exercise: ``exercise:<id>``."""
    return EXERCISE_PREFIX + exercise_id


def today() -> dt.date:
    return dt.date.today()


# ---- the pure schedule --------------------------------------------------------------------------------

def update(card: Card | None, outcome: Outcome, on: dt.date) -> Card:
    """The card after one review on day ``on``: a miss (False, "again") goes to box 1, a hit (True,
    "good") up one box, "easy" up two, "hard" stays; a new card starts from box 1."""
    rating: Rating = ("good" if outcome else "again") if isinstance(outcome, bool) else outcome
    if rating not in RATINGS:
        raise ValueError(f"outcome must be True, False or one of {', '.join(RATINGS)}; got {outcome!r}")
    box = card.box if card is not None else 1
    step = {"again": 0, "hard": 0, "good": 1, "easy": 2}[rating]
    box = 1 if rating == "again" else min(N_BOXES, box + step)
    old = card or Card(box=1, due=on)
    return replace(old, box=box, due=on + dt.timedelta(days=INTERVALS[box - 1]),
                   hits=old.hits + (rating != "again"), misses=old.misses + (rating == "again"), last=on)


# ---- the file -----------------------------------------------------------------------------------------

def _parse_card(card_id: str, raw: Any, path: Path) -> Card:
    try:
        if not isinstance(raw, dict):
            raise TypeError(f"expected a mapping, got {type(raw).__name__}")
        box = raw["box"]
        if isinstance(box, bool) or not isinstance(box, int) or not 1 <= box <= N_BOXES:
            raise ValueError(f"box must be 1..{N_BOXES}, got {box!r}")
        hits, misses = raw.get("hits", 0), raw.get("misses", 0)
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (hits, misses)):
            raise ValueError(f"hits and misses must be counts, got {hits!r} and {misses!r}")
        last = dt.date.fromisoformat(raw["last"]) if raw.get("last") else None
        lesson = raw.get("lesson")
        return Card(box=box, due=dt.date.fromisoformat(raw["due"]), hits=hits, misses=misses, last=last,
                    lesson=lesson if isinstance(lesson, str) else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReviewStoreError(f"review file {path} is corrupt (card {card_id!r}: {exc}); "
                               "delete it to start the schedule afresh") from None


def load_cards(path: Path | None = None) -> dict[str, Card]:
    """Card id -> ``Card``; empty when the file does not exist. A corrupt file raises ``ReviewStoreError``
    naming it."""
    path = path or review_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ReviewStoreError(f"cannot read the review file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReviewStoreError(f"review file {path} is corrupt ({exc}); delete it to start the schedule "
                               "afresh") from None
    if not isinstance(data, dict) or not isinstance(data.get("cards"), dict):
        raise ReviewStoreError(f"review file {path} is corrupt (expected {{\"version\": {VERSION}, "
                               "\"cards\": {...}}); delete it to start the schedule afresh")
    return {str(k): _parse_card(str(k), v, path) for k, v in data["cards"].items()}


def save_cards(cards: Mapping[str, Card], path: Path | None = None) -> Path:
    """Write the schedule atomically (a temporary file in the same folder, then ``replace``)."""
    path = path or review_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"version": VERSION, "cards": {k: cards[k].to_json() for k in sorted(cards)}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def record(card_id: str, outcome: Outcome, *, path: Path | None = None, on: dt.date | None = None,
           lesson: str | None = None) -> Card:
    """Review one card: read the file, update the card, write the file back; return the new card.

    Raises ``ReviewStoreError`` (corrupt file: left as it is) or ``OSError`` (cannot write)."""
    path = path or review_file()
    cards = load_cards(path)
    card = update(cards.get(card_id), outcome, on or today())
    if lesson is not None:
        card = replace(card, lesson=lesson)
    cards[card_id] = card
    save_cards(cards, path)
    return card


def _exercise_lesson(exercise_id: str) -> str | None:
    """The exercise's lesson section, if the grading registry is already loaded (it is when ``check()``
    ran): never imports it, so recording stays cheap."""
    registry = sys.modules.get("bigtrain_lab.grading.registry")
    exercise = getattr(registry, "_REGISTRY", {}).get(exercise_id) if registry is not None else None
    try:
        return exercise.lesson if exercise is not None else None
    except (AttributeError, ValueError):
        return None


def record_check(exercise_id: str, passed: bool) -> None:
    """Record a graded exercise check in the schedule (card ``exercise:<id>``): a fail puts it in box 1
    (due today), a pass moves it up. Cheap (one small JSON file read and rewritten), and never raises: an
    unwritable or corrupt file (OSError, ValueError), or anything else, must not break ``check()``."""
    with contextlib.suppress(Exception):
        record(exercise_card(str(exercise_id)), bool(passed), lesson=_exercise_lesson(str(exercise_id)))


def record_drill(drill: Any, result: Any, *, path: Path | None = None, on: dt.date | None = None) -> Card | None:
    """Record a graded back-of-envelope drill (``bigtrain_lab.estimate.drills``: a ``Drill`` and the
    ``DrillResult`` of its ``grade``) on the card ``drill:<kind>``: a right answer moves the card up a box, a
    wrong one back to box 1 (due today). An answer that could not be read (``result.got is None``) is not an
    attempt: nothing is recorded, None is returned. ``path``: the schedule file (default ``review_file()``)."""
    from bigtrain_lab.estimate import drills

    if not isinstance(drill, drills.Drill) or not isinstance(result, drills.DrillResult):
        raise TypeError("record_drill(drill, result) takes a Drill and the DrillResult of its grade()")
    if result.got is None:
        return None
    return record(drills.card_id(drill.kind), bool(result.correct), path=path, on=on)


def due_drill_kinds(path: Path | None = None, on: dt.date | None = None) -> list[str]:
    """The drill kinds whose card is due (most missed first): what a drill without a chosen kind asks next."""
    from bigtrain_lab.estimate import drills

    day = on or today()
    cards = load_cards(path or review_file())
    due = [(card, kind) for kind in drills.DRILL_KINDS
           if (card := cards.get(drills.card_id(kind))) is not None and card.is_due(day)]
    return [kind for card, kind in sorted(due, key=lambda pair: (-pair[0].misses, pair[0].due))]


# ---- drills -------------------------------------------------------------------------------------------

def _topic_of(card_id: str) -> str:
    return card_id.removeprefix(EXERCISE_PREFIX).split(".", 1)[0]


def due_exercises(cards: Mapping[str, Card], on: dt.date, topics: Iterable[str] | None = None
                  ) -> list[ExerciseReminder]:
    """The exercise cards due on ``on`` (of ``topics`` if given), most overdue first."""
    wanted = set(topics) if topics is not None else None
    out = []
    for card_id, card in sorted(cards.items(), key=lambda kv: (kv[1].due, kv[0])):
        if not card_id.startswith(EXERCISE_PREFIX) or not card.is_due(on):
            continue
        exercise_id = card_id.removeprefix(EXERCISE_PREFIX)
        topic = _topic_of(card_id)
        if wanted is not None and topic not in wanted:
            continue
        try:
            lesson_entry, notebook = curriculum.lesson_of_topic(topic), curriculum.topic(topic).notebook
        except (ValueError, StopIteration):
            lesson_entry, notebook = None, None
        out.append(ExerciseReminder(exercise_id, lesson_entry.exercise_notebook if lesson_entry else None,
                                    card.lesson or notebook or "", card.box))
    return out


def order_by_schedule(pool: Sequence[Question], cards: Mapping[str, Card], on: dt.date,
                      rng: random.Random) -> list[Question]:
    """Due cards first (most overdue, then lowest box), then new cards (random order), then the rest
    (soonest due first); ties in random order."""
    tiebreak = {q.id: rng.random() for q in pool}
    due = [q for q in pool if q.id in cards and cards[q.id].is_due(on)]
    new = [q for q in pool if q.id not in cards]
    later = [q for q in pool if q.id in cards and not cards[q.id].is_due(on)]
    due.sort(key=lambda q: (cards[q.id].due, cards[q.id].box, tiebreak[q.id]))
    new.sort(key=lambda q: tiebreak[q.id])
    later.sort(key=lambda q: (cards[q.id].due, tiebreak[q.id]))
    return due + new + later


def drill(topic: str | Sequence[str] | None = None, n: int | None = None, seed: int | None = None, *,
          lesson: int | None = None, on: dt.date | None = None, path: Path | None = None) -> Drill:
    """The next ``n`` questions by the schedule (all of them, in schedule order, when ``n`` is None), with
    their choices shuffled, and the due exercises of the same topics. A corrupt schedule is reported in
    ``warning`` and the drill falls back to new-card order."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer or None; got {n!r}")
    pool = questions(topic, lesson=lesson)
    on = on or today()
    warning = None
    try:
        cards = load_cards(path)
    except ReviewStoreError as exc:
        cards, warning = {}, str(exc)
    rng = random.Random(seed)
    ordered = order_by_schedule(pool, cards, on, rng)[:n]
    topics = {q.topic for q in pool} if (topic is not None or lesson is not None) else None
    return Drill([shuffle_choices(q, rng) for q in ordered], due_exercises(cards, on, topics), warning)


class ReviewStore:
    """Where a quiz records its answers: ``record(question, outcome)`` updates the schedule file."""

    def __init__(self, path: Path | None = None, *, on: dt.date | None = None) -> None:
        self.path = path or review_file()
        self.on = on

    def record(self, card_id: str, outcome: Outcome) -> Card:
        return record(card_id, outcome, path=self.path, on=self.on)

    def __repr__(self) -> str:
        return f"ReviewStore({str(self.path)!r})"
