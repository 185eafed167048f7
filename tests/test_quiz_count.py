"""quiz(n=...) and mock_interview(n=...) say so when the topic has fewer questions than asked."""

import pytest

from bigtrain_lab.quiz import mock_interview, questions, quiz
from bigtrain_lab.quiz.render import count_note_html


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(tmp_path))


def test_count_note_only_when_short():
    assert count_note_html(None, 3) == "" and count_note_html(3, 3) == "" and count_note_html(2, 3) == ""
    assert ">3 questions (5 asked; the topic “attention” has 3)<" in count_note_html(5, 3, topic="attention")
    assert "the topics “a”, “b” have 4)" in count_note_html(9, 4, topic=["a", "b"])
    assert "lesson 4 has 7)" in count_note_html(20, 7, lesson=4)
    assert "the bank has 7)" in count_note_html(20, 7)
    assert "要求 5 道" in count_note_html(5, 3, "zh", topic="attention")


@pytest.mark.parametrize("seed", [0, None])
def test_quiz_says_it_shows_fewer_than_asked(seed):
    have = len(questions("attention"))
    box = quiz(topic="attention", n=have + 2, seed=seed, record=False)
    assert len(box.questions) == have
    assert f"{have} questions ({have + 2} asked; the topic “attention” has {have})" in box.notice.value
    assert box.notice.layout.display is None  # shown
    exact = quiz(topic="attention", n=have, seed=seed, record=False)
    assert "asked" not in exact.notice.value


def test_mock_interview_says_it_too():
    have = len(questions("attention"))
    box = mock_interview(n=have + 1, topic="attention", seed=0, record=False)
    assert f"({have + 1} asked; the topic “attention” has {have})" in box.notice.value
    assert box.notice in box.children
