"""Importing this package registers every topic's exercises (one module per topic)."""

from bigtrain_lab.grading.exercises import metrics  # noqa: F401
