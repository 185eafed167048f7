"""The quiz and mock-interview widgets: thin ipywidgets views over ``bank`` (grading) and ``render`` (text).

``quiz()`` asks one question at a time and gives immediate feedback. Choices are shown in the seeded
random order ``draw`` gives them; an entry without choices is a flashcard (think, reveal the reviewed
answer, rate yourself). Every answer updates the learner's spaced-repetition schedule (``review``);
without a ``seed`` the schedule decides what comes first (due cards, then new ones). ``mock_interview()`` draws a timed
random set, shows a countdown and scores everything at the end; answers submitted after the deadline count
as not answered. The countdown needs no background thread: an invisible ``ipywidgets.Play`` ticks once a
second in the browser, every tick and every answer re-checks the deadline, and the end time is displayed
in case the ticker is not running (e.g. when the notebook is not rendered live).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence

import ipywidgets as widgets
from IPython.display import HTML

from bigtrain_lab.quiz import render
from bigtrain_lab.quiz.bank import (
    RATINGS,
    Answer,
    Question,
    QuizScore,
    Rating,
    check_lang,
    draw,
    get_question,
    grade_answers,
)
from bigtrain_lab.quiz.review import Drill, ExerciseReminder, ReviewStore, drill

Clock = Callable[[], float]


class QuizWidget(widgets.VBox):
    """One question at a time: toggle the choice(s), Submit, read the feedback; a running score below.
    A flashcard (an entry without choices): Show answer, then rate yourself (again / hard / good / easy).

    The state (``selection``, ``answers``, ``answered_at``, ``revealed``, ``index``) is plain Python,
    graded by ``grade_answers``; ``score`` is always the current ``QuizScore``. With a ``store`` every
    answer is recorded in the spaced-repetition schedule; ``reminders`` (due exercises) and ``warning``
    are shown above the questions.
    """

    reveal: bool = True  # show feedback right after each answer

    def __init__(self, questions: Sequence[Question], lang: str = "en", *, clock: Clock | None = None,
                 store: ReviewStore | None = None, reminders: Sequence[ExerciseReminder] = (),
                 warning: str | None = None, count_note: str = "") -> None:
        super().__init__()
        self.lang = check_lang(lang)
        if not questions:
            raise ValueError("a quiz needs at least one question")
        self.questions = list(questions)
        self.clock: Clock = clock or time.monotonic
        self.store = store
        self.reminders = list(reminders)
        self.warning = warning
        self.count_note = count_note  # HTML: fewer questions than asked (render.count_note_html)
        n = len(self.questions)
        self.selection: list[set[int]] = [set() for _ in range(n)]
        self.answers: list[Answer] = [None] * n
        self.answered_at: list[float | None] = [None] * n
        self.revealed: list[bool] = [False] * n
        self.index = 0
        self.finished = False
        self._rows: dict[int, tuple[list[widgets.ToggleButton], list[widgets.HBox]]] = {}
        self._cards: dict[int, _Flashcard] = {}
        self._syncing = False

        self.notice = widgets.HTML()
        self._render_notice()
        self.question_box = widgets.HTML()
        self.choice_box = widgets.VBox(layout=widgets.Layout(margin="4px 0"))
        self.submit_button = widgets.Button(description=render.ui(lang, "submit"), button_style="primary",
                                            icon="check")
        self.back_button = widgets.Button(description=render.ui(lang, "back"), icon="arrow-left")
        self.next_button = widgets.Button(description=render.ui(lang, "next"), icon="arrow-right")
        self.message = widgets.HTML()
        self.feedback = widgets.HTML()
        self.score_html = widgets.HTML()
        self.submit_button.on_click(lambda _b: self.submit())
        self.back_button.on_click(lambda _b: self.go(self.index - 1))
        self.next_button.on_click(lambda _b: self.go(self.index + 1))
        self.controls = widgets.HBox([self.submit_button, self.back_button, self.next_button, self.message],
                                     layout=widgets.Layout(align_items="center"))
        self.layout = widgets.Layout(border="1px solid #d0d7de", padding="8px 12px", max_width="900px")
        self.children = self._children()
        self._render()

    # ---- state ---------------------------------------------------------------------------------------

    @property
    def question(self) -> Question:
        """The question on screen."""
        return self.questions[self.index]

    @property
    def score(self) -> QuizScore:
        """The grade of the answers so far (unanswered questions count as skipped)."""
        return grade_answers(self.questions, self.answers)

    @property
    def choice_buttons(self) -> list[widgets.ToggleButton]:
        """The toggle buttons of the question on screen (A, B, C, ...; none for a flashcard)."""
        return self._rows_for(self.index)[0] if self.question.is_quiz else []

    @property
    def reveal_button(self) -> widgets.Button:
        """The "Show answer" button of the flashcard on screen."""
        return self._card(self.index).reveal_button

    @property
    def rating_buttons(self) -> dict[Rating, widgets.Button]:
        """The self-rating buttons (again, hard, good, easy) of the flashcard on screen."""
        return self._card(self.index).rating_buttons

    def select(self, *indices: int) -> None:
        """Set the selection of the question on screen, as if those toggles were clicked."""
        for i, button in enumerate(self.choice_buttons):
            button.value = i in indices

    def reveal_answer(self) -> None:
        """Show the reviewed answer of the flashcard on screen (then it can be rated)."""
        if self.question.is_flashcard and self._can_answer(self.index):
            self.revealed[self.index] = True
            self._render()

    def rate(self, rating: Rating) -> None:
        """Rate yourself on the flashcard on screen (after its answer is shown): the answer to it."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}; got {rating!r}")
        i = self.index
        if not self.question.is_flashcard or not self._can_answer(i):
            return
        if not self.revealed[i]:
            self.message.value = f"<span style='color:#9a6700'>{render.ui(self.lang, 'reveal_first')}</span>"
            return
        self._answer(i, rating)

    def go(self, index: int) -> None:
        """Show question ``index`` (clamped to the valid range)."""
        self.index = min(max(index, 0), len(self.questions) - 1)
        self.message.value = ""
        self._render()

    def submit(self) -> None:
        """Record the current selection as the answer to the question on screen."""
        i = self.index
        if not self._can_answer(i) or self.question.is_flashcard:
            return
        chosen = tuple(sorted(self.selection[i]))
        if not chosen:
            self.message.value = f"<span style='color:#9a6700'>{render.ui(self.lang, 'pick_first')}</span>"
            return
        self._answer(i, chosen)

    def _can_answer(self, i: int) -> bool:
        return not self.finished and self.answers[i] is None

    def _answer(self, i: int, answer: tuple[int, ...] | Rating) -> None:
        self.answers[i] = answer
        self.answered_at[i] = self.clock()
        self.message.value = ""
        self._record(self.questions[i], answer)
        self._after_submit(i)

    def _record(self, question: Question, answer: tuple[int, ...] | Rating) -> None:
        """Update the schedule: a flashcard by its rating, a choice question by hit or miss."""
        if self.store is None:
            return
        outcome = answer if isinstance(answer, str) else answer == question.correct
        try:
            self.store.record(question.id, outcome)
        except (OSError, ValueError) as exc:  # a corrupt or unwritable file: keep drilling, say so once
            self.store = None
            self.warning = render.ui(self.lang, "not_saved", err=exc)
            self._render_notice()

    # ---- view ----------------------------------------------------------------------------------------

    def _children(self) -> list[widgets.Widget]:
        return [self.notice, self.question_box, self.choice_box, self.controls, self.feedback, self.score_html]

    def _render_notice(self) -> None:
        parts = [self.count_note, render.reminders_html(self.reminders, self.lang)]
        if self.warning:
            parts.append(f"<div class='bt-quiz-warning' style='color:#9a6700'>{html.escape(self.warning)}</div>")
        self.notice.value = "".join(parts)
        self.notice.layout.display = None if any(parts) else "none"

    def _card(self, i: int) -> _Flashcard:
        if not self.questions[i].is_flashcard:
            raise ValueError(f"{self.questions[i].id} has choices; it is not a flashcard")
        if i not in self._cards:
            card = _Flashcard(self.questions[i], self.lang)
            card.reveal_button.on_click(lambda _b, i=i: self._on_card(i, None))
            for rating, button in card.rating_buttons.items():
                button.on_click(lambda _b, i=i, r=rating: self._on_card(i, r))
            self._cards[i] = card
        return self._cards[i]

    def _on_card(self, i: int, rating: Rating | None) -> None:
        if i != self.index:  # a stale view (should not happen): act on what is on screen only
            return
        if rating is None:
            self.reveal_answer()
        else:
            self.rate(rating)

    def _after_submit(self, i: int) -> None:
        if all(a is not None for a in self.answers):
            self.finished = True
        self._render()

    def _rows_for(self, i: int) -> tuple[list[widgets.ToggleButton], list[widgets.HBox]]:
        if i not in self._rows:
            q = self.questions[i]
            assert q.choices is not None
            buttons, rows = [], []
            for k, text in enumerate(q.choices[self.lang]):
                button = widgets.ToggleButton(description=render.choice_letter(k), tooltip=text[:200],
                                              layout=widgets.Layout(width="3em", min_width="3em"))
                button.observe(lambda change, i=i, k=k: self._on_toggle(i, k, change["new"]), names="value")
                label = widgets.HTML(render.choice_html(q, k, self.lang), layout=widgets.Layout(flex="1"))
                buttons.append(button)
                rows.append(widgets.HBox([button, label], layout=widgets.Layout(align_items="center")))
            self._rows[i] = (buttons, rows)
        return self._rows[i]

    def _on_toggle(self, i: int, k: int, value: bool) -> None:
        if self._syncing:
            return
        if self.finished or self.answers[i] is not None:  # locked: put the toggle back
            self._syncing = True
            try:
                self._rows_for(i)[0][k].value = k in (self.answers[i] or ())
            finally:
                self._syncing = False
            return
        if value and not self.questions[i].multiple:
            self.selection[i] = {k}
            self._syncing = True
            try:
                for j, other in enumerate(self._rows_for(i)[0]):
                    other.value = j == k
            finally:
                self._syncing = False
        elif value:
            self.selection[i].add(k)
        else:
            self.selection[i].discard(k)
        self.message.value = ""

    def _style_buttons(self, i: int) -> None:
        q = self.questions[i]
        answer = self.answers[i]
        if q.is_flashcard:
            rated = answer if isinstance(answer, str) else None
            for rating, button in self._card(i).rating_buttons.items():
                button.disabled = not self._can_answer(i)
                button.button_style = ("info" if rating == rated else "")
            self._card(i).reveal_button.disabled = not self._can_answer(i)
            return
        locked = self.finished or answer is not None
        show = answer is not None and (self.reveal or self.finished)
        for k, button in enumerate(self._rows_for(i)[0]):
            button.disabled = locked
            if show:
                button.button_style = ("success" if k in q.correct
                                       else "danger" if k in (answer or ()) else "")
            else:
                button.button_style = "info" if answer is not None and k in answer else ""

    def _render(self) -> None:
        i, q, n = self.index, self.question, len(self.questions)
        self.question_box.value = render.question_html(q, self.lang, i + 1, n)
        if q.is_flashcard:
            card = self._card(i)
            if self.answers[i] is not None or self.finished:
                self.choice_box.children = [card.ratings] if self.answers[i] is not None else []
            elif self.revealed[i]:
                self.choice_box.children = [card.answer, card.ratings]
            else:
                self.choice_box.children = [card.think, card.reveal_button]
        else:
            self.choice_box.children = self._rows_for(i)[1]
        self._style_buttons(i)
        answered = self.answers[i] is not None
        self.submit_button.layout.display = "none" if q.is_flashcard else None
        self.submit_button.disabled = answered or self.finished
        self.back_button.disabled = i == 0
        self.next_button.disabled = i == n - 1
        self.next_button.button_style = "primary" if answered and i < n - 1 else ""
        self._render_feedback()
        self._render_score()

    def _render_feedback(self) -> None:
        i = self.index
        chosen = self.answers[i]
        if chosen is None:
            self.feedback.value = ""
            return
        result = grade_answers([self.question], [chosen]).results[0]
        self.feedback.value = render.feedback_html(self.question, result.chosen, result.status, self.lang,
                                                   result.rating)

    def _render_score(self) -> None:
        line = render.score_line(self.score, self.lang)
        prefix = f"{render.ui(self.lang, 'done')} · " if self.finished else ""
        self.score_html.value = f"<div style='color:#24292f;margin-top:4px'><b>{prefix}{line}</b></div>"


class _Flashcard:
    """The widgets of one flashcard: the "think" prompt, Show answer, the answer, the rating buttons."""

    def __init__(self, question: Question, lang: str) -> None:
        self.think = widgets.HTML(render.think_html(lang))
        self.reveal_button = widgets.Button(description=render.ui(lang, "reveal"), button_style="primary",
                                            icon="eye")
        self.answer = widgets.HTML(render.flashcard_answer_html(question, lang))
        self.rating_buttons: dict[Rating, widgets.Button] = {
            rating: widgets.Button(description=render.ui(lang, rating), tooltip=rating,
                                   layout=widgets.Layout(width="auto"))
            for rating in RATINGS}
        self.ratings = widgets.HBox(list(self.rating_buttons.values()))


class MockInterviewWidget(QuizWidget):
    """A timed set: Start begins the countdown; answers are scored, with feedback, only at the end.

    The interview ends when every question is answered, when Finish is pressed, or when the time is up
    (checked on every ticker tick and every answer). Answers submitted after the deadline count as late.
    """

    reveal = False

    def __init__(self, questions: Sequence[Question], lang: str = "en", *, minutes: float = 10,
                 clock: Clock | None = None, store: ReviewStore | None = None,
                 reminders: Sequence[ExerciseReminder] = (), warning: str | None = None,
                 count_note: str = "") -> None:
        lang = check_lang(lang)
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0:
            raise ValueError(f"minutes must be a positive number; got {minutes!r}")
        self.minutes = minutes
        self.duration = float(minutes) * 60.0
        self.started = False
        self.deadline: float | None = None
        self.ends_at = ""
        self.title = widgets.HTML()
        self.intro = widgets.HTML()
        self.timer = widgets.HTML()
        self.start_button = widgets.Button(description=render.ui(lang, "start"), button_style="success",
                                           icon="play")
        self.finish_button = widgets.Button(description=render.ui(lang, "finish"), icon="flag-checkered")
        # The browser advances `value` once a second while `playing`; each change calls `tick`.
        self.ticker = widgets.Play(value=0, min=0, max=int(self.duration) + 3600, step=1, interval=1000,
                                   show_repeat=False, layout=widgets.Layout(display="none"))
        super().__init__(questions, lang, clock=clock, store=store, reminders=reminders, warning=warning,
                         count_note=count_note)
        self.title.value = (f"<h4 style='margin:2px 0'>"
                            f"{render.ui(self.lang, 'mock_title', n=len(self.questions), m=_fmt(minutes))}</h4>")
        self.intro.value = f"<div style='color:#57606a'>{render.ui(self.lang, 'mock_intro')}</div>"
        self.start_button.on_click(lambda _b: self.start())
        self.finish_button.on_click(lambda _b: self.finish())
        self.ticker.observe(lambda _change: self.tick(), names="value")
        self.controls.children = (self.submit_button, self.back_button, self.next_button, self.finish_button,
                                  self.message)
        self.children = self._children()

    def _children(self) -> list[widgets.Widget]:
        if not getattr(self, "started", False):
            return [self.title, self.intro, self.notice, self.start_button, self.ticker]
        return [self.title, self.timer, self.notice, self.question_box, self.choice_box, self.controls,
                self.feedback, self.score_html, self.ticker]

    # ---- timing ----------------------------------------------------------------------------------------

    def remaining(self) -> float:
        """Seconds left (the full duration before Start, 0 once the time is up)."""
        if self.deadline is None:
            return self.duration
        return max(0.0, self.deadline - self.clock())

    def start(self) -> None:
        """Start the countdown and show the first question."""
        if self.started:
            return
        self.started = True
        self.deadline = self.clock() + self.duration
        self.ends_at = time.strftime("%H:%M:%S", time.localtime(time.time() + self.duration))
        self.children = self._children()
        self._render()
        self.ticker.playing = True

    def tick(self) -> None:
        """Refresh the countdown; end the interview when the time is up."""
        if not self.started or self.finished:
            return
        if self.remaining() <= 0:
            self.finish()
        else:
            self.timer.value = render.countdown_html(self.remaining(), self.ends_at, self.lang)

    def finish(self) -> None:
        """End the interview now and show the scored review."""
        if self.finished or not self.started:
            return
        self.finished = True
        self.ticker.playing = False
        self.finish_button.disabled = True
        self._render()

    @property
    def score(self) -> QuizScore:
        """The grade so far; answers submitted after the deadline are late and count as not answered."""
        return grade_answers(self.questions, self.answers, answered_at=self.answered_at, deadline=self.deadline)

    # ---- view ------------------------------------------------------------------------------------------

    def _can_answer(self, i: int) -> bool:
        """Answers (late if after the deadline) only between Start and the end."""
        return self.started and super()._can_answer(i)

    def _after_submit(self, i: int) -> None:
        when = self.answered_at[i]
        if self.deadline is not None and when is not None and when > self.deadline:
            self.finish()
            return
        unanswered = [j for j in range(len(self.questions)) if self.answers[j] is None]
        if not unanswered:
            self.finish()
            return
        later = [j for j in unanswered if j > i]
        self.index = later[0] if later else unanswered[0]
        self._render()
        self.message.value = f"<span style='color:#1a7f37'>{render.ui(self.lang, 'recorded')}</span>"

    def _render(self) -> None:
        super()._render()
        if self.finished:
            self.timer.value = (render.countdown_html(0, self.ends_at, self.lang) if self.remaining() <= 0
                                else f"<div style='font-weight:700'>{render.ui(self.lang, 'done')}</div>")
        elif self.started:
            self.timer.value = render.countdown_html(self.remaining(), self.ends_at, self.lang)

    def _render_feedback(self) -> None:
        if self.finished:
            self.feedback.value = render.review_html(self.questions, self.score, self.lang)
        else:
            self.feedback.value = ""

    def _render_score(self) -> None:
        if self.finished:
            super()._render_score()
        else:
            done = sum(a is not None for a in self.answers)
            self.score_html.value = (f"<div style='color:#57606a'>"
                                     f"{render.ui(self.lang, 'answered', a=done)} / {len(self.questions)}</div>")


def _fmt(minutes: float) -> str:
    return f"{minutes:g}"


def _questions_for(topic: str | Sequence[str] | None, n: int | None, seed: int | None,
                   lesson: int | None) -> Drill:
    """With a seed: the seeded draw (the same for everyone; due exercises still listed). Without: the
    learner's schedule decides (due cards first, then new ones)."""
    plan = drill(topic, n, seed, lesson=lesson)
    if seed is None:
        return plan
    return Drill(draw(topic, n, seed, lesson=lesson), plan.reminders, plan.warning)


def quiz(topic: str | Sequence[str] | None = None, n: int | None = None, lang: str = "en",
         seed: int | None = None, *, lesson: int | None = None, record: bool = True) -> QuizWidget:
    """An interactive quiz over ``n`` questions of ``topic`` (a key or several) or of a lesson's topics
    (``lesson=3``; all topics and all questions by default), in English (``lang="en"``) or Chinese
    (``"zh"``), with immediate feedback. Choices are shown in a random order; entries without choices are
    flashcards. Without ``seed`` what your schedule says is due comes first, then new questions; with a
    ``seed`` the draw is random and repeatable. Answers update the schedule unless ``record=False``."""
    check_lang(lang)
    plan = _questions_for(topic, n, seed, lesson)
    store = ReviewStore() if record and plan.warning is None else None
    note = render.count_note_html(n, len(plan.questions), lang, topic=topic, lesson=lesson)
    return QuizWidget(plan.questions, lang, store=store, reminders=plan.reminders, warning=plan.warning,
                      count_note=note)


def mock_interview(n: int = 5, minutes: float = 10, topic: str | Sequence[str] | None = None, lang: str = "en",
                   seed: int | None = None, *, lesson: int | None = None,
                   clock: Clock | None = None, record: bool = True) -> MockInterviewWidget:
    """A timed mock interview: ``n`` random questions (flashcards included), ``minutes`` on the clock,
    scored at the end. Answers update the spaced-repetition schedule unless ``record=False``.

    ``clock`` (seconds, monotonic; default ``time.monotonic``) is there for tests.
    """
    check_lang(lang)
    plan = Drill(draw(topic, n, seed, lesson=lesson), [], None)
    store = ReviewStore() if record else None
    note = render.count_note_html(n, len(plan.questions), lang, topic=topic, lesson=lesson)
    return MockInterviewWidget(plan.questions, lang, minutes=minutes, clock=clock, store=store, count_note=note)


def show_question(qid: str, lang: str = "en", reveal: bool = False) -> HTML:
    """Render one bank entry for a lesson: question, choices, and the reviewed answer and pitfalls
    (collapsed unless ``reveal``)."""
    return HTML(render.question_card_html(get_question(qid), check_lang(lang), reveal))
