"""Right answers are never rejected, wrong ones always are: the tolerances hold over many seeds.

Every right answer in ``tests/wrong_answers`` runs on the cases of ``SWEEP_SEEDS`` seeds per exercise with
zero rejections; every wrong answer is rejected by ``check`` on each of ``WRONG_SEEDS``. The sweep draws
each seed's cases and computes their expected values once, then runs every right answer on them through
the exercise's runner and comparator (what ``check`` does, minus the time limit, which a loaded machine
must not turn into a failure here); one seed per right answer goes through ``check`` itself.

The sweep is parametrized per exercise and block of seeds, so that pytest-xdist (``--dist load``) can
spread it over workers. ``make sweep`` runs it over 200 seeds per exercise (``BIGTRAIN_LAB_SWEEP_SEEDS``);
``make test`` over 5, as a guard that stays within the suite's time.
"""

import functools
import importlib
import os
import pkgutil
import warnings

import numpy as np
import pytest

import tests.wrong_answers as wrong_answer_banks
from bigtrain_lab.grading import check, exercise_ids, get_exercise
from bigtrain_lab.grading.sandbox import clone_inputs, compare_safely

_BANKS = [importlib.import_module(f"{wrong_answer_banks.__name__}.{m.name}")
          for m in pkgutil.iter_modules(wrong_answer_banks.__path__)]
WRONG = {k: v for bank in _BANKS for k, v in bank.WRONG.items()}
RIGHT = {k: v for bank in _BANKS for k, v in bank.RIGHT.items()}

#: ``make sweep`` runs 200 seeds per exercise (about 13 CPU-minutes here); ``make test`` the first 5.
SWEEP_SEEDS = int(os.environ.get("BIGTRAIN_LAB_SWEEP_SEEDS", "5"))
BLOCK = min(50, SWEEP_SEEDS)
WRONG_SEEDS = (0, 1, 2)


def _driven(exercise, fn):
    return fn if exercise.run is None else functools.partial(exercise.run, fn)


def rejections(exercise_id, candidates, seeds):
    """(seed, candidate, case, reason) for every case a candidate fails, over ``seeds``."""
    exercise = get_exercise(exercise_id)
    found = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for case in exercise.make_cases(np.random.default_rng(seed)):
                expected = None
                if case.raises is None:
                    args, kwargs = clone_inputs((case.args, case.kwargs))
                    expected = _driven(exercise, exercise.reference)(*args, **kwargs)
                for candidate in candidates:
                    args, kwargs = clone_inputs((case.args, case.kwargs))
                    try:
                        got = _driven(exercise, candidate)(*args, **kwargs)
                    except Exception as exc:  # noqa: BLE001 - a rejection to report, whatever it is
                        if not (case.raises and isinstance(exc, case.raises)):
                            found.append((seed, candidate.__name__, case.label, f"raised {exc!r}"))
                        continue
                    if case.raises is not None:
                        found.append((seed, candidate.__name__, case.label, f"did not raise {case.raises}"))
                    elif reason := compare_safely(exercise.compare, got, expected):
                        found.append((seed, candidate.__name__, case.label, reason))
    return found


def test_every_exercise_has_right_and_wrong_answers():
    for exercise_id in exercise_ids():
        assert len(WRONG.get(exercise_id, [])) >= 3, f"{exercise_id}: add plausible wrong answers"
        assert len(RIGHT.get(exercise_id, [])) >= 2, f"{exercise_id}: add two different right answers"


@pytest.mark.parametrize(("exercise_id", "first"),
                         [(i, s) for i in sorted(RIGHT) for s in range(1, SWEEP_SEEDS + 1, BLOCK)],
                         ids=lambda v: str(v))
def test_right_answers_are_never_rejected(exercise_id, first):
    found = rejections(exercise_id, RIGHT[exercise_id], range(first, first + BLOCK))
    assert not found, "\n".join(map(str, found[:10]))


@pytest.mark.parametrize(("exercise_id", "right"),
                         [(i, f) for i, fs in RIGHT.items() for f in fs], ids=lambda v: getattr(v, "__name__", v))
def test_right_answers_pass_check(exercise_id, right):
    result = check(exercise_id, right, seed=0, time_limit=60.0)
    assert result.passed, result.feedback
    assert result.score == 1.0 and result.n_passed == result.n_cases >= 10


@pytest.mark.parametrize(("exercise_id", "wrong"),
                         [(i, f) for i, fs in WRONG.items() for f in fs], ids=lambda v: getattr(v, "__name__", v))
def test_wrong_answers_are_rejected(exercise_id, wrong):
    for seed in WRONG_SEEDS:
        result = check(exercise_id, wrong, seed=seed)
        assert not result.passed, f"{wrong.__name__} passed {exercise_id} with seed {seed}"
        assert 0.0 <= result.score < 1.0
        assert result.first_failure is not None
        assert "Traceback" not in result.feedback
