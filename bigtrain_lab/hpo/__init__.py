"""Hyperparameter search (lesson 11): search spaces and budgets (``budgets``: log-uniform sampling, the rungs of
successive halving / Hyperband) and the strategies compared at a fixed budget (``search``)."""

from bigtrain_lab.hpo.budgets import *  # noqa: F403
from bigtrain_lab.hpo.budgets import __all__ as _budgets
from bigtrain_lab.hpo.search import *  # noqa: F403
from bigtrain_lab.hpo.search import __all__ as _search

__all__ = [*_budgets, *_search]
