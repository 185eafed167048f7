"""Graded exercises: ``check(exercise_id, candidate)``, the registry and the notebook grader.

>>> from bigtrain_lab.grading import check, exercise_ids
>>> "metrics.roc_auc" in exercise_ids()
True
"""

from bigtrain_lab.grading.check import check
from bigtrain_lab.grading.registry import Case, Exercise, UnknownExerciseError, exercise_ids, get_exercise
from bigtrain_lab.grading.result import CheckResult

__all__ = ["Case", "CheckResult", "Exercise", "UnknownExerciseError", "check", "exercise_ids", "get_exercise"]
