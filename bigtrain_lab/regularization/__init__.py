"""Regularization (lesson 10): the small regularizers written out (``functional``: inverted dropout, label-smoothed
cross-entropy, the early-stopping callback), penalties and constraints on the weights (``penalties``: L1, L2,
max-norm, what Adam's L2 really decays), one visibly overfit task with every regularizer run on it
(``experiment``) and the cached sweep behind the lesson's explorer (``sweep``)."""

from bigtrain_lab.regularization.experiment import *  # noqa: F403
from bigtrain_lab.regularization.experiment import __all__ as _experiment
from bigtrain_lab.regularization.functional import *  # noqa: F403
from bigtrain_lab.regularization.functional import __all__ as _functional
from bigtrain_lab.regularization.penalties import *  # noqa: F403
from bigtrain_lab.regularization.penalties import __all__ as _penalties
from bigtrain_lab.regularization.sweep import *  # noqa: F403
from bigtrain_lab.regularization.sweep import __all__ as _sweep

__all__ = [*_functional, *_penalties, *_experiment, *_sweep]
