"""Shared test set-up: an isolated progress home and the repo root (fast mode: the root conftest.py)."""

import json
import os
import re
from pathlib import Path

import pytest

from bigtrain_lab.quiz.errata import HEADING_RE, heading_anchors

ROOT = Path(__file__).resolve().parent.parent

# Fast mode for every kernel is set by the repository root's conftest.py.


@pytest.fixture(autouse=True)
def isolated_progress_home(tmp_path, monkeypatch):
    """Never touch the learner's real ~/.bigtrain-lab from tests."""
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(tmp_path / "bigtrain-home"))


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def machine(monkeypatch):
    """A 2-core machine whose 1-minute load average the test sets: ``machine(0.4)`` (idle, 0.3, until then)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def set_load(load: float) -> None:
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))

    set_load(0.3)
    return set_load


def notebook_anchors(path: Path) -> set[str]:
    """The section anchors a link ``notebook.ipynb#anchor`` can name: explicit ids and JupyterLab's heading
    anchors (the heading with spaces as dashes), plus a lower-case slug of each heading."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    anchors = set(re.findall(r"""(?:id|name)\s*=\s*["']([^"']+)["']""", text))
    for heading in HEADING_RE.finditer(text):
        anchors |= heading_anchors(heading.group(2))
    return anchors
