"""pytest set-up for the whole repository, however pytest is invoked (``pytest notebooks/02_....ipynb`` too):
lessons run their fast budget, and a fast run never rewrites a lesson's recorded full-run figures."""

import os

# Set before any kernel starts (nbval kernels and the grader's inherit the environment).
os.environ["BIGTRAIN_LAB_FAST"] = "1"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
