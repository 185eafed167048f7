"""The interview question bank (``bank.yaml``) and the quiz widgets.

Usage in a notebook::

    from bigtrain_lab.quiz import quiz, mock_interview, show_question
    quiz(topic="metrics", n=5, lang="zh")              # one question at a time, immediate feedback
    mock_interview(n=5, minutes=10, topic="metrics")   # timed, scored at the end
    show_question("metrics.precision_vs_recall")       # one entry, for a lesson
"""

from bigtrain_lab.quiz.bank import (
    BankError,
    Question,
    QuestionResult,
    QuizScore,
    draw,
    get_question,
    grade_answers,
    load_bank,
    questions,
    topics,
)
from bigtrain_lab.quiz.widget import MockInterviewWidget, QuizWidget, mock_interview, quiz, show_question

__all__ = [
    "BankError",
    "MockInterviewWidget",
    "Question",
    "QuestionResult",
    "QuizScore",
    "QuizWidget",
    "draw",
    "get_question",
    "grade_answers",
    "load_bank",
    "mock_interview",
    "questions",
    "quiz",
    "show_question",
    "topics",
]
