"""The measured numbers the interview bank quotes.

A bank entry lists the figures its answer quotes under ``figures:`` (text as written, and the JSON file and
pointer it was recorded in); every one is checked against its file here. And a lint: a number in a sentence
of an answer that claims a measurement ("the lesson measures 0.874 ...", "measured in the lesson, 89 % ...")
must be one of those figures, or stand in a code cell of the lesson the entry links to (a setting such as
``threshold 0.9``, or a value the lesson asserts), or go.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import nbformat
import pytest
import yaml

from bigtrain_lab.quiz.bank import (
    FIGURE_TEXT_RE,
    BankError,
    Question,
    figure_in_text,
    figure_matches,
    figure_problems,
    load_bank,
    resolve_pointer,
)

ROOT = Path(__file__).resolve().parent.parent
BANK = load_bank()
WITH_FIGURES = [q for q in BANK if q.figures]


# ---- every listed figure is in its file ------------------------------------------------------------------

@pytest.mark.parametrize("q", WITH_FIGURES, ids=lambda q: q.id)
def test_every_figure_is_in_the_answer_and_in_its_file(q):
    problems = figure_problems(q, ROOT)
    assert not problems, "\n".join(problems)


def test_the_figures_that_test_full_run_pinned_are_listed():
    # The table tests/test_full_run.py had (BANK_FIGURES) moved into the bank: the same figures stay checked.
    listed = {q.id: {f.text for f in q.figures} for q in WITH_FIGURES}
    assert {"0.874", "0.956"} <= listed.get("optim.loss_functions", set())
    assert {"186", "7.1", "0.456", "0.591", "0.948"} <= listed.get("schedules.warmup", set())
    assert {"0.563", "0.952"} <= listed.get("schedules.linear_scaling_rule", set())


@pytest.mark.parametrize(("text", "value", "ok"), [
    ("0.885", 0.8851, True), ("0.885", 0.8856, False), ("186", 186.287, True), ("7.1", 7.082, True),
    ("1.12x", 1.1249, True), ("1.12x", 1.13, False), ("3 %", 0.0301, True), ("3%", 0.0301, True),
    ("3 %", 3.0, False), ("0.5", True, False), ("0.5", "0.5", False), ("0.000", -0.0001, True),
])
def test_figure_matches_rounds_to_the_written_decimals(text, value, ok):
    assert figure_matches(text, value) is ok


def test_figure_in_text_needs_the_whole_number():
    assert figure_in_text("0.93", "accuracy 0.93 vs 0.90.")
    assert figure_in_text("1.12x", "(1.12x faster)")
    assert not figure_in_text("0.93", "accuracy 0.930")
    assert not figure_in_text("0.93", "accuracy 10.93")
    assert not figure_in_text("3 %", "13 % of them")


def test_resolve_pointer():
    doc = {"a/b": [{"c~d": 1}], "rows": [10, 20]}
    assert resolve_pointer(doc, "/a~1b/0/c~0d") == 1
    assert resolve_pointer(doc, "/rows/1") == 20
    for bad in ("/rows/2", "/rows/01", "/rows/x", "/missing", "/rows/0/deeper"):
        with pytest.raises(KeyError):
            resolve_pointer(doc, bad)


# ---- the checks reject wrong figures (a toy bank and toy result files) ------------------------------------

ENTRY = {
    "id": "metrics.toy", "topic": "metrics", "source": "kit", "lesson": "notebooks/01_metrics.ipynb#intro",
    "question": {"en": "Q?", "zh": "问题？"},
    "answer": {"en": "The lesson measures 0.885 for the student, 1.12x faster, 3 % of rows.",
               "zh": "课程测得学生模型 0.885，快 1.12 倍，3% 的行。"},
    "pitfalls": {"en": ["wrong"], "zh": ["错误"]},
}
IDLE = {"cpu": "toy", "cores": 2, "load_before": 0.1, "load_after": 0.2, "loaded": False}


def toy(tmp_path: Path, figures: list, conditions: dict | None = IDLE) -> Question:
    result = {"rows": [{"student_accuracy": 0.8851, "speedup": 1.118, "share": 0.031}]}
    if conditions is not None:
        result["conditions"] = conditions
    (tmp_path / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (tmp_path / "bench" / "results" / "toy.json").write_text(json.dumps(result))
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump({"questions": [{**ENTRY, "figures": figures}]}, allow_unicode=True))
    (q,) = load_bank(path)
    return q


def fig(text: str, pointer: str = "/rows/0/student_accuracy", path: str = "bench/results/toy.json") -> dict:
    return {"text": text, "source": f"{path}#{pointer}"}


def test_a_right_toy_figure_passes(tmp_path):
    q = toy(tmp_path, [fig("0.885"), fig("1.12x", "/rows/0/speedup"), fig("3 %", "/rows/0/share")])
    assert figure_problems(q, tmp_path) == []


@pytest.mark.parametrize(("figures", "conditions", "expected"), [
    ([fig("0.885", "/rows/0/speedup")], IDLE, "does not round to '0.885'"),
    ([fig("1.12x", "/rows/0/share")], IDLE, "does not round to '1.12x'"),
    ([fig("0.885", "/rows/1/student_accuracy")], IDLE, "the pointer does not resolve: no index '1'"),
    ([fig("0.885", "/rows/0/teacher_accuracy")], IDLE, "the pointer does not resolve: no key 'teacher_accuracy'"),
    ([fig("0.885", path="bench/results/other.json")], IDLE, "cannot read bench/results/other.json"),
    ([fig("0.885")], {**IDLE, "load_after": 9.0, "loaded": True}, "not quotable: bench result 'toy' was recorded on a"),
    ([fig("0.885")], None, "not quotable: bench result 'toy' records no conditions"),
    ([fig("0.89", "/rows/0/student_accuracy")], IDLE, "'0.89' does not appear in the en answer"),
    ([fig("0.89", "/rows/0/student_accuracy")], IDLE, "'0.89' does not appear in the zh answer"),
])
def test_wrong_figures_are_reported(tmp_path, figures, conditions, expected):
    problems = figure_problems(toy(tmp_path, figures, conditions), tmp_path)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("metrics.toy: figure ") for p in problems)


@pytest.mark.parametrize(("figures", "expected"), [
    ([{"text": 0.885, "source": "bench/results/toy.json#/a"}], "field 'figures[0].text': must be a number"),
    ([{"text": "about 0.9", "source": "bench/results/toy.json#/a"}], "field 'figures[0].text'"),
    ([{"text": "0.885", "source": "bench/results/toy.json"}], "field 'figures[0].source': must be a repo-relative"),
    ([{"text": "0.885", "source": "/abs/toy.json#/a"}], "field 'figures[0].source'"),
    ([{"text": "0.885", "source": "../toy.json#/a"}], "field 'figures[0].source': must stay inside the repository"),
    ([{"text": "0.885", "source": "bench/toy.json#/a~2"}], "field 'figures[0].source': '~' in a JSON pointer"),
    ([{"text": "0.885"}], "field 'figures[0]': must be a mapping with exactly the keys"),
    ([fig("0.885"), fig("0.885")], "field 'figures': a figure is listed twice"),
    ([], "field 'figures': must be a non-empty list"),
])
def test_malformed_figures_are_rejected_by_the_loader(tmp_path, figures, expected):
    with pytest.raises(BankError) as info:
        toy(tmp_path, figures)
    assert f"entry 'metrics.toy': {expected}" in str(info.value)


# ---- the lint: numbers in sentences that claim a measurement ----------------------------------------------

#: a sentence that says or implies the number was measured (by the lesson, a bench, the kit, a run)
CLAIM = re.compile(
    r"measur|\blesson\b|\bin the kit\b|\bthis (?:machine|cpu|laptop)\b|\bwe (?:got|get|saw|see|found|measured)\b"
    r"|\bbench\b|\bfull run\b|\bfast run\b|\bprint(?:s|ed)\b|\bsimulation\b|\bexperiment\b|\bour runs?\b",
    re.I)
#: a measured-looking number: a decimal (0.93), a ratio (2.3x, 8x) or a percentage (30 %, 3%)
NUMBER = re.compile(r"(?<![\w.^/~-])(?P<number>\d+(?:\.\d+)?)(?P<suffix>\s?%|x(?![\w]))|(?<![\w.^/~-])(?P<decimal>\d+\.\d+)(?!\w|\.\d)")
SENTENCE = re.compile(r"(?<=[.;!?:])\s+(?=[A-Z(\"`*-])|\n+")
CODE_SPAN = re.compile(r"`[^`]*`")
#: numbers that are definitions, not results, wherever they stand (kept short on purpose)
DEFINITIONAL = {"0.5", "1.0", "0.0", "100 %", "100%"}


@cache
def code_numbers(notebook: str) -> frozenset[str]:
    """The number literals in the code cells of ``notebook``, as written: the lesson's settings and the values
    it asserts."""
    path = ROOT / notebook
    if not path.is_file():
        return frozenset()
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return frozenset(re.findall(r"(?<![\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", code))


def unlisted_measurements(q: Question, in_code: frozenset[str] = frozenset()) -> list[str]:
    """The numbers of ``q``'s en answer and pitfalls that stand in a sentence claiming a measurement and are
    neither among its ``figures``, in its question, definitional, nor one of the number literals ``in_code``
    (by value: 1e-3 is 0.001; a number written with a trailing zero, 0.600, is a printed result and must be
    written so in the code)."""
    values = {float(x) for x in in_code}
    listed = {FIGURE_TEXT_RE.fullmatch(f.text)["number"] for f in q.figures}
    asked = set(re.findall(r"\d+(?:\.\d+)?", q.question["en"]))
    found = []
    for text in (q.answer["en"], *q.pitfalls["en"]):
        for sentence in SENTENCE.split(CODE_SPAN.sub(" ", text)):
            if not CLAIM.search(sentence):
                continue
            for m in NUMBER.finditer(sentence):
                number = m["number"] or m["decimal"]
                whole = m.group(0).strip()
                if whole in DEFINITIONAL or number in listed or number in asked:
                    continue
                value = float(number)
                formatted = re.search(r"\.\d*0$", number) is not None  # 0.600, 0.80: a printed result, not a setting
                if number in in_code or not formatted and (
                        value in values or ((m["suffix"] or "").strip() == "%" and round(value / 100, 12) in values)):
                    continue
                found.append(whole)
    return found


def test_the_lint_flags_an_unlisted_measurement_and_spares_settings_and_figures():
    def q(answer: str, figures: tuple = ()) -> Question:
        return Question(id="t.x", topic="t", question={"en": "At lr 0.1?"}, answer={"en": answer},
                        pitfalls={"en": ("None.",)}, lesson="", source=("kit",), figures=figures)

    assert unlisted_measurements(q("The lesson measures 0.874 vs 0.956, a 2.3x gap, 89 % of them.")) == [
        "0.874", "0.956", "2.3x", "89 %"]
    assert unlisted_measurements(q("Cross-entropy on 10 classes is at least 1.46; fp16 has 2^-24.")) == [], \
        "no measurement claimed"
    assert unlisted_measurements(q("In the lesson, at lr 0.1 with threshold 0.9, `f(0.25)`."),
                                 frozenset({"0.9"})) == [], "asked in the question, a code setting, code"
    from bigtrain_lab.quiz.bank import Figure

    listed = (Figure("0.874", "bench/results/x.json#/a"),)
    assert unlisted_measurements(q("The lesson measures 0.874 vs 0.956.", listed)) == ["0.956"]
    assert unlisted_measurements(q("Measured in the lesson: 30 % of them."), frozenset({"0.3"})) == []
    assert unlisted_measurements(q("The lesson's run gave 0.600 at threshold 0.6."), frozenset({"0.6"})) == ["0.600"]


@pytest.mark.parametrize("q", BANK, ids=lambda q: q.id)
def test_no_answer_quotes_an_unlisted_measurement(q):
    found = unlisted_measurements(q, code_numbers(q.lesson_notebook))
    assert not found, (
        f"{q.id} ({q.topic}): {', '.join(found)} in a sentence that claims a measurement, but no `figures:` entry "
        f"points at the bench or full-run record it comes from and {q.lesson_notebook} has no such literal in its "
        "code. List it under figures:, or make the lesson print and assert it, or drop it.")
