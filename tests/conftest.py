"""Shared test set-up: fast mode for notebooks, an isolated progress home, and the repo root."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Set before any kernel starts (nbval kernels and the grader's inherit the environment).
os.environ["BIGTRAIN_LAB_FAST"] = "1"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


@pytest.fixture(autouse=True)
def isolated_progress_home(tmp_path, monkeypatch):
    """Never touch the learner's real ~/.bigtrain-lab from tests."""
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(tmp_path / "bigtrain-home"))


@pytest.fixture
def root() -> Path:
    return ROOT
