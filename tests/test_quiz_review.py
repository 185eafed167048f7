"""Spaced repetition (the Leitner schedule in review.json), exercise checks feeding it, the drill order,
the terminal drill (``bigtrain-lab quiz``) and the progress view (``bigtrain-lab progress``, the widget)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from bigtrain_lab import cli, curriculum
from bigtrain_lab.grading.progress import progress_file
from bigtrain_lab.quiz import draw, get_question, questions, quiz
from bigtrain_lab.quiz import review as rv
from bigtrain_lab.quiz.progress_view import format_topic_progress, progress_widget, topic_progress
from bigtrain_lab.quiz.terminal import parse_letters, run_drill
from tests.test_quiz_drill import a_flashcard, patch_in_flashcards

DAY = dt.date(2025, 3, 10)


def days(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


def home() -> Path:
    return Path(os.environ["BIGTRAIN_LAB_HOME"])


def write_cards(cards: dict[str, rv.Card]) -> Path:
    return rv.save_cards(cards, rv.review_file())


# ---- the schedule ------------------------------------------------------------------------------------

def test_leitner_boxes_and_intervals():
    card = rv.update(None, True, DAY)
    assert (card.box, card.due, card.hits, card.misses) == (2, days(1), 1, 0)
    for box, interval in [(3, 3), (4, 7), (5, 21), (5, 21)]:
        card = rv.update(card, True, DAY)
        assert (card.box, card.due) == (box, days(interval))
    card = rv.update(card, False, DAY)
    assert (card.box, card.due, card.hits, card.misses) == (1, DAY, 5, 1), "a miss goes back to box 1, due now"
    assert rv.update(None, False, DAY).box == 1
    assert rv.update(card, "easy", DAY).box == 3
    assert rv.update(rv.Card(box=3, due=DAY), "hard", DAY).box == 3
    assert rv.update(rv.Card(box=3, due=DAY), "again", DAY).box == 1
    with pytest.raises(ValueError, match="outcome must be"):
        rv.update(None, "maybe", DAY)


def test_the_schedule_file_round_trips_atomically():
    path = rv.review_file()
    assert path.parent == progress_file().parent and path.name == "review.json"
    assert rv.load_cards() == {}
    rv.record("metrics.f1_and_f_beta", False, on=DAY)
    card = rv.record("metrics.f1_and_f_beta", True, on=days(1))
    assert rv.load_cards() == {"metrics.f1_and_f_beta": card}
    assert (card.box, card.hits, card.misses, card.last) == (2, 1, 1, days(1))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["cards"]["metrics.f1_and_f_beta"]["due"] == "2025-03-12"
    assert sorted(p.name for p in path.parent.iterdir()) == ["review.json"], "no temporary file left"


@pytest.mark.parametrize("content", ["{not json", "[]", '{"cards": {"x.y": {"box": 9, "due": "2025-01-01"}}}',
                                     '{"cards": {"x.y": {"box": 1, "due": "yesterday"}}}'])
def test_a_corrupt_schedule_is_named_and_left_alone(content):
    path = rv.review_file()
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(rv.ReviewStoreError, match=f"review file {path}.*corrupt") as info:
        rv.load_cards()
    assert "delete it" in str(info.value)
    rv.record_check("metrics.roc_auc", False)  # never raises
    w = quiz("metrics", 2)
    assert str(path) in w.notice.value and w.store is None
    w.select(*w.question.correct) if w.question.is_quiz else (w.reveal_answer(), w.rate("good"))
    w.submit()
    assert path.read_text(encoding="utf-8") == content, "a corrupt file is never overwritten"


def test_record_check_feeds_exercise_cards():
    rv.record_check("metrics.roc_auc", False)
    card = rv.load_cards()["exercise:metrics.roc_auc"]
    assert card.box == 1 and card.due == dt.date.today() and card.misses == 1
    rv.record_check("metrics.roc_auc", True)
    assert rv.load_cards()["exercise:metrics.roc_auc"].box == 2


def test_record_check_never_raises(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(blocker / "home"))  # the folder cannot be created
    rv.record_check("metrics.roc_auc", False)
    with pytest.raises((OSError, rv.ReviewStoreError), match="a-file"):
        rv.record("exercise:metrics.roc_auc", False)


def test_record_check_stores_the_lesson_when_the_registry_is_loaded():
    from bigtrain_lab.grading.registry import get_exercise

    lesson = get_exercise("metrics.roc_auc").lesson  # loads the registry, as check() does
    rv.record_check("metrics.roc_auc", False)
    assert rv.load_cards()["exercise:metrics.roc_auc"].lesson == lesson


# ---- what a drill asks ---------------------------------------------------------------------------------

def test_the_drill_asks_due_cards_first_then_new_then_the_rest():
    ids = [q.id for q in questions("metrics")]
    overdue, due_today, later = ids[0], ids[1], ids[2]
    write_cards({later: rv.Card(box=4, due=days(5)), due_today: rv.Card(box=2, due=DAY),
                 overdue: rv.Card(box=3, due=days(-4))})
    plan = rv.drill("metrics", on=DAY, seed=0)
    order = [q.id for q in plan.questions]
    assert order[:2] == [overdue, due_today]
    assert set(order[2:-1]) == set(ids) - {overdue, due_today, later} and order[-1] == later
    assert [q.id for q in rv.drill("metrics", 3, on=DAY).questions][:2] == [overdue, due_today]
    shown = [q for q in plan.questions if q.is_quiz]
    assert any(q.shown_order != tuple(range(len(q.shown_order))) for q in shown), "the drill shuffles too"


def test_a_miss_in_the_quiz_sends_the_card_to_box_one_and_to_the_front():
    q = draw("metrics", 1, seed=1, choices_only=True)[0]
    write_cards({q.id: rv.Card(box=4, due=dt.date.today() + dt.timedelta(days=7))})
    w = quiz("metrics", 1, seed=1)
    assert w.questions == [q]
    w.select(next(k for k in range(len(q.choices["en"])) if k not in q.correct))
    w.submit_button.click()
    card = rv.load_cards()[q.id]
    assert card.box == 1 and card.due == dt.date.today() and card.misses == 1
    assert quiz("metrics").questions[0].id == q.id, "what is due comes first"
    w2 = quiz("metrics", 1, seed=1)
    w2.select(*q.correct)
    w2.submit_button.click()
    assert rv.load_cards()[q.id].box == 2


def test_flashcard_ratings_are_recorded(monkeypatch):
    card_q = next(q for q in patch_in_flashcards(monkeypatch) if q.is_flashcard)
    w = quiz(card_q.topic, None, seed=0)
    w.go(next(i for i, q in enumerate(w.questions) if q.id == card_q.id))
    w.reveal_answer()
    w.rate("easy")
    assert rv.load_cards()[card_q.id].box == 3


def test_record_false_and_direct_widgets_write_nothing():
    w = quiz("metrics", 1, seed=0, record=False)
    w.select(*w.question.correct)
    w.submit_button.click()
    assert not rv.review_file().exists()


def test_due_exercises_are_listed_above_the_drill():
    rv.record_check("metrics.roc_auc", False)
    rv.record_check("optim.sgd_step", True)  # passed: not due
    w = quiz()
    assert "re-do exercise metrics.roc_auc" in w.notice.value
    assert "exercises/01_metrics.ipynb" in w.notice.value and "notebooks/01_metrics.ipynb" in w.notice.value
    assert "optim.sgd_step" not in w.notice.value
    assert "metrics.roc_auc" not in quiz("optim").notice.value
    assert [r.exercise_id for r in rv.drill("metrics").reminders] == ["metrics.roc_auc"]
    assert quiz("optim").notice.layout.display == "none"


# ---- the terminal drill ------------------------------------------------------------------------------

class Keyboard:
    """Feeds replies to ``input()``; records the prompts; EOF when it runs out."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def __call__(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        if not self.replies:
            raise EOFError
        return self.replies.pop(0)


def letter(k: int) -> str:
    return chr(ord("a") + k)


def test_parse_letters():
    assert parse_letters("b", 4) == (1,)
    assert parse_letters(" A, c ", 4) == (0, 2)
    assert parse_letters("ac", 4) == (0, 2)
    assert parse_letters("e", 4) is None and parse_letters("", 4) is None and parse_letters("1", 4) is None


def test_terminal_drill_grades_the_shown_letters_and_records():
    qs = draw("metrics", 3, seed=8, choices_only=True)
    right = ",".join(letter(k) for k in qs[0].correct)
    wrong = next(letter(k) for k in range(len(qs[1].choices["en"])) if k not in qs[1].correct)
    out: list[str] = []
    keys = Keyboard(right, "zz", wrong, "s")
    score = run_drill(qs, "en", store=rv.ReviewStore(), ask=keys, say=out.append)
    assert [r.status for r in score.results] == ["correct", "wrong", "skipped"]
    text = "\n".join(out)
    for k, choice in enumerate(qs[0].choices["en"]):
        assert f"{letter(k).upper()}) {choice.replace('**', '')}"[:60] in text
    assert "Please answer with letters" in text and "✔ Correct" in text and "✘ Not quite" in text
    assert "Score: 1 / 3 correct" in text
    cards = rv.load_cards()
    assert cards[qs[0].id].box == 2 and cards[qs[1].id].box == 1 and qs[2].id not in cards


def test_terminal_flashcard_reveals_and_asks_for_a_rating():
    card = a_flashcard()
    out: list[str] = []
    score = run_drill([card], "zh", store=rv.ReviewStore(), ask=Keyboard("", "x", "3"), say=out.append)
    text = "\n".join(out)
    assert card.answer["zh"].splitlines()[0][:20] in text and card.lesson in text
    assert "请用1、2、3 或 4作答" in text and "已掌握" in text
    assert score.results[0].rating == "good" and rv.load_cards()[card.id].box == 2


def test_terminal_drill_stops_on_q_and_on_end_of_input():
    qs = draw("metrics", 3, seed=0)
    out: list[str] = []
    assert run_drill(qs, ask=Keyboard("q"), say=out.append).n_skipped == 3
    assert "Stopped." in out
    assert run_drill(qs, ask=Keyboard(), say=out.append).n_answered == 0


def test_cli_quiz(monkeypatch, capsys):
    qs = draw("metrics", 2, seed=4)
    replies = [",".join(letter(k) for k in q.correct) if q.is_quiz else "" for q in qs]
    monkeypatch.setattr("builtins.input", Keyboard(*replies, "4", "4"))
    assert cli.main(["quiz", "--topic", "metrics", "--n", "2", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "Question 2 of 2" in out and "Score: 2 / 2 correct" in out
    assert set(rv.load_cards()) == {q.id for q in qs}


def test_cli_quiz_without_seed_follows_the_schedule(monkeypatch, capsys):
    target = questions("optim")[-1].id
    write_cards({target: rv.Card(box=1, due=dt.date.today())})
    rv.record_check("optim.sgd_step", False)
    monkeypatch.setattr("builtins.input", Keyboard("q"))
    assert cli.main(["quiz", "--topic", "optim", "--lang", "zh", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "重做练习 optim.sgd_step" in out
    assert get_question(target).question["zh"].splitlines()[0][:15] in out.split("第 1 题")[1]
    assert cli.main(["quiz", "--topic", "nope"]) == 2
    assert "unknown topic 'nope'" in capsys.readouterr().err


# ---- the progress view ------------------------------------------------------------------------------

def test_topic_progress_counts():
    metrics_ids = [q.id for q in questions("metrics")]
    cards = {metrics_ids[0]: rv.Card(box=1, due=DAY, hits=2, misses=1),
             metrics_ids[1]: rv.Card(box=3, due=days(2), hits=1, misses=0),
             "exercise:metrics.roc_auc": rv.Card(box=1, due=days(-1), misses=1),
             "exercise:metrics.confusion_counts": rv.Card(box=2, due=days(1), hits=1)}
    progress = {"metrics.regression_errors": {"passed": True}, "metrics.roc_auc": {"passed": False}}
    report = topic_progress(on=DAY, progress=progress, cards=cards)
    row = next(r for r in report.rows if r.topic == "metrics")
    assert (row.exercises_passed, row.exercises_total) == (2, 5)  # a grade run's pass, a check()'s pass
    assert (row.quiz_hits, row.quiz_answers, row.accuracy) == (3, 4, 0.75)
    assert row.due == 2 and row.new == len(metrics_ids) - 2
    other = next(r for r in report.rows if r.topic == "optim")
    assert other.accuracy is None and other.due == 0
    table = format_topic_progress(report.rows)
    assert "metrics" in table and "2/5" in table and "75% of 4" in table and "2 card(s) due now" in table


def test_progress_widget_reads_an_empty_store_and_writes_nothing():
    assert not home().exists()
    w = progress_widget()
    assert not home().exists(), "displaying progress must not create the store"
    assert [r.topic for r in w.report.rows] == [t.key for t in curriculum.topics()]
    assert all(r.exercises_passed == r.due == r.quiz_answers == 0 for r in w.report.rows)
    assert [t.name for t in w.figure.data] == ["exercises (total)", "exercises passed", "quiz accuracy", "cards due"]
    assert list(w.figure.data[0].x) == [r.topic for r in w.report.rows]
    assert "bt-progress" in w.children[0].value and not w.report.errors


def test_progress_widget_shows_what_was_done():
    rv.record_check("metrics.roc_auc", False)
    q = questions("metrics")[0]
    rv.record(q.id, True)
    before = rv.review_file().read_bytes()
    w = progress_widget()
    metrics = next(r for r in w.report.rows if r.topic == "metrics")
    assert metrics.due == 1 and metrics.accuracy == 1.0
    index = [r.topic for r in w.report.rows].index("metrics")
    assert w.figure.data[2].y[index] == 100 and w.figure.data[3].y[index] == 1
    assert rv.review_file().read_bytes() == before


def test_progress_widget_and_cli_name_a_corrupt_store(capsys):
    path = rv.review_file()
    path.parent.mkdir(parents=True)
    path.write_text("{oops", encoding="utf-8")
    w = progress_widget()
    assert str(path) in w.children[0].value
    assert cli.main(["progress"]) == 1
    captured = capsys.readouterr()
    assert str(path) in captured.err and "topic" in captured.out


def test_cli_progress(capsys):
    rv.record_check("metrics.roc_auc", False)
    assert cli.main(["progress"]) == 0
    out = capsys.readouterr().out
    assert "0/29 exercises passed" in out or "exercises passed." in out  # the grader's table stays
    assert "quiz accuracy" in out and "1 card(s) due now" in out
    line = next(line for line in out.splitlines() if line.startswith("metrics "))
    assert line.split()[1:] == ["0/5", "-", "1", str(len(questions("metrics")))]
