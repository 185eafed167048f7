"""Ensembles and model fusion (lesson 11): bagging, boosting, stacking and voting (``classic``), fusing neural
networks by their outputs or their weights (``networks``), and the small functions every fusion rests on
(``fusion``: soft voting, out-of-fold predictions, weight averaging)."""

from bigtrain_lab.ensemble.classic import *  # noqa: F403
from bigtrain_lab.ensemble.classic import __all__ as _classic
from bigtrain_lab.ensemble.fusion import *  # noqa: F403
from bigtrain_lab.ensemble.fusion import __all__ as _fusion
from bigtrain_lab.ensemble.networks import *  # noqa: F403
from bigtrain_lab.ensemble.networks import __all__ as _networks

__all__ = [*_fusion, *_classic, *_networks]
