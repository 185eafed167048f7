"""The interview question bank and the quiz widgets: the real bank's schema and content, grading, the
widgets driven through their own API, and the loader's errors on malformed banks."""

from __future__ import annotations

import json
import math
import re
import textwrap

import numpy as np
import pytest
import yaml
from sklearn.metrics import (
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from bigtrain_lab.quiz import (
    BankError,
    MockInterviewWidget,
    QuizWidget,
    coverage,
    draw,
    get_question,
    grade_answers,
    load_bank,
    mock_interview,
    questions,
    quiz,
    render,
    show_question,
    shuffle_choices,
    topics,
)
from bigtrain_lab.quiz.bank import BANK_PATH, LANGS
from tests.conftest import notebook_anchors

METRICS_ANCHORS = {
    "accuracy-and-imbalance", "confusion-matrix", "precision-recall-f1", "roc-and-pr-curves",
    "choosing-a-threshold", "calibration", "perplexity", "regression-errors", "cross-validation", "common-mistakes",
    "accuracy-on-probabilities",
}
# Every metrics / model-evaluation question of the seed banks (003's duplicates in its 面试题库 and
# 满分答案解析 lists carry the same numbers): 000 #19 模型评估, 003 #1 如何评估大模型的性能,
# 003 #21 模型评估方法, 003 #19 优化目标 (maximising accuracy / F1 as a training objective).
SEED_METRICS_QUESTIONS = {"seed:000#19", "seed:003#1", "seed:003#21", "seed:003#19"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def raw_entries() -> list[dict]:
    return yaml.safe_load(BANK_PATH.read_text(encoding="utf-8"))["questions"]


def metrics() -> list:
    return questions("metrics")


def by_id(qid: str):
    return get_question(qid)


def correct_text(qid: str, lang: str = "en") -> str:
    q = by_id(qid)
    assert not q.multiple
    return q.choices[lang][q.correct[0]]


# ---- the real bank ------------------------------------------------------------------------------------

def test_bank_loads_with_enough_metrics_questions():
    bank = load_bank()
    assert "metrics" in topics()
    assert len(metrics()) >= 16
    assert len({q.id for q in bank}) == len(bank)
    assert len(raw_entries()) == len(bank), "the loader dropped entries"


@pytest.mark.parametrize("entry", raw_entries(), ids=lambda e: str(e.get("id")))
def test_every_raw_entry_has_the_schema(entry):
    # Checked on the raw YAML, independently of the loader's own validation.
    for field in ("id", "topic", "question", "answer", "pitfalls", "lesson", "source"):
        assert entry.get(field), f"{entry.get('id')}: {field} missing"
    assert entry["id"].split(".", 1)[0] == entry["topic"]
    for field in ("question", "answer"):
        assert set(entry[field]) == set(LANGS)
        for lang in LANGS:
            assert isinstance(entry[field][lang], str) and entry[field][lang].strip()
    assert set(entry["pitfalls"]) == set(LANGS)
    assert len(entry["pitfalls"]["en"]) == len(entry["pitfalls"]["zh"]) >= 1
    assert all(p.strip() for lang in LANGS for p in entry["pitfalls"][lang])
    if "choices" in entry:
        en, zh = entry["choices"]["en"], entry["choices"]["zh"]
        assert 3 <= len(en) == len(zh) <= 5
        correct = entry["correct"] if isinstance(entry["correct"], list) else [entry["correct"]]
        assert correct and all(0 <= i < len(en) for i in correct)


@pytest.mark.parametrize("q", load_bank(), ids=lambda q: q.id)
def test_languages_are_what_they_claim(q):
    texts = {lang: [q.question[lang], q.answer[lang], *q.pitfalls[lang], *(q.choices[lang] if q.choices else ())]
             for lang in LANGS}
    assert not any(CJK.search(t) for t in texts["en"]), f"{q.id}: Chinese text in the English fields"
    zh_prose = [q.question["zh"], q.answer["zh"], *q.pitfalls["zh"]]
    assert all(CJK.search(t) for t in zh_prose), f"{q.id}: a zh field has no Chinese text"


def _numbers(text: str) -> list[str]:
    text = re.sub(r"(?<=\d)[ ,](?=\d{3}\b)", "", text)  # 50 000 / 50,000 -> 50000
    return re.findall(r"\d+(?:\.\d+)?", text)


@pytest.mark.parametrize("q", [q for q in load_bank() if q.is_quiz], ids=lambda q: q.id)
def test_choices_are_in_the_same_order_in_both_languages(q):
    # A cheap check of the order: choice i mentions the same numbers in both languages.
    for en, zh in zip(q.choices["en"], q.choices["zh"], strict=True):
        assert sorted(_numbers(en)) == sorted(_numbers(zh)), f"{q.id}: {en!r} vs {zh!r}"


def test_every_bank_metrics_question_is_covered():
    sources = {s for q in load_bank() for s in q.source}
    missing = SEED_METRICS_QUESTIONS - sources
    assert not missing, f"seed questions without an entry: {sorted(missing)}"
    for q in load_bank():
        for s in q.source:
            assert re.fullmatch(r"kit|seed:(000|003)#(task)?\d+", s), f"{q.id}: bad source {s!r}"


def test_the_seed_questions_without_an_entry_are_the_listed_ones():
    # coverage.NOT_YET_COVERED is the data 00_start_here prints: it must say exactly which questions lack an entry.
    covered = coverage.covered_questions(s for q in load_bank() for s in q.source)
    uncovered = set(coverage.all_questions()) - covered
    assert len(coverage.all_questions()) == 30 + 22
    assert uncovered == set(coverage.NOT_YET_COVERED), (
        f"covered now, delete from NOT_YET_COVERED: {sorted(set(coverage.NOT_YET_COVERED) - uncovered)}; "
        f"without an entry and not listed: {sorted(uncovered - set(coverage.NOT_YET_COVERED))}")
    fusion = {q.topic for q in load_bank() if "seed:003#9" in q.source}
    assert fusion == {"ensemble"}, f"003 #9 asks about model fusion (the lightweight backbone is task 9): {fusion}"


def test_programming_tasks_are_cited_as_tasks():
    by_source: dict[str, set[str]] = {}
    for q in load_bank():
        for s in q.source:
            by_source.setdefault(s, set()).add(q.id)
    assert "compress.pruning_program" in by_source.get("seed:003#task4", set())
    assert {"compress.lightweight_backbone", "lightweight.backbone_model"} <= by_source.get("seed:003#task9", set())
    assert "explain.implement_lime_or_shap" in by_source.get("seed:003#task7", set())


def test_the_coverage_sentence_is_made_from_the_data():
    sentence = coverage.coverage_sentence(s for q in load_bank() for s in q.source)
    n_missing = len(coverage.NOT_YET_COVERED)
    assert sentence.startswith(f"{52 - n_missing} of 52 questions")
    assert all(ref.removeprefix("seed:").replace("#", " #") in sentence for ref in coverage.NOT_YET_COVERED)
    assert coverage.coverage_sentence(coverage.all_questions()).endswith("52 of 52 questions of the interview banks this kit was built from have an entry in the bank.")


def test_bank_pitfalls_are_refuted_in_the_bank():
    # The wrong answers of the seeds that the README names must appear among the pitfalls.
    pitfalls = " ".join(p for q in metrics() for p in q.pitfalls["en"])
    assert "backwards" in pitfalls  # precision / recall swapped
    assert "roc_auc_score(y_true, y_pred)" in pitfalls  # AUC from hard labels
    assert "squared=False" in pitfalls  # removed scikit-learn argument
    assert "harmonic mean" in pitfalls


def test_metrics_lessons_point_to_existing_sections():
    used = set()
    for q in metrics():
        assert q.lesson_notebook == "notebooks/01_metrics.ipynb", q.id
        assert q.lesson_anchor in METRICS_ANCHORS, f"{q.id}: unknown section {q.lesson_anchor!r}"
        used.add(q.lesson_anchor)
    assert used == METRICS_ANCHORS, f"lesson sections without a question: {sorted(METRICS_ANCHORS - used)}"


def test_lesson_anchors_exist_in_the_lesson_notebook(root):
    for notebook in sorted({q.lesson_notebook for q in load_bank()}):
        path = root / notebook
        if not path.exists():
            pytest.skip(f"{notebook} is not written yet")
        anchors = notebook_anchors(path)
        for q in load_bank():
            if q.lesson_notebook == notebook:
                assert q.lesson_anchor in anchors, f"{q.id}: no section #{q.lesson_anchor} in {notebook}"


# ---- the reviewed answers are right: recompute the worked examples ---------------------------------

def test_precision_recall_example():
    y_true = np.r_[np.ones(40), np.zeros(10), np.ones(40), np.zeros(110)]
    y_pred = np.r_[np.ones(50), np.zeros(150)]
    p, r = precision_score(y_true, y_pred), recall_score(y_true, y_pred)
    assert correct_text("metrics.precision_vs_recall") == f"precision {p:.2f}, recall {r:.2f}"


def test_f1_example():
    p, r = 0.9, 0.1
    assert correct_text("metrics.f1_and_f_beta") == f"{2 * p * r / (p + r):.2f}"


def test_auc_from_labels_is_balanced_accuracy():
    y_true = np.r_[np.ones(10), np.zeros(10)]
    labels = np.r_[np.ones(6), np.zeros(4), np.ones(2), np.zeros(8)]  # TPR 0.6, FPR 0.2
    assert f"{roc_auc_score(y_true, labels):.2f}" in correct_text("metrics.auc_needs_scores")


def test_confusion_matrix_example():
    y_true = np.r_[np.zeros(60), np.ones(40)]
    y_pred = np.r_[np.zeros(50), np.ones(10), np.zeros(5), np.ones(35)]
    assert confusion_matrix(y_true, y_pred).tolist() == [[50, 10], [5, 35]]
    assert f"{recall_score(y_true, y_pred):.3f}" in correct_text("metrics.confusion_matrix")


def test_imbalanced_accuracy_example():
    y_true = np.r_[np.ones(1000), np.zeros(99_000)]
    y_pred = np.zeros_like(y_true)
    acc, rec = (y_true == y_pred).mean(), recall_score(y_true, y_pred, zero_division=0)
    assert correct_text("metrics.accuracy_on_imbalanced_data") == f"{acc:.0%} accuracy, {rec:.0%} recall"


def test_micro_f1_is_accuracy_in_single_label_multiclass():
    rng = np.random.default_rng(0)
    y, y_hat = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    assert f1_score(y, y_hat, average="micro") == pytest.approx((y == y_hat).mean())
    assert f1_score(y, y_hat, average="macro") != pytest.approx((y == y_hat).mean())
    assert correct_text("metrics.macro_micro_weighted") == "Micro-F1"


def test_regression_example():
    errors = np.array([1, 1, 1, 1, 16.0])
    mae, rmse = mean_absolute_error(errors, 0 * errors), root_mean_squared_error(errors, 0 * errors)
    assert correct_text("metrics.regression_errors") == f"MAE {mae:.1f}, RMSE ≈ {rmse:.1f}"


def test_log_loss_and_brier_example():
    ll = log_loss([1, 0], [0.01, 0.5]) * 2 - math.log(2)  # the first example's term alone
    brier = brier_score_loss([1], [0.01])
    assert correct_text("metrics.log_loss_and_brier") == f"{ll:.2f} and {brier:.2f}"


def test_threshold_example_minimises_expected_cost():
    p = np.linspace(0.001, 0.999, 999)  # calibrated: P(y=1 | p) = p
    cost_fp, cost_fn = 1.0, 9.0
    thresholds = np.linspace(0, 1, 1001)
    cost = [np.sum(np.where(p >= t, (1 - p) * cost_fp, p * cost_fn)) for t in thresholds]
    best = thresholds[int(np.argmin(cost))]
    assert best == pytest.approx(0.1, abs=0.002)
    assert correct_text("metrics.threshold_selection").split(",")[0] == f"{best:.1f}" == "0.1"


def test_confidence_interval_example():
    half_width = 1.96 * math.sqrt(0.9 * 0.1 / 1000) * 100
    assert f"±{half_width:.1f} percentage points" == correct_text("metrics.confidence_intervals")


# ---- selecting and drawing ----------------------------------------------------------------------

def test_questions_filter_and_unknown_topic():
    assert all(q.topic == "metrics" for q in questions("metrics"))
    assert len(questions()) == len(load_bank())
    with pytest.raises(ValueError, match="unknown topic 'nope'.*available topics: .*metrics"):
        questions("nope")


def test_draw_is_seeded_and_capped():
    a = [q.id for q in draw("metrics", 5, seed=3)]
    assert a == [q.id for q in draw("metrics", 5, seed=3)]
    assert len(set(a)) == 5
    assert a != [q.id for q in draw("metrics", 5, seed=4)]
    everything = draw("metrics", None, seed=0)
    assert sorted(q.id for q in everything) == sorted(q.id for q in metrics())
    assert sorted(q.id for q in draw(None, None, seed=0, choices_only=True)) == sorted(
        q.id for q in load_bank() if q.is_quiz)
    assert len(draw("metrics", 10_000, seed=0)) == len(everything)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be"):
            draw("metrics", bad)


def test_load_bank_returns_fresh_lists_from_the_cache():
    first = load_bank()
    first.clear()
    assert load_bank(), "mutating the returned list must not empty the cache"
    assert load_bank()[0] is load_bank()[0]


def test_get_question_suggests_close_ids():
    with pytest.raises(KeyError, match="metrics.perplexity"):
        get_question("metrics.perplexty")


# ---- grading ------------------------------------------------------------------------------------

# The widget and grading tests pin where the right choices sit (the bank's own order may change; the
# learner sees a shuffled order anyway, tested in test_quiz_drill.py).
ARRANGED = {"metrics.precision_vs_recall": (0,), "metrics.f1_and_f_beta": (1,), "metrics.perplexity": (0, 2, 4)}


def arranged(qid: str):
    """The bank entry with its choices reordered so that the right ones sit at ``ARRANGED[qid]``."""
    q = by_id(qid)
    n, positions = len(q.choices["en"]), ARRANGED[qid]
    assert len(positions) == len(q.correct) and max(positions) < n, f"{qid} changed shape: {q.correct}, {n}"
    wrong = iter(k for k in range(n) if k not in q.correct)
    right = dict(zip(positions, q.correct, strict=True))
    order = [right[p] if p in right else next(wrong) for p in range(n)]
    return shuffle_choices(q, _Fixed(order))


class _Fixed:
    """A stand-in for random.Random whose ``sample`` returns a given order."""

    def __init__(self, order: list[int]) -> None:
        self.order = order

    def sample(self, population, k):
        return list(self.order)


def single():
    return arranged("metrics.precision_vs_recall")  # correct: 0


def multi():
    return arranged("metrics.perplexity")  # correct: [0, 2, 4]


def test_grade_correct_wrong_skipped():
    s, m = single(), multi()
    score = grade_answers([s, s, s, s, m], [[0], [1], None, [], [4, 0, 2]])
    assert [r.status for r in score.results] == ["correct", "wrong", "skipped", "skipped", "correct"]
    assert (score.n_correct, score.n_wrong, score.n_skipped, score.n_answered) == (2, 1, 2, 3)
    assert score.fraction == pytest.approx(2 / 5)
    assert score.results[4].chosen == (0, 2, 4)


def test_grade_multi_answer_needs_the_exact_set():
    m = multi()
    statuses = [r.status for r in grade_answers([m] * 4, [[0, 2], [0, 2, 4, 1], [0, 2, 4], [0, 0, 2, 4]]).results]
    assert statuses == ["wrong", "wrong", "correct", "correct"]


def test_grade_single_answer_with_two_choices_is_wrong_and_int_is_accepted():
    s = single()
    assert [r.status for r in grade_answers([s, s], [[0, 1], 0]).results] == ["wrong", "correct"]


def test_grade_late_answers_count_as_not_answered():
    s = single()
    score = grade_answers([s, s, s, s], [[0], [0], [1], None], answered_at=[10.0, 60.0, 61.0, None],
                          deadline=60.0)
    assert [r.status for r in score.results] == ["correct", "correct", "late", "skipped"]
    assert (score.n_correct, score.n_late, score.n_answered) == (2, 1, 2)
    assert grade_answers([s], [[0]], answered_at=[61.0], deadline=60.0).n_correct == 0


def test_grade_rejects_bad_input():
    s = single()
    with pytest.raises(ValueError, match="2 answers for 1 questions"):
        grade_answers([s], [[0], [1]])
    with pytest.raises(ValueError, match="out of range"):
        grade_answers([s], [[7]])
    with pytest.raises(ValueError, match="out of range"):
        grade_answers([s], [[True]])
    with pytest.raises(ValueError, match="list of choice indices"):
        grade_answers([s], [object()])


# ---- rendering (pure) -----------------------------------------------------------------------------

def test_format_countdown():
    assert render.format_countdown(600) == "10:00"
    assert render.format_countdown(59.2) == "1:00"
    assert render.format_countdown(0.5) == "0:01"
    assert render.format_countdown(-3) == "0:00"
    assert render.format_countdown(3725) == "1:02:05"


def test_markup_renders_code_lists_and_escapes():
    out = render.markup("Use `a<b` and **this**:\n- one\n- two\nend")
    assert "<code>a&lt;b</code>" in out and "<b>this</b>" in out
    assert out.count("<li>") == 2 and "<ul" in out and "end" in out


def test_score_line_in_both_languages():
    s = single()
    score = grade_answers([s, s, s], [[0], None, [0]], answered_at=[1, None, 99], deadline=50)
    assert render.score_line(score, "en") == "Score: 1 / 3 correct · 1 answered · 1 not answered · 1 late"
    assert render.score_line(score, "zh") == "得分：1 / 3 题正确 · 已答 1 题 · 未答 1 题 · 超时 1 题"


def test_feedback_shows_the_answer_pitfalls_and_lesson():
    q = single()
    for lang in LANGS:
        out = render.feedback_html(q, (1,), "wrong", lang)
        assert 'data-status="wrong"' in out.replace("'", '"')
        assert render.ui(lang, "wrong") in out
        assert q.lesson in out
        assert render._inline(q.pitfalls[lang][0]) in out
        assert render.markup(q.answer[lang]) in out


def test_show_question_renders_a_card():
    card = show_question("metrics.roc_auc_vs_pr_auc", lang="zh").data
    q = by_id("metrics.roc_auc_vs_pr_auc")
    right = ", ".join(render.choice_letter(k) for k in q.correct)
    assert q.question["zh"] in card and "<details>" in card and f"</b>: {right}</div>" in card
    assert "<details open>" in show_question("metrics.roc_auc_vs_pr_auc", reveal=True).data
    with pytest.raises(KeyError):
        show_question("metrics.no_such_question")
    with pytest.raises(ValueError, match="lang"):
        show_question("metrics.roc_auc_vs_pr_auc", lang="fr")


@pytest.mark.parametrize("bad", ["fr", "EN", "", None])
def test_lang_is_validated(bad):
    with pytest.raises(ValueError, match="lang must be one of 'en', 'zh'"):
        quiz("metrics", 2, lang=bad)
    with pytest.raises(ValueError, match="lang must be one of"):
        mock_interview(2, 1, "metrics", lang=bad)


# ---- the quiz widget, driven through its own API ------------------------------------------------

def make_quiz(*qids: str, lang: str = "en") -> QuizWidget:
    return QuizWidget([arranged(q) for q in qids], lang)


def test_quiz_returns_a_widget_with_the_drawn_questions():
    w = quiz(topic="metrics", n=3, seed=0)
    assert isinstance(w, QuizWidget)
    assert w.questions == draw("metrics", 3, seed=0)
    assert len(w.choice_buttons) == len(w.question.choices["en"])
    assert "Question 1 of 3" in w.question_box.value
    assert w.back_button.disabled and not w.next_button.disabled
    assert "Score: 0 / 3 correct" in w.score_html.value


def test_quiz_right_answer_gets_immediate_feedback():
    w = make_quiz("metrics.precision_vs_recall", "metrics.f1_and_f_beta")
    w.choice_buttons[0].value = True
    w.submit_button.click()
    assert w.answers[0] == (0,)
    assert "data-status='correct'" in w.feedback.value
    assert by_id("metrics.precision_vs_recall").pitfalls["en"][0][:40] in w.feedback.value
    assert "notebooks/01_metrics.ipynb#precision-recall-f1" in w.feedback.value
    assert all(b.disabled for b in w.choice_buttons)
    assert w.choice_buttons[0].button_style == "success"
    assert "Score: 1 / 2 correct · 1 answered" in w.score_html.value
    assert w.submit_button.disabled


def test_quiz_wrong_answer_marks_both_choices():
    w = make_quiz("metrics.f1_and_f_beta")  # correct: 1
    w.choice_buttons[0].value = True
    w.submit_button.click()
    assert "data-status='wrong'" in w.feedback.value
    assert [b.button_style for b in w.choice_buttons] == ["danger", "success"] + [""] * (len(w.choice_buttons) - 2)
    assert "Done" in w.score_html.value and "0 / 1 correct" in w.score_html.value
    w.choice_buttons[1].value = True  # locked after submitting
    assert not w.choice_buttons[1].value and w.answers[0] == (0,)


def test_quiz_submit_without_choice_asks_for_one():
    w = make_quiz("metrics.f1_and_f_beta")
    w.submit_button.click()
    assert w.answers == [None]
    assert render.ui("en", "pick_first") in w.message.value
    assert w.feedback.value == ""


def test_quiz_single_answer_toggles_are_exclusive():
    w = make_quiz("metrics.f1_and_f_beta")
    w.choice_buttons[0].value = True
    w.choice_buttons[2].value = True
    assert [b.value for b in w.choice_buttons] == [k == 2 for k in range(len(w.choice_buttons))]
    assert w.selection[0] == {2}


def test_quiz_multi_answer_needs_every_right_choice():
    w = make_quiz("metrics.perplexity", "metrics.perplexity")
    w.select(0, 2)
    w.submit_button.click()
    assert "data-status='wrong'" in w.feedback.value
    w.next_button.click()
    for k in (0, 2, 4):
        w.choice_buttons[k].value = True
    assert w.selection[1] == {0, 2, 4}
    w.submit_button.click()
    assert "data-status='correct'" in w.feedback.value
    assert "choose all that apply" in w.question_box.value
    assert (w.score.n_correct, w.score.n_wrong) == (1, 1)


def test_quiz_navigation_keeps_answers():
    w = make_quiz("metrics.f1_and_f_beta", "metrics.precision_vs_recall", lang="zh")
    w.select(1)
    w.submit_button.click()
    assert w.next_button.button_style == "primary"
    w.next_button.click()
    assert w.index == 1 and w.feedback.value == "" and w.next_button.disabled
    assert "第 2 题，共 2 题" in w.question_box.value
    w.back_button.click()
    assert w.index == 0 and "回答正确" in w.feedback.value
    assert w.choice_buttons[1].value and w.choice_buttons[1].disabled


def test_quiz_shows_questions_without_choices_as_flashcards():
    q = by_id("metrics.perplexity")
    open_question = type(q)(**{**q.__dict__, "choices": None, "correct": ()})
    w = QuizWidget([open_question])
    assert w.choice_buttons == [] and w.reveal_button in w.choice_box.children
    with pytest.raises(ValueError, match="at least one"):
        QuizWidget([])


# ---- the mock interview ---------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_mock(n: int = 3, minutes: float = 1, lang: str = "en") -> tuple[MockInterviewWidget, FakeClock]:
    clock = FakeClock()
    return mock_interview(n=n, minutes=minutes, topic="metrics", lang=lang, seed=7, clock=clock), clock


def answer_right(w: MockInterviewWidget) -> None:
    w.select(*w.question.correct)
    w.submit_button.click()


def test_mock_interview_waits_for_start():
    w, clock = make_mock()
    assert w.start_button in w.children and w.question_box not in w.children
    assert "3 questions, 1 min" in w.title.value
    w.submit_button.click()
    assert w.answers == [None] * 3 and not w.ticker.playing
    w.start_button.click()
    assert w.started and w.ticker.playing and w.question_box in w.children
    assert "1:00" in w.timer.value and w.deadline == clock.now + 60


def test_mock_interview_scores_at_the_end_and_counts_late_answers():
    w, clock = make_mock(n=3)
    w.start_button.click()
    clock.now += 20
    answer_right(w)
    assert w.feedback.value == "" and w.index == 1, "no feedback before the end"
    assert "Answer recorded" in w.message.value
    clock.now += 10
    w.select(*[k for k in range(len(w.question.choices["en"])) if k not in w.question.correct][:1])
    w.submit_button.click()
    clock.now += 31  # past the deadline
    answer_right(w)
    assert w.finished and not w.ticker.playing
    assert [r.status for r in w.score.results] == ["correct", "wrong", "late"]
    assert "Score: 1 / 3 correct · 2 answered · 1 late" in w.score_html.value
    assert w.feedback.value.count("bt-quiz-feedback") == 3
    assert "Too late" in w.feedback.value
    assert "Time is up" in w.timer.value


def test_mock_interview_late_answer_ends_it_even_without_a_tick():
    w, clock = make_mock(n=3)
    w.start_button.click()
    clock.now += 61  # the browser's ticker did not run (e.g. the page was asleep)
    answer_right(w)
    assert w.finished
    assert [r.status for r in w.score.results] == ["late", "skipped", "skipped"]
    assert w.score.n_correct == 0 and w.submit_button.disabled


def test_mock_interview_ends_on_a_tick_after_the_deadline():
    w, clock = make_mock(n=2, minutes=0.5)
    w.start_button.click()
    clock.now += 10
    w.ticker.value += 1  # what the browser does every second
    assert "0:20" in w.timer.value and not w.finished
    clock.now += 25
    w.ticker.value += 1
    assert w.finished
    assert [r.status for r in w.score.results] == ["skipped", "skipped"]
    w.choice_buttons[0].value = True
    w.submit_button.click()
    assert w.answers == [None, None], "no answers after the end"


def test_mock_interview_finish_button_and_all_answered():
    w, clock = make_mock(n=2, lang="zh")
    w.start_button.click()
    answer_right(w)
    w.finish_button.click()
    assert w.finished and w.score.n_correct == 1 and w.score.n_skipped == 1
    assert "已完成" in w.timer.value and "得分：1 / 2 题正确" in w.score_html.value

    w2, _ = make_mock(n=2)
    w2.start_button.click()
    answer_right(w2)
    answer_right(w2)
    assert w2.finished and w2.score.n_correct == 2


def test_mock_interview_rejects_bad_minutes():
    for bad in (0, -5, "10", True):
        with pytest.raises(ValueError, match="minutes"):
            mock_interview(2, bad, "metrics")


# ---- a malformed bank: clear errors naming the entry and the field --------------------------------

GOOD_ENTRY = {
    "id": "metrics.first",
    "topic": "metrics",
    "source": "kit",
    "lesson": "notebooks/01_metrics.ipynb#intro",
    "question": {"en": "Q?", "zh": "问题？"},
    "answer": {"en": "A.", "zh": "答案。"},
    "pitfalls": {"en": ["wrong"], "zh": ["错误"]},
    "choices": {"en": ["a", "b", "c"], "zh": ["甲", "乙", "丙"]},
    "correct": 1,
}


def write_bank(tmp_path, *entries: dict, name: str = "bank.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"questions": list(entries)}, allow_unicode=True), encoding="utf-8")
    return path


def broken(**changes) -> dict:
    entry = json.loads(json.dumps(GOOD_ENTRY))
    for key, value in changes.items():
        target, field = entry, key
        if "__" in key:
            outer, field = key.split("__")
            target = entry[outer]
        if value is ...:
            del target[field]
        else:
            target[field] = value
    return entry


def test_a_valid_toy_bank_loads(tmp_path):
    (q,) = load_bank(write_bank(tmp_path, GOOD_ENTRY, {**GOOD_ENTRY, "id": "metrics.second", "correct": [0, 2]}))[:1]
    assert q.id == "metrics.first" and q.correct == (1,) and not q.multiple and q.source == ("kit",)
    second = load_bank(tmp_path / "bank.yaml")[1]
    assert second.multiple and second.correct == (0, 2)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"answer": ...}, "entry 'metrics.first': field 'answer': missing"),
    ({"question__zh": ...}, "entry 'metrics.first': field 'question.zh': missing or empty"),
    ({"answer__en": "  "}, "entry 'metrics.first': field 'answer.en': missing or empty"),
    ({"pitfalls__zh": []}, "entry 'metrics.first': field 'pitfalls.zh'"),
    ({"pitfalls__zh": ["一", "二"]}, "entry 'metrics.first': field 'pitfalls': the languages have different"),
    ({"correct": 3}, "entry 'metrics.first': field 'correct': index 3 out of range for 3 choices"),
    ({"correct": [0, 5]}, "entry 'metrics.first': field 'correct': index 5 out of range"),
    ({"correct": True}, "entry 'metrics.first': field 'correct': must be a 0-based index"),
    ({"correct": ...}, "entry 'metrics.first': field 'correct': missing"),
    ({"choices__zh": ["甲", "乙"]}, "entry 'metrics.first': field 'choices.zh': needs 3 to 5 items"),
    ({"choices__en": ["a", "b", "c", "d", "e", "f"]}, "field 'choices.en': needs 3 to 5 items"),
    ({"topic": "other"}, "entry 'metrics.first': field 'id': prefix 'metrics' differs from topic 'other'"),
    ({"id": "NoDot"}, "field 'id': must look like 'topic.slug'"),
    ({"lesson": "01_metrics#x"}, "entry 'metrics.first': field 'lesson': must look like"),
    ({"source": "seed:3#1"}, "entry 'metrics.first': field 'source': each source must be"),
    ({"source": "seed:003#23"}, "field 'source': each source must be 'kit', 'seed:NNN#K' (question K of seed NNN) "
                                "or 'seed:NNN#taskK' (its programming task K): 'seed:003#23': seed 003 has questions 1..22"),
    ({"source": ["kit", "seed:000#task2"]}, "'seed:000#task2': no seed document 000 with tasks"),
    ({"source": "seed:003#task0"}, "'seed:003#task0': a source is 'kit'"),
    ({"answer__fr": "Réponse"}, "entry 'metrics.first': field 'answer': unknown language"),
    ({"hint": "typo field"}, "entry 'metrics.first': field 'hint': unknown field"),
    ({"id": "toy.first", "topic": "toy"}, "field 'topic': 'toy' is not a topic of the curriculum manifest"),
    ({"lesson": "notebooks/02_optimizers_and_schedules.ipynb#x"},
     "field 'lesson': 'notebooks/02_optimizers_and_schedules.ipynb#x' is not in the lesson of topic 'metrics'"),
])
def test_malformed_entries_are_reported_with_id_and_field(tmp_path, changes, expected):
    path = write_bank(tmp_path, broken(**changes))
    with pytest.raises(BankError) as info:
        load_bank(path)
    assert expected in str(info.value)


def test_duplicate_ids_and_every_problem_are_reported(tmp_path):
    path = write_bank(tmp_path, GOOD_ENTRY, GOOD_ENTRY, broken(id="metrics.third", answer=...))
    with pytest.raises(BankError) as info:
        load_bank(path)
    message = str(info.value)
    assert "entry 'metrics.first': field 'id': duplicate id" in message
    assert "entry 'metrics.third': field 'answer': missing" in message
    assert message.startswith("2 problem(s)")


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(BankError, match="cannot read"):
        load_bank(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(BankError, match="not valid YAML"):
        load_bank(bad)
    flat = tmp_path / "flat.yaml"
    flat.write_text(textwrap.dedent("""\
        - id: toy.first
          topic: toy
    """), encoding="utf-8")
    with pytest.raises(BankError, match="'questions' list"):
        load_bank(flat)


def test_an_edited_bank_file_is_reloaded(tmp_path):
    path = write_bank(tmp_path, GOOD_ENTRY)
    assert len(load_bank(path)) == 1
    write_bank(tmp_path, GOOD_ENTRY, {**GOOD_ENTRY, "id": "metrics.second"})
    assert len(load_bank(path)) == 2
