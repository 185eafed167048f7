"""Pure text and HTML for the quiz: question cards, feedback, score lines and the countdown.

The widgets only put these strings into ``ipywidgets.HTML``; the tests call the functions directly.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bigtrain_lab.quiz.bank import Question, QuizScore, Rating, Status, check_lang

if TYPE_CHECKING:
    from bigtrain_lab.quiz.review import ExerciseReminder

UI: dict[str, dict[str, str]] = {
    "en": {
        "question_of": "Question {i} of {n}",
        "pick_one": "choose one",
        "pick_all": "choose all that apply",
        "submit": "Submit",
        "next": "Next",
        "back": "Back",
        "pick_first": "Choose an option first.",
        "correct": "Correct",
        "wrong": "Not quite",
        "skipped": "Not answered",
        "late": "Too late: answered after the time was up, so it does not count",
        "right_answer": "Right answer",
        "your_answer": "Your answer",
        "reviewed_answer": "Reviewed answer",
        "pitfalls": "Pitfalls: wrong answers that circulate, and why",
        "lesson": "Lesson",
        "score": "Score: {c} / {n} correct",
        "answered": "{a} answered",
        "not_answered": "{s} not answered",
        "late_count": "{k} late",
        "done": "Done",
        "mock_title": "Mock interview: {n} questions, {m} min",
        "mock_intro": ("Answer each question, then press Submit; answers are scored at the end. "
                       "Answers given after the time is up do not count. Press Start when ready."),
        "start": "Start",
        "finish": "Finish",
        "time_left": "Time left",
        "ends_at": "ends at {t}",
        "time_up": "Time is up.",
        "recorded": "Answer recorded.",
        "results": "Results",
        "source": "Source",
        "show_answer": "Show the reviewed answer",
        "flashcard": "flashcard: answer in your head, then rate yourself",
        "think": "Think of your answer first (say it aloud, as in an interview), then reveal the reviewed answer.",
        "reveal": "Show answer",
        "rate": "How well did you know it?",
        "again": "Again (did not know)",
        "hard": "Hard",
        "good": "Good",
        "easy": "Easy",
        "knew": "Knew it",
        "did_not_know": "Did not know it yet",
        "your_rating": "Your rating",
        "reveal_first": "Show the answer, then rate yourself.",
        "redo_title": "Exercises due for another try",
        "redo": "re-do exercise {id}",
        "in_notebook": "in {nb}",
        "see_lesson": "see",
        "not_saved": "Progress not saved: {err}",
        "fewer": "{got} questions ({asked} asked; {scope} {got})",
        "scope_topic": "the topic “{t}” has",
        "scope_topics": "the topics {t} have",
        "scope_lesson": "lesson {t} has",
        "scope_bank": "the bank has",
    },
    "zh": {
        "question_of": "第 {i} 题，共 {n} 题",
        "pick_one": "单选",
        "pick_all": "多选（选出所有正确项）",
        "submit": "提交",
        "next": "下一题",
        "back": "上一题",
        "pick_first": "请先选择一个选项。",
        "correct": "回答正确",
        "wrong": "回答有误",
        "skipped": "未作答",
        "late": "超时：在时间结束后作答，不计分",
        "right_answer": "正确答案",
        "your_answer": "你的答案",
        "reviewed_answer": "参考答案（已审校）",
        "pitfalls": "常见误区：流传的错误答案及其错误原因",
        "lesson": "对应课程",
        "score": "得分：{c} / {n} 题正确",
        "answered": "已答 {a} 题",
        "not_answered": "未答 {s} 题",
        "late_count": "超时 {k} 题",
        "done": "已完成",
        "mock_title": "模拟面试：{n} 道题，{m} 分钟",
        "mock_intro": "逐题作答并点击“提交”，全部结束后统一评分。时间结束后提交的答案不计分。准备好后点击“开始”。",
        "start": "开始",
        "finish": "交卷",
        "time_left": "剩余时间",
        "ends_at": "结束时间 {t}",
        "time_up": "时间到。",
        "recorded": "答案已记录。",
        "results": "结果",
        "source": "出处",
        "show_answer": "查看参考答案",
        "flashcard": "闪卡：先在心里作答，再自评",
        "think": "先想好你的答案（像面试时一样说出来），再查看参考答案。",
        "reveal": "显示答案",
        "rate": "你掌握得怎么样？",
        "again": "重来（不会）",
        "hard": "困难",
        "good": "良好",
        "easy": "简单",
        "knew": "已掌握",
        "did_not_know": "尚未掌握",
        "your_rating": "你的自评",
        "reveal_first": "请先显示答案，再自评。",
        "redo_title": "到期需要重做的练习",
        "redo": "重做练习 {id}",
        "in_notebook": "位于 {nb}",
        "see_lesson": "参见",
        "not_saved": "进度未保存：{err}",
        "fewer": "共 {got} 道题（要求 {asked} 道；{scope}只有 {got} 道）",
        "scope_topic": "主题“{t}”",
        "scope_topics": "主题 {t} 合计",
        "scope_lesson": "第 {t} 课",
        "scope_bank": "题库",
    },
}

COLOURS = {"correct": "#1a7f37", "wrong": "#cf222e", "skipped": "#57606a", "late": "#9a6700"}
MARKS = {"correct": "&#10004;", "wrong": "&#10008;", "skipped": "&#8211;", "late": "&#9201;"}


def ui(lang: str, key: str, **values: object) -> str:
    """An interface string in ``lang``, formatted with ``values``."""
    return UI[check_lang(lang)][key].format(**values)


def choice_letter(index: int) -> str:
    """A, B, C, ... for choice 0, 1, 2, ..."""
    return chr(ord("A") + index)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markup(text: str) -> str:
    """Render the bank's light markup as HTML: `code`, **bold**, and lines starting with "- " as a list."""
    parts: list[str] = []
    items: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- "):
            items.append(f"<li>{_inline(stripped[2:])}</li>")
            continue
        if items:
            parts.append("<ul style='margin:2px 0 6px 0'>" + "".join(items) + "</ul>")
            items = []
        if stripped:
            parts.append(f"<p style='margin:4px 0'>{_inline(stripped)}</p>")
    if items:
        parts.append("<ul style='margin:2px 0 6px 0'>" + "".join(items) + "</ul>")
    return "".join(parts)


def lesson_link_html(question: Question, lang: str = "en") -> str:
    """The lesson reference as a link (relative to a notebook in notebooks/, exercises/ or solutions/)."""
    ref = html.escape(question.lesson)
    return (f"<div style='margin-top:6px;color:#57606a'>{ui(lang, 'lesson')}: "
            f"<a href='../{ref}' target='_blank'><code>{ref}</code></a></div>")


def question_html(question: Question, lang: str = "en", number: int | None = None,
                  total: int | None = None) -> str:
    """The question card shown above the choices: position, topic, question text, and how to answer."""
    lang = check_lang(lang)
    head = [f"<code>{html.escape(question.topic)}</code>"]
    if number is not None and total is not None:
        head.insert(0, ui(lang, "question_of", i=number, n=total))
    if question.is_quiz:
        head.append(ui(lang, "pick_all" if question.multiple else "pick_one"))
    else:
        head.append(ui(lang, "flashcard"))
    body = f"<div style='font-size:1.1em;font-weight:600'>{markup(question.question[lang])}</div>"
    if question.choices_prompt is not None:
        body += f"<div style='margin-top:4px'>{markup(question.choices_prompt[lang])}</div>"
    return (f"<div class='bt-quiz-question' data-id='{html.escape(question.id)}'>"
            f"<div style='color:#57606a;font-size:0.9em'>{' &middot; '.join(head)}</div>{body}</div>")


def choice_html(question: Question, index: int, lang: str = "en") -> str:
    """The text of one choice, as HTML (wraps, unlike a button label)."""
    assert question.choices is not None
    return f"<div>{markup(question.choices[check_lang(lang)][index])}</div>"


def _choices_text(question: Question, indices: Sequence[int], lang: str) -> str:
    assert question.choices is not None
    return "; ".join(f"<b>{choice_letter(i)}</b> {_inline(question.choices[lang][i])}" for i in indices)


def answer_html(question: Question, lang: str = "en") -> str:
    """The reviewed answer, the pitfalls and the lesson link of ``question``."""
    lang = check_lang(lang)
    pitfalls = "".join(f"<li>{_inline(p)}</li>" for p in question.pitfalls[lang])
    return (f"<div><b>{ui(lang, 'reviewed_answer')}</b>{markup(question.answer[lang])}</div>"
            f"<div style='margin-top:6px'><b>{ui(lang, 'pitfalls')}</b>"
            f"<ul style='margin:2px 0'>{pitfalls}</ul></div>" + lesson_link_html(question, lang))


def verdict_html(status: Status, lang: str = "en", *, flashcard: bool = False) -> str:
    """The coloured verdict line: correct, wrong, not answered or late (a flashcard: knew it / did not)."""
    text = ui(lang, {"correct": "knew", "wrong": "did_not_know"}.get(status, status) if flashcard else status)
    return (f"<div style='color:{COLOURS[status]};font-weight:700;font-size:1.05em'>"
            f"{MARKS[status]} {text}</div>")


def feedback_html(question: Question, chosen: Sequence[int] | None, status: Status, lang: str = "en",
                  rating: Rating | None = None) -> str:
    """Feedback after an answer: the verdict, the right choice(s) (a flashcard: the self-rating), the
    reviewed answer and the pitfalls."""
    lang = check_lang(lang)
    parts = [verdict_html(status, lang, flashcard=question.is_flashcard)]
    if rating is not None:
        parts.append(f"<div>{ui(lang, 'your_rating')}: <b>{ui(lang, rating)}</b></div>")
    if question.is_quiz:
        if chosen and status != "correct":
            parts.append(f"<div>{ui(lang, 'your_answer')}: {_choices_text(question, chosen, lang)}</div>")
        parts.append(f"<div>{ui(lang, 'right_answer')}: {_choices_text(question, question.correct, lang)}</div>")
    parts.append(f"<div style='margin-top:6px'>{answer_html(question, lang)}</div>")
    return (f"<div class='bt-quiz-feedback' data-status='{status}' style='border-left:4px solid "
            f"{COLOURS[status]};padding:4px 10px;margin:6px 0'>" + "".join(parts) + "</div>")


def score_line(score: QuizScore, lang: str = "en") -> str:
    """One line of plain text, e.g. "Score: 3 / 5 correct · 4 answered · 1 not answered"."""
    lang = check_lang(lang)
    parts = [ui(lang, "score", c=score.n_correct, n=score.n_questions),
             ui(lang, "answered", a=score.n_answered)]
    if score.n_skipped:
        parts.append(ui(lang, "not_answered", s=score.n_skipped))
    if score.n_late:
        parts.append(ui(lang, "late_count", k=score.n_late))
    return " · ".join(parts)


def format_countdown(seconds: float) -> str:
    """Remaining time as M:SS (or H:MM:SS), rounded up to whole seconds and never below 0:00."""
    total = max(0, math.ceil(seconds - 1e-9))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def countdown_html(remaining: float, ends_at: str, lang: str = "en") -> str:
    """The countdown banner: time left (red in the last minute, "time is up" at zero) and the end time."""
    lang = check_lang(lang)
    if remaining <= 0:
        return f"<div style='color:{COLOURS['wrong']};font-weight:700'>&#9201; {ui(lang, 'time_up')}</div>"
    colour = COLOURS["wrong"] if remaining <= 60 else "#0969da"
    return (f"<div style='font-weight:700;color:{colour}'>&#9201; {ui(lang, 'time_left')}: "
            f"<span class='bt-countdown'>{format_countdown(remaining)}</span> "
            f"<span style='font-weight:400;color:#57606a'>({ui(lang, 'ends_at', t=html.escape(ends_at))})"
            f"</span></div>")


def review_html(questions: Sequence[Question], score: QuizScore, lang: str = "en") -> str:
    """The end-of-interview report: the score, then every question with its verdict and feedback."""
    lang = check_lang(lang)
    rows = [f"<h4 style='margin:6px 0'>{ui(lang, 'results')}: {html.escape(score_line(score, lang))}</h4>"]
    for k, (q, r) in enumerate(zip(questions, score.results, strict=True), start=1):
        rows.append(f"<div style='margin-top:10px'>{question_html(q, lang, k, len(questions))}"
                    f"{feedback_html(q, r.chosen, r.status, lang, r.rating)}</div>")
    return "".join(rows)


def question_card_html(question: Question, lang: str = "en", reveal: bool = False) -> str:
    """A bank entry for a lesson: the question, its choices, and the answer (collapsed unless ``reveal``)."""
    lang = check_lang(lang)
    parts = [question_html(question, lang)]
    if question.choices is not None:
        items = "".join(f"<li>{_inline(c)}</li>" for c in question.choices[lang])
        parts.append(f"<ol type='A' style='margin:4px 0'>{items}</ol>")
        right = ", ".join(choice_letter(i) for i in question.correct)
        reveal_right = f"<div><b>{ui(lang, 'right_answer')}</b>: {right}</div>"
    else:
        reveal_right = ""
    sources = ", ".join(html.escape(s) for s in question.source)
    details = (f"<details{' open' if reveal else ''}><summary>{ui(lang, 'show_answer')}</summary>"
               f"{reveal_right}{answer_html(question, lang)}"
               f"<div style='color:#57606a;font-size:0.85em'>{ui(lang, 'source')}: {sources}</div></details>")
    return ("<div class='bt-quiz-card' style='border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;"
            f"margin:6px 0'>{''.join(parts)}{details}</div>")


def think_html(lang: str = "en") -> str:
    """The prompt of a flashcard before its answer is shown."""
    return f"<div class='bt-quiz-think' style='color:#57606a;margin:4px 0'>{ui(lang, 'think')}</div>"


def flashcard_answer_html(question: Question, lang: str = "en") -> str:
    """A revealed flashcard: the reviewed answer, the pitfalls and the lesson, then the rating prompt."""
    return (f"<div class='bt-quiz-reveal' style='border-left:4px solid #0969da;padding:4px 10px;margin:6px 0'>"
            f"{answer_html(question, lang)}</div><div style='font-weight:600'>{ui(lang, 'rate')}</div>")


def reminders_html(reminders: Sequence[ExerciseReminder], lang: str = "en") -> str:
    """The due exercise cards above a drill: "re-do exercise <id> in <notebook>; see <lesson>"."""
    if not reminders:
        return ""
    lang = check_lang(lang)
    items = []
    for r in reminders:
        where = (f" {ui(lang, 'in_notebook', nb='')}<a href='../{html.escape(r.notebook)}' target='_blank'>"
                 f"<code>{html.escape(r.notebook)}</code></a>" if r.notebook else "")
        lesson = (f"; {ui(lang, 'see_lesson')} <a href='../{html.escape(r.lesson)}' target='_blank'>"
                  f"<code>{html.escape(r.lesson)}</code></a>" if r.lesson else "")
        items.append(f"<li data-exercise='{html.escape(r.exercise_id)}'>"
                     f"{html.escape(ui(lang, 'redo', id=r.exercise_id))}{where}{lesson}</li>")
    return (f"<div class='bt-quiz-reminders' style='border:1px solid #d4a72c;background:#fff8c5;"
            f"padding:4px 10px;margin:4px 0'><b>{ui(lang, 'redo_title')}</b>"
            f"<ul style='margin:2px 0'>{''.join(items)}</ul></div>")


def count_note_html(asked: int | None, got: int, lang: str = "en", *, topic: str | Sequence[str] | None = None,
                    lesson: int | None = None) -> str:
    """A line saying the quiz has fewer questions than ``asked`` (``""`` when it has them all): ``quiz(n=5)``
    on a topic with 3 entries shows "3 questions (5 asked; the topic “attention” has 3)"."""
    if asked is None or got >= asked:
        return ""
    if isinstance(topic, str):
        scope = ui(lang, "scope_topic", t=topic)
    elif topic is not None:
        scope = ui(lang, "scope_topics", t=", ".join(f"“{t}”" for t in topic))
    elif lesson is not None:
        scope = ui(lang, "scope_lesson", t=lesson)
    else:
        scope = ui(lang, "scope_bank")
    text = ui(lang, "fewer", got=got, asked=asked, scope=scope)
    return f"<div class='bt-quiz-count' style='color:#57606a'>{html.escape(text)}</div>"
