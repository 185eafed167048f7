"""``check(exercise_id, candidate)``: run a learner's function on many cases and compare with a reference."""

from __future__ import annotations

import functools
import secrets
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from bigtrain_lab.grading.registry import Case, Exercise, InputModified, get_exercise
from bigtrain_lab.grading.result import CaseFailure, CheckResult, format_feedback
from bigtrain_lab.grading.sandbox import (
    CallOutcome,
    call_with_limit,
    clone_inputs,
    compare_safely,
    describe,
    describe_safely,
    same_value,
)


def _describe_inputs(case: Case) -> str:
    parts = [describe(a, 200) for a in case.args]
    parts += [f"{k}={describe(v, 200)}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


def _driven(exercise: Exercise, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself, or the exercise's runner driving it (e.g. over many optimizer steps)."""
    return fn if exercise.run is None else functools.partial(exercise.run, fn)


def _expected(exercise: Exercise, case: Case) -> Any:
    args, kwargs = clone_inputs((case.args, case.kwargs))
    return _driven(exercise, exercise.reference)(*args, **kwargs)


#: call(fn, args, kwargs, time_limit) -> CallOutcome: in-process (``call_with_limit``) or in a kernel.
Caller = Callable[[Callable[..., Any], tuple, dict, float], CallOutcome]


def _grade_case(exercise: Exercise, case: Case, candidate: Callable[..., Any],
                time_limit: float, call: Caller = call_with_limit) -> tuple[CaseFailure | None, bool]:
    """Run one case. Returns (failure or None, whether to stop checking further cases)."""
    args, kwargs = clone_inputs((case.args, case.kwargs))
    outcome = call(_driven(exercise, candidate), args, kwargs, time_limit)
    inputs = _describe_inputs(case)
    expected_text = f"raises {case.raises.__name__}" if case.raises else ""

    def fail(got: str, reason: str, stop: bool = False) -> tuple[CaseFailure, bool]:
        exp = expected_text or describe(_expected(exercise, case))
        return CaseFailure(case.label, inputs, exp, got, reason), stop

    if outcome.timed_out:
        return fail("(no answer)", f"took longer than the time limit of {time_limit:g} s "
                    "(an endless loop, or much slower than needed?)", stop=True)
    if outcome.error is not None:
        err = outcome.error
        got = f"{type(err).__name__}: {err}"
        where = f" (at {outcome.error_location})" if outcome.error_location else ""
        if isinstance(err, NotImplementedError):
            return fail(got, "not implemented yet: replace the `raise NotImplementedError` with your code",
                        stop=True)
        if isinstance(err, InputModified):
            return fail(got, f"your function modified its input arguments in place ({err}); "
                        "work on a copy (e.g. x.clone())")
        if case.raises is not None and isinstance(err, case.raises):
            return None, False
        if case.raises is not None:
            return fail(got, f"should raise {case.raises.__name__}, but raised {type(err).__name__}{where}")
        return fail(got, f"your function raised {type(err).__name__}{where}")
    if not same_value((args, kwargs), (case.args, case.kwargs)):
        return fail(describe_safely(outcome.value), "your function modified its input arguments in place; "
                    "work on a copy (e.g. np.asarray(x).copy() or x.clone())")
    if case.raises is not None:
        return fail(describe_safely(outcome.value), f"should raise {case.raises.__name__} for this input, "
                    "but returned a value")
    expected = _expected(exercise, case)
    reason = compare_safely(exercise.compare, outcome.value, expected)
    if reason is not None:
        return CaseFailure(case.label, inputs, describe(expected), describe_safely(outcome.value), reason), False
    return None, False


def check(exercise_id: str, candidate: Callable[..., Any], *, seed: int | None = None,
          time_limit: float | None = None) -> CheckResult:
    """Grade ``candidate`` for the exercise ``exercise_id`` and return a ``CheckResult``.

    The candidate runs on named edge cases plus random cases drawn afresh on every call (pass ``seed``
    to repeat a run). A candidate that raises, hangs past ``time_limit`` seconds per case, returns the
    wrong type / shape / NaN, or mutates its inputs fails with a clear message; the checker never
    raises because of the candidate. As the last expression of a notebook cell the result renders as
    HTML; ``print(result)`` gives the text form.
    """
    exercise = get_exercise(exercise_id)
    seed = secrets.randbits(31) if seed is None else int(seed)
    limit = exercise.time_limit if time_limit is None else float(time_limit)
    if not callable(candidate):
        feedback = (f"NOT YET {exercise_id}: expected a function (or class) to check, got "
                    f"{type(candidate).__name__}. Pass the function itself: check({exercise_id!r}, my_function)")
        result = CheckResult(exercise_id, False, 0.0, feedback, seed=seed, hint=exercise.hint,
                             lesson=exercise.lesson)
        _remember(result)
        return result

    result = run_cases(exercise, candidate, seed, limit)
    _remember(result)
    return result


#: before_case(index, case): called before each case is run (the grader names the case for the kernel).
BeforeCase = Callable[[int, Case], None]


def run_cases(exercise: Exercise, candidate: Callable[..., Any], seed: int, limit: float,
              call: Caller = call_with_limit, before_case: BeforeCase | None = None) -> CheckResult:
    """Draw the cases with ``seed``, run ``candidate`` on each through ``call`` and compare with the
    reference (computed here). Shared by ``check`` (in-process) and ``bigtrain-lab grade`` (the candidate
    in a kernel, the verdict here). An exception from ``call`` itself (a kernel that died) stops the run
    and is reported on the case it stopped at."""
    cases = exercise.make_cases(np.random.default_rng(seed))
    first_failure: CaseFailure | None = None
    passed_labels: list[str] = []
    note = ""
    for i, case in enumerate(cases):
        if before_case is not None:
            before_case(i, case)
        with warnings.catch_warnings():  # a candidate's (or sklearn's) warnings are noise here
            warnings.simplefilter("ignore")
            try:
                failure, stop = _grade_case(exercise, case, candidate, limit, call)
            except CallerLost as lost:
                failure, stop = CaseFailure(case.label, _describe_inputs(case), "", "(no answer)", str(lost)), True
        if failure is None:
            passed_labels.append(case.label)
        elif first_failure is None:
            first_failure = failure
        if stop:
            skipped = len(cases) - i - 1
            if skipped:
                note = f"Stopped after this case; {skipped} remaining cases were not run."
            break
    n_passed = len(passed_labels)
    passed = n_passed == len(cases)
    feedback = format_feedback(exercise.id, passed, n_passed, len(cases), first_failure,
                               "" if passed else exercise.hint, note)
    return CheckResult(exercise.id, passed, n_passed / len(cases), feedback, len(cases), n_passed, seed,
                       first_failure, exercise.hint, exercise.lesson, passed_labels)


class CallerLost(Exception):
    """Raised by a ``Caller`` when it can no longer run the candidate at all (its kernel died)."""


def _remember(result: CheckResult) -> None:
    """Feed the learner's review schedule (a miss comes back soon, a pass later); never raises."""
    from bigtrain_lab.quiz.review import record_check

    record_check(result.exercise_id, result.passed)
