"""The interview question bank: load and validate ``bank.yaml``, select and draw questions, grade answers.

Everything here is a pure function of its arguments (plus the cached bank), so the quiz widgets are thin
views over it and the tests call it directly.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from bigtrain_lab import curriculum
from bigtrain_lab.bench_results import check_conditions
from bigtrain_lab.quiz.coverage import source_problem
from bigtrain_lab.quiz.entries import EntryProblems, is_mapping

BANK_PATH = Path(__file__).with_name("bank.yaml")
LANGS: tuple[str, ...] = ("en", "zh")
MIN_CHOICES, MAX_CHOICES = 3, 5

ID_RE = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9_]+")
LESSON_RE = re.compile(r"notebooks/\d\d_[a-z0-9_]+\.ipynb#[a-z0-9]+(?:-[a-z0-9]+)*")
#: a figure's text: a number as the answer writes it, optionally followed by x (a ratio) or % (a fraction x 100)
FIGURE_TEXT_RE = re.compile(r"(?P<number>-?\d+(?:\.\d+)?)(?P<suffix>x|\s?%)?")
#: a figure's source: a repo-relative JSON file, then an RFC 6901 JSON pointer
FIGURE_SOURCE_RE = re.compile(r"(?P<path>(?!/)(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+\.json)#(?P<pointer>(?:/[^/]*)+)")

_CURRICULUM_TOPICS = tuple(t.key for t in curriculum.topics())
REQUIRED_FIELDS = ("id", "topic", "question", "answer", "pitfalls", "lesson", "source")
OPTIONAL_FIELDS = ("choices", "correct", "choices_prompt", "figures")

Status = Literal["correct", "wrong", "skipped", "late"]
Rating = Literal["again", "hard", "good", "easy"]
#: Self-ratings of a flashcard, worst first: "again" is a miss, the others are hits.
RATINGS: tuple[Rating, ...] = ("again", "hard", "good", "easy")
Err = Callable[[str, str], None]
Answer = Sequence[int] | int | str | None

#: libyaml's C loader where PyYAML was built with it (7x faster on the bank), else the pure-Python one
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BankError(ValueError):
    """The question bank file is malformed; the message names every bad entry (by id) and field."""


@dataclass(frozen=True)
class Figure:
    """A measured number an answer quotes (``text``, as written in the en answer or pitfalls) and where it was
    recorded (``source``: ``path/to/file.json#/json/pointer``). ``figure_problems`` checks one."""

    text: str
    source: str

    @property
    def path(self) -> str:
        """The repo-relative JSON file, e.g. ``bench/results/compression.json``."""
        return self.source.split("#", 1)[0]

    @property
    def pointer(self) -> str:
        """The RFC 6901 JSON pointer inside the file, e.g. ``/distillation/rows/0/student_accuracy``."""
        return self.source.split("#", 1)[1]


@dataclass(frozen=True)
class Question:
    """One interview question: bilingual text, the reviewed answer, pitfalls, and an optional quiz part.

    ``correct`` holds the 0-based indices of the right choices; ``multiple`` is True when the bank gives a
    list (the learner must pick exactly that set: "select all that apply"). ``draw`` returns copies whose
    choices are shuffled: ``choices`` and ``correct`` are then in the order shown, and ``shown_order[k]``
    is the bank's index of the choice shown at position ``k`` (None: the bank's order). An entry without
    choices is practised as a flashcard (self-rated, see ``RATINGS``).
    """

    id: str
    topic: str
    question: Mapping[str, str]
    answer: Mapping[str, str]
    pitfalls: Mapping[str, tuple[str, ...]]
    lesson: str
    source: tuple[str, ...]
    choices: Mapping[str, tuple[str, ...]] | None = None
    correct: tuple[int, ...] = ()
    multiple: bool = False
    choices_prompt: Mapping[str, str] | None = None
    shown_order: tuple[int, ...] | None = None
    figures: tuple[Figure, ...] = ()

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def is_quiz(self) -> bool:
        """True when the entry has choices and can be asked in a quiz."""
        return self.choices is not None

    @property
    def is_flashcard(self) -> bool:
        """True when the entry has no choices: it is practised as a self-rated flashcard."""
        return self.choices is None

    def bank_index(self, shown: int) -> int:
        """The bank's index of the choice shown at position ``shown``."""
        return shown if self.shown_order is None else self.shown_order[shown]

    @property
    def lesson_notebook(self) -> str:
        """The lesson notebook path, e.g. ``notebooks/01_metrics.ipynb``."""
        return self.lesson.split("#", 1)[0]

    @property
    def lesson_anchor(self) -> str:
        """The section anchor inside the lesson, e.g. ``calibration``."""
        return self.lesson.split("#", 1)[1]

    def prompt(self, lang: str = "en") -> str:
        """The text shown above the choices: ``choices_prompt`` if the entry has one, else the question."""
        lang = check_lang(lang)
        if self.choices_prompt is not None:
            return self.choices_prompt[lang]
        return self.question[lang]


@dataclass(frozen=True)
class QuestionResult:
    """How one question was answered: ``status`` is correct, wrong, skipped or late (after the deadline).

    For a flashcard ``chosen`` is None and ``rating`` holds the self-rating ("again" counts as wrong).
    """

    id: str
    chosen: tuple[int, ...] | None
    correct: tuple[int, ...]
    status: Status
    rating: Rating | None = None

    @property
    def is_correct(self) -> bool:
        return self.status == "correct"


@dataclass(frozen=True)
class QuizScore:
    """The outcome of a quiz: one result per question, in order, and the counts derived from them."""

    results: tuple[QuestionResult, ...]

    def _count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def n_questions(self) -> int:
        return len(self.results)

    @property
    def n_correct(self) -> int:
        return self._count("correct")

    @property
    def n_wrong(self) -> int:
        return self._count("wrong")

    @property
    def n_skipped(self) -> int:
        return self._count("skipped")

    @property
    def n_late(self) -> int:
        return self._count("late")

    @property
    def n_answered(self) -> int:
        """Answers that count (in time): correct + wrong."""
        return self.n_correct + self.n_wrong

    @property
    def fraction(self) -> float:
        """Correct answers over all questions (skipped and late count as not correct); 0.0 if empty."""
        return self.n_correct / self.n_questions if self.results else 0.0


def check_lang(lang: str) -> str:
    """Return ``lang`` if it is a supported language ("en" or "zh"), else raise ValueError."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(repr(x) for x in LANGS)}; got {lang!r}")
    return lang


# ---- loading and validation -----------------------------------------------------------------------

def load_bank(path: str | Path | None = None) -> list[Question]:
    """Load and validate the question bank (the packaged ``bank.yaml`` unless ``path`` is given).

    Cached per file and modification time. Raises ``BankError`` listing every problem, each naming the
    entry id and the field.
    """
    p = Path(path) if path is not None else BANK_PATH
    try:
        stat = p.stat()
    except OSError as exc:
        raise BankError(f"{p}: cannot read the question bank ({exc})") from exc
    return list(_load_cached(str(p.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> tuple[Question, ...]:
    name = Path(path).name
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise BankError(f"{name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise BankError(f"{name}: expected a mapping with a 'questions' list at the top level")
    errors: list[str] = []
    result: list[Question] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(data["questions"]):
        entry_errors: list[str] = []
        question = _parse_entry(raw, position, entry_errors)
        errors.extend(f"{name}: {msg}" for msg in entry_errors)
        if question is None:
            continue
        if question.id in seen:
            errors.append(f"{name}: entry {question.id!r}: field 'id': duplicate id "
                          f"(entries #{seen[question.id]} and #{position})")
            continue
        seen[question.id] = position
        result.append(question)
    if errors:
        raise BankError(f"{len(errors)} problem(s) in the question bank:\n" + "\n".join(errors))
    if not result:
        raise BankError(f"{name}: the question bank has no questions")
    return tuple(result)


def _parse_entry(raw: Any, position: int, errors: list[str]) -> Question | None:
    if not is_mapping(raw, position, errors):
        return None
    qid = raw.get("id")
    err = EntryProblems(raw, position, errors)
    err.check_fields(raw, REQUIRED_FIELDS, OPTIONAL_FIELDS)

    topic = raw.get("topic")
    if qid is not None:
        if not isinstance(qid, str) or not ID_RE.fullmatch(qid):
            err("id", f"must look like 'topic.slug' (lower case, digits, underscores); got {qid!r}")
        elif isinstance(topic, str) and qid.split(".", 1)[0] != topic:
            err("id", f"prefix {qid.split('.', 1)[0]!r} differs from topic {topic!r}")
    if topic is not None and (not isinstance(topic, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", topic)):
        err("topic", f"must be a lower-case name; got {topic!r}")
    elif topic is not None and topic not in _CURRICULUM_TOPICS:
        err("topic", f"{topic!r} is not a topic of the curriculum manifest (bigtrain_lab/curriculum.py); "
                     f"topics: {', '.join(_CURRICULUM_TOPICS)}")

    question = _texts(raw.get("question"), "question", err) if "question" in raw else None
    answer = _texts(raw.get("answer"), "answer", err) if "answer" in raw else None
    pitfalls = _text_lists(raw.get("pitfalls"), "pitfalls", err) if "pitfalls" in raw else None

    lesson = raw.get("lesson")
    if lesson is not None and (not isinstance(lesson, str) or not LESSON_RE.fullmatch(lesson)):
        err("lesson", f"must look like 'notebooks/NN_topic.ipynb#section-anchor'; got {lesson!r}")
    elif lesson is not None and topic in _CURRICULUM_TOPICS:
        notebooks = curriculum.lesson_of_topic(topic).notebooks
        if lesson.split("#", 1)[0] not in notebooks:
            err("lesson", f"{lesson!r} is not in the lesson of topic {topic!r} ({', '.join(notebooks)})")

    source = raw.get("source")
    sources: tuple[str, ...] = ()
    if source is not None:
        items = [source] if isinstance(source, str) else source
        if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
            err("source", f"must be a string or a non-empty list of strings; got {source!r}")
        else:
            bad = [f"{s!r}: {why}" for s in items if (why := source_problem(s))]
            if bad:
                err("source", "each source must be 'kit', 'seed:NNN#K' (question K of seed NNN) or "
                              f"'seed:NNN#taskK' (its programming task K): {'; '.join(bad)}")
            elif len(set(items)) != len(items):
                err("source", f"duplicate sources in {items!r}")
            sources = tuple(items)

    choices, correct, multiple, prompt = _quiz_part(raw, err)
    figures = _figures(raw["figures"], err) if "figures" in raw else ()

    if err.found:
        return None
    assert question is not None and answer is not None and pitfalls is not None
    return Question(id=qid, topic=topic, question=question, answer=answer, pitfalls=pitfalls, lesson=lesson,
                    source=sources, choices=choices, correct=correct, multiple=multiple, choices_prompt=prompt,
                    figures=figures)


def _figures(value: Any, err: Err) -> tuple[Figure, ...]:
    """The ``figures:`` list: mappings with exactly ``text`` (a number, optional x or % suffix) and ``source``."""
    if not isinstance(value, list) or not value:
        err("figures", f"must be a non-empty list of {{text, source}} mappings; got {value!r}")
        return ()
    result = []
    for i, item in enumerate(value):
        field = f"figures[{i}]"
        if not isinstance(item, dict) or set(item) != {"text", "source"}:
            err(field, f"must be a mapping with exactly the keys 'text' and 'source'; got {item!r}")
            continue
        text, source = item["text"], item["source"]
        if not isinstance(text, str) or not FIGURE_TEXT_RE.fullmatch(text):
            err(f"{field}.text", f"must be a number as the answer writes it (quoted), optionally with a trailing "
                                 f"x or %, e.g. \"0.885\", \"1.12x\", \"3 %\"; got {text!r}")
            continue
        if not isinstance(source, str) or not FIGURE_SOURCE_RE.fullmatch(source):
            err(f"{field}.source", "must be a repo-relative JSON file and a JSON pointer, e.g. "
                                   f"'bench/results/compression.json#/summary/0/accuracy'; got {source!r}")
            continue
        if ".." in source.split("#", 1)[0].split("/"):
            err(f"{field}.source", f"must stay inside the repository; got {source!r}")
            continue
        if re.search(r"~(?![01])", source.split("#", 1)[1]):
            err(f"{field}.source", f"'~' in a JSON pointer must be '~0' or '~1'; got {source!r}")
            continue
        result.append(Figure(text, source))
    if len(set(result)) != len(result):
        err("figures", "a figure is listed twice")
    return tuple(result)


# ---- figures: the measured numbers an answer quotes ---------------------------------------------

def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at RFC 6901 ``pointer`` in ``document``; KeyError naming the first step that is missing.

    >>> resolve_pointer({"a/b": [{"c": 1}]}, "/a~1b/0/c")
    1
    """
    value = document
    for raw in pointer.split("/")[1:]:
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list):
            if not re.fullmatch(r"0|[1-9]\d*", step) or int(step) >= len(value):
                raise KeyError(f"no index {step!r} in a list of {len(value)} (at {raw!r} of {pointer!r})")
            value = value[int(step)]
        elif isinstance(value, dict):
            if step not in value:
                raise KeyError(f"no key {step!r} (at {raw!r} of {pointer!r}); keys: {', '.join(map(str, value))}")
            value = value[step]
        else:
            raise KeyError(f"{pointer!r} goes past a {type(value).__name__} at {raw!r}")
    return value


def figure_matches(text: str, value: Any) -> bool:
    """True when ``value`` rounded to ``text``'s decimals is ``text`` (``%``: value is a fraction, x 100).

    >>> figure_matches("0.885", 0.88512), figure_matches("1.12x", 1.1249), figure_matches("3 %", 0.0301)
    (True, True, True)
    >>> figure_matches("0.89", 0.884), figure_matches("2x", 2.6), figure_matches("0.9", "0.9")
    (False, False, False)
    """
    m = FIGURE_TEXT_RE.fullmatch(text)
    if m is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    number = m["number"]
    decimals = len(number.split(".", 1)[1]) if "." in number else 0
    x = value * 100 if (m["suffix"] or "").strip() == "%" else value
    written = f"{x:.{decimals}f}"
    return written == number or (written.lstrip("-") == number and float(written) == 0)  # -0.000 is 0.000


def figure_in_text(text: str, prose: str) -> bool:
    """True when ``text`` stands in ``prose`` as a number of its own (``0.93`` is not in ``0.930`` or ``10.93``)."""
    return re.search(rf"(?<![\d.]){re.escape(text)}(?![\d]|\.\d)", prose) is not None


def figure_problems(question: Question, root: str | Path) -> list[str]:
    """What is wrong with ``question``'s figures, read against the files under ``root`` (the checkout): the text
    is not in the en answer or pitfalls (or its number not in the zh ones), the file is missing, records no
    conditions or was measured on a loaded machine, the pointer does not resolve, or the value does not round to
    the text. Empty when all are right."""
    prose = {lang: "\n".join([question.answer[lang], *question.pitfalls[lang]]) for lang in LANGS}
    problems = []
    documents: dict[str, Any] = {}  # path -> its JSON, or why it cannot be read: each file read once
    for figure in question.figures:
        where = f"{question.id}: figure {figure.text!r} ({figure.source})"
        if not figure_in_text(figure.text, prose["en"]):
            problems.append(f"{where}: {figure.text!r} does not appear in the en answer or pitfalls")
        number = FIGURE_TEXT_RE.fullmatch(figure.text)["number"]  # type: ignore[index]
        if not figure_in_text(number, prose["zh"]):
            problems.append(f"{where}: {number!r} does not appear in the zh answer or pitfalls")
        path = Path(root) / figure.path
        if figure.path not in documents:
            try:
                documents[figure.path] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as why:
                documents[figure.path] = why
        document = documents[figure.path]
        if isinstance(document, Exception):
            problems.append(f"{where}: cannot read {figure.path}: {document}")
            continue
        try:
            check_conditions(document, path.stem)
        except ValueError as why:
            problems.append(f"{where}: not quotable: {why}")
        try:
            value = resolve_pointer(document, figure.pointer)
        except KeyError as why:
            problems.append(f"{where}: the pointer does not resolve: {why.args[0]}")
            continue
        if not figure_matches(figure.text, value):
            problems.append(f"{where}: the file holds {value!r}, which does not round to {figure.text!r}")
    return problems


def _texts(value: Any, field: str, err: Err) -> Mapping[str, str] | None:
    """A {en: text, zh: text} mapping with every language present and non-empty."""
    if not isinstance(value, dict):
        err(field, f"must be a mapping with keys {', '.join(LANGS)}; got {type(value).__name__}")
        return None
    ok = True
    for lang in LANGS:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            err(f"{field}.{lang}", "missing or empty")
            ok = False
    extra = sorted(set(value) - set(LANGS), key=str)
    if extra:
        err(field, f"unknown language(s) {extra!r} (allowed: {', '.join(LANGS)})")
        ok = False
    return MappingProxyType({lang: value[lang].strip() for lang in LANGS}) if ok else None


def _text_lists(value: Any, field: str, err: Err, lo: int = 1, hi: int | None = None
                ) -> Mapping[str, tuple[str, ...]] | None:
    """A {en: [...], zh: [...]} mapping of equally long lists of non-empty strings."""
    if not isinstance(value, dict):
        err(field, f"must be a mapping with keys {', '.join(LANGS)}; got {type(value).__name__}")
        return None
    ok = True
    for lang in LANGS:
        items = value.get(lang)
        if not isinstance(items, list) or not items:
            err(f"{field}.{lang}", "missing or not a non-empty list")
            ok = False
            continue
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                err(f"{field}.{lang}[{i}]", "must be a non-empty string")
                ok = False
        if len(items) < lo or (hi is not None and len(items) > hi):
            err(f"{field}.{lang}", f"needs {lo} to {hi} items; got {len(items)}" if hi else
                f"needs at least {lo} items; got {len(items)}")
            ok = False
    extra = sorted(set(value) - set(LANGS), key=str)
    if extra:
        err(field, f"unknown language(s) {extra!r} (allowed: {', '.join(LANGS)})")
        ok = False
    if ok and len({len(value[lang]) for lang in LANGS}) != 1:
        err(field, "the languages have different numbers of items "
            f"({', '.join(f'{lang}: {len(value[lang])}' for lang in LANGS)}); keep them in the same order")
        ok = False
    if not ok:
        return None
    return MappingProxyType({lang: tuple(s.strip() for s in value[lang]) for lang in LANGS})


def _quiz_part(raw: dict, err: Err) -> tuple[Mapping[str, tuple[str, ...]] | None, tuple[int, ...], bool,
                                         Mapping[str, str] | None]:
    has_choices, has_correct = "choices" in raw, "correct" in raw
    prompt = _texts(raw["choices_prompt"], "choices_prompt", err) if "choices_prompt" in raw else None
    if not has_choices:
        if has_correct:
            err("correct", "given without 'choices'")
        if "choices_prompt" in raw:
            err("choices_prompt", "given without 'choices'")
        return None, (), False, None
    choices = _text_lists(raw["choices"], "choices", err, MIN_CHOICES, MAX_CHOICES)
    if choices is not None:
        for lang in LANGS:
            if len(set(choices[lang])) != len(choices[lang]):
                err(f"choices.{lang}", "duplicate options")
    if not has_correct:
        err("correct", "missing (required with 'choices')")
        return choices, (), False, prompt
    value = raw["correct"]
    multiple = isinstance(value, list)
    indices = value if multiple else [value]
    if not indices or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        err("correct", f"must be a 0-based index or a non-empty list of indices; got {value!r}")
        return choices, (), multiple, prompt
    if len(set(indices)) != len(indices):
        err("correct", f"duplicate indices in {value!r}")
    if choices is not None:
        n = len(choices[LANGS[0]])
        out = [i for i in indices if not 0 <= i < n]
        if out:
            err("correct", f"index {out[0]} out of range for {n} choices (valid: 0..{n - 1})")
    return choices, tuple(sorted(set(indices))), multiple, prompt


# ---- selecting ------------------------------------------------------------------------------------

def topics() -> list[str]:
    """The topics of the bank, in curriculum order."""
    present = {q.topic for q in load_bank()}
    return [key for key in _CURRICULUM_TOPICS if key in present]


def questions(topic: str | Sequence[str] | None = None, *, lesson: int | None = None) -> list[Question]:
    """All questions, those of one topic (or several), or those of a lesson's topics (``lesson=3``).

    An unknown topic or lesson raises ValueError naming the available ones.
    """
    bank = load_bank()
    wanted = _wanted_topics(topic, lesson)
    if wanted is None:
        return bank
    return [q for q in bank if q.topic in wanted]


def _wanted_topics(topic: str | Sequence[str] | None, lesson: int | None) -> set[str] | None:
    if topic is not None and lesson is not None:
        raise ValueError("give topic or lesson, not both")
    if lesson is not None:
        return set(curriculum.lesson(lesson).quiz_topics)
    if topic is None:
        return None
    wanted = {topic} if isinstance(topic, str) else set(topic)
    available = topics()
    unknown = sorted(wanted - set(available))
    if unknown or not wanted:
        raise ValueError(f"unknown topic {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"available topics: {', '.join(available)}")
    return wanted


def get_question(qid: str) -> Question:
    """The question with id ``qid`` (KeyError with close matches if there is none)."""
    for q in load_bank():
        if q.id == qid:
            return q
    import difflib

    close = difflib.get_close_matches(qid, [q.id for q in load_bank()], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no question with id {qid!r}{hint}")


def shuffle_choices(question: Question, rng: random.Random) -> Question:
    """A copy of ``question`` with its choices in a random order drawn from ``rng`` (the same order in
    every language); ``correct`` and ``shown_order`` refer to the new order. A flashcard is returned as is."""
    if question.choices is None:
        return question
    n = len(question.choices[LANGS[0]])
    perm = rng.sample(range(n), n)  # perm[k]: the current index of the choice shown at position k
    position = {old: new for new, old in enumerate(perm)}
    return replace(
        question,
        choices=MappingProxyType({lang: tuple(question.choices[lang][i] for i in perm) for lang in LANGS}),
        correct=tuple(sorted(position[i] for i in question.correct)),
        shown_order=tuple(question.bank_index(i) for i in perm),
    )


def draw(topic: str | Sequence[str] | None = None, n: int | None = None, seed: int | None = None, *,
         lesson: int | None = None, choices_only: bool = False, shuffle: bool = True) -> list[Question]:
    """A random sample of ``n`` questions (all of them, in random order, when ``n`` is None).

    Every entry is drawn: those without choices are flashcards (``choices_only=True`` leaves them out).
    The choices of each drawn question are shown in a random order (``shuffle=False``: the bank's order),
    so no position or length strategy beats chance. ``n`` larger than the number available gives all of
    them. The same ``seed`` gives the same questions and the same choice orders.
    """
    pool = [q for q in questions(topic, lesson=lesson) if q.is_quiz or not choices_only]
    if not pool:
        raise ValueError(f"no quiz questions for {topic or f'lesson {lesson}'!r}")
    if n is None:
        n = len(pool)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer or None; got {n!r}")
    rng = random.Random(seed)
    picked = rng.sample(pool, min(n, len(pool)))
    return [shuffle_choices(q, rng) for q in picked] if shuffle else picked


# ---- grading --------------------------------------------------------------------------------------

def _normalise(question: Question, answer: Any) -> tuple[int, ...] | None:
    if answer is None:
        return None
    if isinstance(answer, str):
        raise ValueError(f"{question.id}: has choices, so an answer is a list of choice indices, "
                         f"not a rating ({answer!r})")
    items = [answer] if isinstance(answer, int) and not isinstance(answer, bool) else answer
    try:
        chosen = list(items)
    except TypeError:
        raise ValueError(f"{question.id}: an answer must be a list of choice indices or None; "
                         f"got {answer!r}") from None
    n = len(question.choices[LANGS[0]]) if question.choices else 0
    for i in chosen:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise ValueError(f"{question.id}: choice index {i!r} out of range (valid: 0..{n - 1})")
    return tuple(sorted(set(chosen))) or None


def _rating(question: Question, answer: Any) -> Rating | None:
    if answer is None:
        return None
    if answer not in RATINGS:
        raise ValueError(f"{question.id}: a flashcard's answer is a self-rating, one of "
                         f"{', '.join(RATINGS)} (or None); got {answer!r}")
    return answer


def grade_answers(questions: Sequence[Question], answers: Sequence[Answer], *,
                  answered_at: Sequence[float | None] | None = None,
                  deadline: float | None = None) -> QuizScore:
    """Grade ``answers``: per question, the list of chosen indices (in the order shown), a self-rating
    for a flashcard (see ``RATINGS``), or None for skipped.

    A choice answer is correct only if it is exactly the set of right choices; an empty list counts as
    skipped. A flashcard rated "again" is wrong, any other rating correct. With ``answered_at`` (times,
    same clock as ``deadline``), answers given after ``deadline`` are "late" and count as not answered.
    """
    if len(answers) != len(questions):
        raise ValueError(f"got {len(answers)} answers for {len(questions)} questions")
    if answered_at is not None and len(answered_at) != len(questions):
        raise ValueError(f"got {len(answered_at)} answer times for {len(questions)} questions")
    results = []
    for i, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        rating = _rating(question, answer) if question.is_flashcard else None
        chosen = None if question.is_flashcard else _normalise(question, answer)
        when = answered_at[i] if answered_at is not None else None
        status: Status
        if chosen is None and rating is None:
            status = "skipped"
        elif deadline is not None and when is not None and when > deadline:
            status = "late"
        elif (rating is not None and rating != "again") or (chosen is not None and chosen == question.correct):
            status = "correct"
        else:
            status = "wrong"
        results.append(QuestionResult(question.id, chosen, question.correct, status, rating))
    return QuizScore(tuple(results))
