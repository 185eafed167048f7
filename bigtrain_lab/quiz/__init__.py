"""The interview question bank (``bank.yaml``) and the quiz widgets.

Usage in a notebook::

    from bigtrain_lab.quiz import quiz, mock_interview, show_question
    quiz()                                             # what your schedule says is due, then new cards
    quiz(topic="metrics", n=5, lang="zh", seed=0)      # a repeatable random draw, immediate feedback
    mock_interview(n=5, minutes=10, topic="metrics")   # timed, scored at the end
    show_question("metrics.precision_vs_recall")       # one entry, for a lesson
    progress_widget()                                  # exercises passed, quiz accuracy, cards due

Choices are shown in a seeded random order; entries without choices are self-rated flashcards; answers
(and exercise checks, via ``review.record_check``) feed a Leitner schedule in ``$BIGTRAIN_LAB_HOME``.
"""

from bigtrain_lab.quiz.bank import (
    RATINGS,
    BankError,
    Question,
    QuestionResult,
    QuizScore,
    draw,
    get_question,
    grade_answers,
    load_bank,
    questions,
    shuffle_choices,
    topics,
)
from bigtrain_lab.quiz.progress_view import progress_widget
from bigtrain_lab.quiz.review import drill, record_check
from bigtrain_lab.quiz.widget import MockInterviewWidget, QuizWidget, mock_interview, quiz, show_question

__all__ = [
    "RATINGS",
    "BankError",
    "MockInterviewWidget",
    "Question",
    "QuestionResult",
    "QuizScore",
    "QuizWidget",
    "draw",
    "drill",
    "get_question",
    "grade_answers",
    "load_bank",
    "mock_interview",
    "progress_widget",
    "questions",
    "quiz",
    "record_check",
    "show_question",
    "shuffle_choices",
    "topics",
]
