"""The drill as the learner sees it: shuffled choices (the same order in both languages, graded in the
order shown), flashcards for entries without choices, and quiz() / mock_interview() reaching every entry."""

from __future__ import annotations

import dataclasses
import random

import pytest

from bigtrain_lab.quiz import (
    RATINGS,
    MockInterviewWidget,
    QuizWidget,
    draw,
    get_question,
    grade_answers,
    load_bank,
    mock_interview,
    questions,
    quiz,
    render,
    shuffle_choices,
)
from bigtrain_lab.quiz import bank as bank_module
from bigtrain_lab.quiz.bank import LANGS, Question


def as_flashcard(q: Question) -> Question:
    """An entry without choices (the bank has some; this one does not depend on which)."""
    return dataclasses.replace(q, choices=None, correct=(), multiple=False, choices_prompt=None)


def a_flashcard() -> Question:
    open_entries = [q for q in load_bank() if q.is_flashcard]
    return open_entries[0] if open_entries else as_flashcard(load_bank()[0])


def patch_in_flashcards(monkeypatch: pytest.MonkeyPatch) -> list[Question]:
    """Make the bank's loader return the bank with an entry of each of two topics turned into a flashcard
    (the real bank may have none left, and may get some again)."""
    bank = bank_module.load_bank()
    chosen = {questions("metrics")[2].id, questions("distributed")[0].id}
    patched = [as_flashcard(q) if q.id in chosen else q for q in bank]
    monkeypatch.setattr(bank_module, "load_bank", lambda path=None: list(patched))
    return patched


@pytest.fixture
def bank_with_flashcards(monkeypatch) -> list[Question]:
    return patch_in_flashcards(monkeypatch)


def check_shuffled(shown: Question) -> None:
    bank = get_question(shown.id)
    assert bank.choices is not None and shown.choices is not None and shown.shown_order is not None
    n = len(bank.choices["en"])
    assert sorted(shown.shown_order) == list(range(n))
    for lang in LANGS:  # one permutation for both languages
        assert shown.choices[lang] == tuple(bank.choices[lang][shown.bank_index(k)] for k in range(n))
        assert {shown.choices[lang][k] for k in shown.correct} == {bank.choices[lang][k] for k in bank.correct}
    assert sorted(shown.bank_index(k) for k in shown.correct) == list(bank.correct)
    assert shown.multiple == bank.multiple


# ---- shuffling -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 123])
def test_draw_shuffles_every_question_with_one_order_for_both_languages(seed, bank_with_flashcards):
    drawn = draw(None, None, seed)
    assert sorted(q.id for q in drawn) == sorted(q.id for q in load_bank()), "every entry is drawn"
    for q in drawn:
        if q.is_quiz:
            check_shuffled(q)
        else:
            assert q == get_question(q.id) and q.shown_order is None


def test_draw_is_repeatable_and_the_order_depends_on_the_seed():
    a, b = draw("metrics", None, seed=5), draw("metrics", None, seed=5)
    assert [(q.id, q.shown_order) for q in a] == [(q.id, q.shown_order) for q in b]
    orders = {q.id: q.shown_order for q in a}
    other = {q.id: q.shown_order for q in draw("metrics", None, seed=6)}
    assert sum(orders[k] != other[k] for k in orders) > len(orders) // 2
    assert any(order != tuple(range(len(order))) for order in orders.values())


def test_the_bank_is_left_unshuffled():
    before = [(q.id, q.choices, q.correct) for q in load_bank()]
    draw(None, None, seed=9)
    assert [(q.id, q.choices, q.correct) for q in load_bank()] == before
    assert all(q.shown_order is None for q in load_bank())
    q = draw("metrics", 1, seed=0)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.correct = (0,)


def test_shuffling_a_shuffled_question_still_maps_to_the_bank():
    q = get_question("metrics.perplexity")
    twice = shuffle_choices(shuffle_choices(q, random.Random(1)), random.Random(2))
    check_shuffled(twice)


def test_draw_options():
    assert all(q.is_quiz for q in draw(None, None, 0, choices_only=True))
    plain = draw("metrics", None, 0, shuffle=False)
    assert all(q == get_question(q.id) for q in plain)
    assert [q.id for q in plain] == [q.id for q in draw("metrics", None, 0)], "the same questions either way"


def test_grading_uses_the_order_shown():
    shown = next(q for q in draw("metrics", None, seed=3) if q.correct != get_question(q.id).correct)
    assert grade_answers([shown], [shown.correct]).n_correct == 1
    assert grade_answers([shown], [get_question(shown.id).correct]).n_correct == 0


# ---- flashcards in grading ------------------------------------------------------------------------------

def test_flashcards_are_graded_by_self_rating():
    card = a_flashcard()
    score = grade_answers([card] * 5, ["again", "hard", "good", "easy", None])
    assert [r.status for r in score.results] == ["wrong", "correct", "correct", "correct", "skipped"]
    assert [r.rating for r in score.results] == [*RATINGS, None]
    with pytest.raises(ValueError, match="self-rating"):
        grade_answers([card], [[0]])
    with pytest.raises(ValueError, match="not a rating"):
        grade_answers([get_question("metrics.perplexity")], ["good"])


# ---- widgets --------------------------------------------------------------------------------------------

def test_quiz_shows_and_grades_the_shuffled_order():
    w = quiz("metrics", n=4, seed=11, record=False)
    assert w.questions == draw("metrics", 4, seed=11)
    for i, q in enumerate(w.questions):
        w.go(i)
        labels = [row.children[1].value for row in w._rows_for(i)[1]]
        assert labels == [render.choice_html(q, k) for k in range(len(q.choices["en"]))]
        assert [b.description for b in w.choice_buttons] == [render.choice_letter(k) for k in range(len(labels))]
        w.select(*q.correct)
        w.submit_button.click()
        assert "data-status='correct'" in w.feedback.value
        assert [b.button_style == "success" for b in w.choice_buttons] == [k in q.correct for k in range(len(labels))]
    assert w.score.n_correct == 4


def test_quiz_feedback_names_the_right_choice_by_its_shown_letter():
    q = next(q for q in draw("metrics", None, seed=4) if not q.multiple and q.correct != (0,))
    w = QuizWidget([q])
    w.select(0)
    w.submit_button.click()
    right = render.choice_letter(q.correct[0])
    assert f"<b>{right}</b> {render._inline(q.choices['en'][q.correct[0]])}" in w.feedback.value


def test_mock_interview_shows_the_shuffled_order():
    w = mock_interview(3, 5, "metrics", seed=2, record=False)
    assert w.questions == draw("metrics", 3, seed=2)


def test_flashcard_think_reveal_rate():
    card = a_flashcard()
    w = QuizWidget([card, get_question("metrics.perplexity")], "en")
    assert w.choice_buttons == [] and w.reveal_button in w.choice_box.children
    assert "flashcard" in w.question_box.value and render.ui("en", "think") in w.choice_box.children[0].value
    assert w.submit_button.layout.display == "none"
    w.rate("good")  # before the answer is shown
    assert w.answers[0] is None and render.ui("en", "reveal_first") in w.message.value
    w.reveal_button.click()
    shown = w.choice_box.children[0].value
    assert render._inline(card.pitfalls["en"][0]) in shown and card.lesson in shown
    assert set(w.rating_buttons) == set(RATINGS)
    w.rating_buttons["hard"].click()
    assert w.answers[0] == "hard" and w.score.n_correct == 1
    assert "data-status='correct'" in w.feedback.value and "Knew it" in w.feedback.value
    assert all(b.disabled for b in w.rating_buttons.values()) and w.rating_buttons["hard"].button_style == "info"
    w.rating_buttons["again"].click()  # locked
    assert w.answers[0] == "hard"
    w.next_button.click()
    assert w.submit_button.layout.display is None and len(w.choice_buttons) == 5


def test_flashcard_again_counts_as_wrong_in_chinese():
    w = QuizWidget([a_flashcard()], "zh")
    w.reveal_answer()
    w.rate("again")
    assert "data-status='wrong'" in w.feedback.value and "尚未掌握" in w.feedback.value
    assert "重来（不会）" in w.feedback.value
    with pytest.raises(ValueError, match="rating must be one of"):
        w.rate("meh")


@pytest.mark.parametrize("flashcards", [False, True])
def test_quiz_and_mock_interview_reach_every_entry(flashcards, request):
    if flashcards:
        assert sum(q.is_flashcard for q in request.getfixturevalue("bank_with_flashcards")) == 2
    for topic in sorted({q.topic for q in load_bank()}):
        ids = sorted(q.id for q in questions(topic))
        assert sorted(q.id for q in quiz(topic, seed=0, record=False).questions) == ids
        assert sorted(q.id for q in quiz(topic, record=False).questions) == ids  # the schedule's order
        assert sorted(q.id for q in mock_interview(len(ids), 5, topic, seed=0, record=False).questions) == ids


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_mock_interview_with_a_flashcard():
    card, choice = a_flashcard(), draw("metrics", 1, seed=0)[0]
    w = MockInterviewWidget([card, choice], "en", minutes=1, clock=FakeClock())
    w.reveal_answer()
    assert not w.revealed[0], "nothing before Start"
    w.start_button.click()
    w.reveal_button.click()
    w.rating_buttons["easy"].click()
    assert w.index == 1 and w.feedback.value == ""
    w.select(*choice.correct)
    w.submit_button.click()
    assert w.finished and w.score.n_correct == 2
    assert "Your rating: <b>Easy</b>" in w.feedback.value
