"""The package's layering, executable: topic modules never reach up into UI, grading or files outside.

Topic modules (everything in ``bigtrain_lab`` but ``widgets/``, ``grading/``, ``quiz/`` and ``cli.py``) hold
plain logic that returns data. Widgets, grading, the quiz and notebooks import them, never the reverse;
and they read no file outside the package (data a widget needs is shipped or passed in).
"""

import ast
import doctest
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

import bigtrain_lab

UPPER_LAYERS = ("widgets", "grading", "quiz")
#: Imports a topic module must not make: the UI stack and the layers above it.
FORBIDDEN = ("plotly", "ipywidgets", "IPython", "anywidget", *(f"bigtrain_lab.{layer}" for layer in UPPER_LAYERS))


def topic_module_files(package_dir: Path) -> list[Path]:
    files = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if rel.parts[0] in UPPER_LAYERS or rel.as_posix() == "cli.py":
            continue
        files.append(path)
    return files


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            names += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return names


def layering_violations(package_dir: Path) -> list[str]:
    """Every forbidden import and every way of reaching files outside the package, as 'file:line: why'."""
    problems = []
    for path in topic_module_files(package_dir):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(package_dir.parent).as_posix()
        for line, name in _imported_names(tree):
            bad = next((f for f in FORBIDDEN if name == f or name.startswith(f + ".")), None)
            if bad:
                problems.append(f"{where}:{line}: imports {name} (a topic module must not import {bad})")
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "__file__":
                problems.append(f"{where}:{node.lineno}: uses __file__ (reads files relative to the checkout)")
            if isinstance(node, ast.Constant) and node.value == "..":
                problems.append(f"{where}:{node.lineno}: a path component that leaves the package ('..')")
            if isinstance(node, ast.Attribute) and node.attr == "pardir":
                problems.append(f"{where}:{node.lineno}: os.pardir (a path that leaves the package)")
    return problems


def test_topic_modules_respect_the_layering():
    assert layering_violations(Path(bigtrain_lab.__file__).parent) == []


@pytest.mark.parametrize("planted", [
    "import plotly.graph_objects as go",
    "from IPython.display import display",
    "from bigtrain_lab.widgets.metrics import threshold_explorer",
    "from bigtrain_lab.grading import check",
    "from pathlib import Path\nHERE = Path(__file__).resolve().parents[2] / 'bench'",
    "import os\nRESULTS = os.path.join('..', 'bench', 'results')",
])
def test_the_layering_check_catches_a_planted_violation(tmp_path, planted):
    package = tmp_path / "bigtrain_lab"
    shutil.copytree(Path(bigtrain_lab.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.yaml"))
    target = package / "metrics.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n" + planted + "\n", encoding="utf-8")
    problems = layering_violations(package)
    assert len(problems) >= 1 and all(p.startswith("bigtrain_lab/metrics.py:") for p in problems), problems


def test_widgets_and_grading_are_the_only_ui_importers():
    # the reverse direction is allowed and used: widgets import topic modules
    text = (Path(bigtrain_lab.__file__).parent / "widgets" / "metrics.py").read_text(encoding="utf-8")
    assert "from bigtrain_lab.metrics import" in text


def _all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(bigtrain_lab.__path__, "bigtrain_lab."))


@pytest.mark.parametrize("name", _all_modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed"
