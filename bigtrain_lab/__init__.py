"""bigtrain-lab: an offline, Jupyter-first teaching kit for the techniques of large-model training.

The package backs the notebooks: one module per topic (``metrics``, ``data``, ...), ``grading`` for the
exercises, ``widgets`` for the interactive views and ``quiz`` for the interview question bank.
"""

from bigtrain_lab.environment import environment_report, get_device
from bigtrain_lab.reproducibility import fast_mode, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "environment_report", "fast_mode", "get_device", "seed_everything"]
