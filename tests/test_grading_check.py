"""check(): seeds, feedback, bad candidates handled (the answer banks run in test_grading_tolerance.py)."""

import json
import time

import numpy as np
import pytest

from bigtrain_lab.grading import CheckResult, UnknownExerciseError, check, exercise_ids, get_exercise
from bigtrain_lab.quiz.review import exercise_card, load_cards
from tests.wrong_answers import metrics as metrics_answers

# The banks of right and wrong answers run in tests/test_grading_tolerance.py (many seeds, one place).


def test_reference_itself_passes_every_exercise():
    # a generous time limit: the first case may pay for importing shap or captum on a loaded machine
    for exercise_id in exercise_ids():
        assert check(exercise_id, get_exercise(exercise_id).reference, seed=7, time_limit=60.0).passed


def test_cases_are_fresh_per_run_but_repeatable_with_a_seed():
    ex = get_exercise("metrics.roc_auc")
    a = ex.make_cases(np.random.default_rng(1))
    b = ex.make_cases(np.random.default_rng(1))
    c = ex.make_cases(np.random.default_rng(2))
    assert [x.label for x in a] == [x.label for x in b]
    assert all(np.array_equal(x.args[1], y.args[1]) for x, y in zip(a, b, strict=True))
    assert not all(len(x.args[1]) == len(y.args[1]) and np.array_equal(x.args[1], y.args[1])
                   for x, y in zip(a, c, strict=True))
    assert check("metrics.roc_auc", metrics_answers.auc_pairwise).seed is not None


def test_a_hard_coded_answer_fails():
    first = get_exercise("metrics.regression_errors").make_cases(np.random.default_rng(0))[0]
    answer = get_exercise("metrics.regression_errors").reference(*first.args)
    result = check("metrics.regression_errors", lambda y, p: answer)
    assert not result.passed and result.n_passed < result.n_cases


def test_candidate_that_raises_gets_a_clear_message():
    def broken(y_true, y_pred):
        return y_true / undefined_name  # noqa: F821

    result = check("metrics.confusion_counts", broken)
    assert not result.passed
    assert "NameError" in result.first_failure.got
    assert "your function raised NameError" in result.first_failure.reason
    assert "line" in result.first_failure.reason and "broken" in result.first_failure.reason


def test_not_implemented_stops_early_with_a_pointer():
    def todo(y_true, y_pred):
        raise NotImplementedError("Your code here")

    result = check("metrics.confusion_counts", todo)
    assert result.score == 0.0 and not result.passed
    assert "not implemented yet" in result.feedback
    assert "were not run" in result.feedback


def test_candidate_that_hangs_is_stopped_by_the_time_limit():
    def endless(y_true, y_pred):
        while True:
            pass

    start = time.perf_counter()
    result = check("metrics.regression_errors", endless, time_limit=0.3)
    assert time.perf_counter() - start < 5
    assert not result.passed and "time limit" in result.feedback


def test_candidate_that_swallows_exceptions_still_times_out():
    def sneaky(y_true, y_pred):
        while True:
            try:  # noqa: SIM105 - the point: a candidate that swallows exceptions
                time.sleep(0.01)
            except Exception:
                pass

    result = check("metrics.regression_errors", sneaky, time_limit=0.3)
    assert "time limit" in result.feedback


def test_time_limit_off_the_main_thread():
    import threading

    box = {}

    def endless(y_true, y_pred):
        time.sleep(3)

    thread = threading.Thread(target=lambda: box.setdefault("r", check("metrics.regression_errors", endless,
                                                                         time_limit=0.2)))
    thread.start()
    thread.join(10)
    assert "time limit" in box["r"].feedback


@pytest.mark.parametrize(("returned", "message"), [
    (float("nan"), "NaN"),
    ("0.5", "expected a number, got str"),
    ([0.5, 0.5], "expected a number, got list"),
    (None, "expected a number, got NoneType"),
    (True, "got a bool"),
])
def test_wrong_return_kinds_for_a_scalar(returned, message):
    result = check("metrics.roc_auc", lambda y, s: returned)
    assert not result.passed and message in result.first_failure.reason


@pytest.mark.parametrize(("returned", "message"), [
    ((1.0, 1.0), "got 2 values"),
    (np.zeros((3, 1)), "array of shape (3, 1)"),
    (0.5, "expected a tuple of 3 values"),
    ((float("nan"), 0.0, 0.0), "precision is NaN"),
    (("a", 0.0, 0.0), "expected a number for precision"),
])
def test_wrong_return_kinds_for_a_tuple(returned, message):
    result = check("metrics.precision_recall_f1", lambda y, p: returned)
    assert not result.passed and message in result.first_failure.reason


def test_fractional_counts_are_rejected():
    result = check("metrics.confusion_counts", lambda y, p: (0.5, 1, 1, 1))
    assert "whole count" in result.first_failure.reason


def test_mutating_the_inputs_is_reported():
    def sorts_in_place(y_true, y_score):
        y_score.sort()
        return metrics_answers.auc_pairwise(y_true, y_score)

    result = check("metrics.roc_auc", sorts_in_place)
    assert not result.passed and "modified its input" in result.first_failure.reason


def test_missing_value_error_is_reported():
    result = check("metrics.roc_auc", metrics_answers.auc_half_on_one_class)
    assert "should raise ValueError" in result.feedback


def test_non_callable_candidate():
    result = check("metrics.roc_auc", 0.93)
    assert not result.passed and "expected a function" in result.feedback


def test_unknown_id_names_the_closest():
    with pytest.raises(UnknownExerciseError, match="metrics.roc_auc"):
        check("metrics.rocauc", metrics_answers.auc_pairwise)
    with pytest.raises(UnknownExerciseError, match="exercise_ids"):
        check("nonsense", metrics_answers.auc_pairwise)


def test_result_renders_in_notebook_and_terminal():
    ok = check("metrics.roc_auc", metrics_answers.auc_pairwise)
    bad = check("metrics.roc_auc", metrics_answers.auc_hard_labels)
    assert isinstance(ok, CheckResult) and bool(ok) and not bool(bad)
    assert 'data-passed="true"' in ok._repr_html_() and "passed" in str(ok)
    html = bad._repr_html_()
    assert 'data-passed="false"' in html and "expected" in html and "hint" in html
    lesson = get_exercise("metrics.roc_auc").lesson  # the section is a link (from exercises/ or notebooks/)
    assert f"<a href='../{lesson}' target='_blank'>" in html and lesson.startswith("notebooks/01_metrics.ipynb#")
    assert str(bad).startswith("NOT YET metrics.roc_auc")
    json.dumps(bad.to_dict())


def test_checks_feed_the_review_schedule():
    """A miss puts the exercise in box 1 (due again today), a pass moves it up (what `quiz()` reminds of)."""
    check("metrics.roc_auc", metrics_answers.auc_pairwise)
    check("metrics.regression_errors", metrics_answers.reg_swapped)
    cards = load_cards()
    assert cards[exercise_card("metrics.regression_errors")].box == 1
    assert cards[exercise_card("metrics.roc_auc")].box == 2
