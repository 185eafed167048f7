"""Regularization (lesson 10). Minimal init (Helper D): re-exports ``functional``; Helper B extends it."""

from bigtrain_lab.regularization.functional import *  # noqa: F403
from bigtrain_lab.regularization.functional import __all__ as _functional

__all__ = [*_functional]
