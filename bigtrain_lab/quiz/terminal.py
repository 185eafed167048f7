"""The drill in a terminal (``bigtrain-lab quiz``): the same questions, shuffled choices, flashcards and
schedule as the notebook widget, with ``input()`` prompts.

A choice question is answered with its letter(s) (``b``, or ``a,c`` for "choose all"); a flashcard with
Enter (reveal) and then a self-rating (``1``-``4`` or ``a``/``h``/``g``/``e``). ``s`` skips, ``q`` (or end
of input) stops. ``run_drill`` takes ``ask`` and ``say`` so tests feed it lines instead of a keyboard.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence

from bigtrain_lab.quiz import render
from bigtrain_lab.quiz.bank import RATINGS, Answer, Question, QuizScore, Rating, check_lang, grade_answers
from bigtrain_lab.quiz.review import ExerciseReminder, ReviewStore

Ask = Callable[[str], str]
Say = Callable[[str], None]

PROMPTS = {
    "en": {
        "choice": "Your answer ({letters}; s skip, q quit): ",
        "choices": "Your answer, every right letter ({letters}, e.g. A,C; s skip, q quit): ",
        "reveal": "Think of your answer, then press Enter to see it (s skip, q quit): ",
        "rate": "Rate yourself: 1 again (did not know), 2 hard, 3 good, 4 easy: ",
        "invalid": "Please answer with {what}.",
        "letters": "letters {letters}",
        "a_rating": "1, 2, 3 or 4",
        "stopped": "Stopped.",
    },
    "zh": {
        "choice": "你的答案（{letters}；s 跳过，q 退出）：",
        "choices": "你的答案，选出所有正确项（{letters}，例如 A,C；s 跳过，q 退出）：",
        "reveal": "先想好你的答案，再按回车查看（s 跳过，q 退出）：",
        "rate": "自评：1 重来（不会），2 困难，3 良好，4 简单：",
        "invalid": "请用{what}作答。",
        "letters": "字母 {letters}",
        "a_rating": "1、2、3 或 4",
        "stopped": "已退出。",
    },
}
RATING_KEYS: dict[str, Rating] = {"1": "again", "2": "hard", "3": "good", "4": "easy",
                                  "a": "again", "h": "hard", "g": "good", "e": "easy",
                                  **{r: r for r in RATINGS}}


class _Quit(Exception):
    pass


def plain(text: str) -> str:
    """The bank's light markup as terminal text: **bold** markers dropped, `code` kept."""
    return re.sub(r"\*\*([^*]+)\*\*", r"\1", text)


def _wrap(text: str, indent: str = "") -> str:
    lines = []
    for line in plain(text).splitlines():
        lines.append(textwrap.fill(line, width=100, initial_indent=indent, subsequent_indent=indent + "  ")
                     if line.strip() else "")
    return "\n".join(lines)


def parse_letters(reply: str, n: int) -> tuple[int, ...] | None:
    """``"b"`` -> (1,), ``"A, c"`` -> (0, 2); None when a letter is out of range or the reply is empty."""
    letters = [x for x in re.split(r"[\s,;]+", reply.strip().upper()) if x]
    if len(letters) == 1 and len(letters[0]) > 1 and letters[0].isalpha():
        letters = list(letters[0])  # "AC"
    if not letters or not all(len(x) == 1 and "A" <= x < chr(ord("A") + n) for x in letters):
        return None
    return tuple(sorted({ord(x) - ord("A") for x in letters}))


def answer_text(question: Question, lang: str) -> str:
    """The reviewed answer, the pitfalls and the lesson, as terminal text."""
    lines = [f"{render.ui(lang, 'reviewed_answer')}:", _wrap(question.answer[lang], "  "),
             f"{render.ui(lang, 'pitfalls')}:"]
    lines += [_wrap(f"- {p}", "  ") for p in question.pitfalls[lang]]
    lines.append(f"{render.ui(lang, 'lesson')}: {question.lesson}")
    return "\n".join(lines)


def reminders_text(reminders: Sequence[ExerciseReminder], lang: str) -> str:
    """The due exercises, one line each: re-do exercise <id> in <notebook>; see <lesson>."""
    if not reminders:
        return ""
    lines = [render.ui(lang, "redo_title") + ":"]
    for r in reminders:
        line = "  - " + render.ui(lang, "redo", id=r.exercise_id)
        if r.notebook:
            line += " " + render.ui(lang, "in_notebook", nb=r.notebook)
        if r.lesson:
            line += f"; {render.ui(lang, 'see_lesson')} {r.lesson}"
        lines.append(line)
    return "\n".join(lines)


def _ask(ask: Ask, prompt: str) -> str:
    try:
        reply = ask(prompt)
    except EOFError:
        raise _Quit from None
    if reply.strip().lower() == "q":
        raise _Quit
    return reply


def _ask_choice(question: Question, lang: str, ask: Ask, say: Say) -> tuple[int, ...] | None:
    assert question.choices is not None
    n = len(question.choices[lang])
    letters = ", ".join(render.choice_letter(k) for k in range(n))
    prompt = PROMPTS[lang]["choices" if question.multiple else "choice"].format(letters=letters)
    while True:
        reply = _ask(ask, prompt)
        if reply.strip().lower() == "s":
            return None
        chosen = parse_letters(reply, n)
        if chosen is not None and (question.multiple or len(chosen) == 1):
            return chosen
        say(PROMPTS[lang]["invalid"].format(what=PROMPTS[lang]["letters"].format(letters=letters)))


def _ask_rating(lang: str, ask: Ask, say: Say) -> Rating:
    while True:
        reply = _ask(ask, PROMPTS[lang]["rate"]).strip().lower()
        if reply in RATING_KEYS:
            return RATING_KEYS[reply]
        say(PROMPTS[lang]["invalid"].format(what=PROMPTS[lang]["a_rating"]))


def run_drill(questions: Sequence[Question], lang: str = "en", *, reminders: Sequence[ExerciseReminder] = (),
              store: ReviewStore | None = None, warning: str | None = None, ask: Ask | None = None,
              say: Say = print) -> QuizScore:
    """Ask ``questions`` one by one (``ask``: ``input`` by default); show feedback after each; record each
    answer in ``store``. Returns the score (questions not reached count as skipped)."""
    lang = check_lang(lang)
    ask = ask or input
    answers: list[Answer] = [None] * len(questions)
    if warning:
        say(warning)
    if reminders:
        say(reminders_text(reminders, lang) + "\n")
    try:
        for i, q in enumerate(questions):
            kind = (render.ui(lang, "flashcard") if q.is_flashcard
                    else render.ui(lang, "pick_all" if q.multiple else "pick_one"))
            say(f"\n{render.ui(lang, 'question_of', i=i + 1, n=len(questions))} · {q.topic} · {kind}")
            say(_wrap(q.question[lang]))
            if q.choices_prompt is not None:
                say(_wrap(q.choices_prompt[lang]))
            answer: Answer
            if q.choices is not None:
                for k, choice in enumerate(q.choices[lang]):
                    say(_wrap(f"{render.choice_letter(k)}) {choice}", "  "))
                answer = _ask_choice(q, lang, ask, say)
            else:
                if _ask(ask, PROMPTS[lang]["reveal"]).strip().lower() == "s":
                    continue
                say(answer_text(q, lang))
                answer = _ask_rating(lang, ask, say)
            if answer is None:
                continue
            answers[i] = answer
            result = grade_answers([q], [answer]).results[0]
            verdict = render.ui(lang, {"correct": "knew", "wrong": "did_not_know"}[result.status]
                                if q.is_flashcard else result.status)
            say(("✔ " if result.is_correct else "✘ ") + verdict)
            if q.choices is not None:
                right = "; ".join(f"{render.choice_letter(k)}) {plain(q.choices[lang][k])}" for k in q.correct)
                say(f"{render.ui(lang, 'right_answer')}: {right}")
                say(answer_text(q, lang))
            if store is not None:
                outcome = answer if isinstance(answer, str) else result.is_correct
                try:
                    store.record(q.id, outcome)
                except (OSError, ValueError) as exc:
                    say(render.ui(lang, "not_saved", err=exc))
                    store = None
    except _Quit:
        say(PROMPTS[lang]["stopped"])
    score = grade_answers(questions, answers)
    say("\n" + render.score_line(score, lang))
    return score
