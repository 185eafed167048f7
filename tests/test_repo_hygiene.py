"""Repository rules (CONTRIBUTING.md): pinned and in sync, clean notebooks, lint-clean code."""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

NOTEBOOK_DIRS = ("notebooks", "exercises", "solutions")


def requirement_lines(root):
    return [line.strip() for line in (root / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_requirements_are_exact_pins(root):
    lines = requirement_lines(root)
    assert lines, "requirements.txt is empty"
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", line), f"not an exact pin: {line}"
    assert "torch==2.13.0" in lines


def test_environment_yml_installs_the_same_pins(root):
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip_section, "environment.yml must install this package"
    assert sorted(p for p in pip_section if p != "-e .") == sorted(requirement_lines(root)), \
        "environment.yml and requirements.txt disagree: run `make environment.yml`"


def all_notebooks(root):
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def test_notebooks_exist_for_the_template_topic(root):
    names = {p.relative_to(root).as_posix() for p in all_notebooks(root)}
    assert {"notebooks/00_start_here.ipynb", "notebooks/01_metrics.ipynb", "solutions/01_metrics.ipynb",
            "exercises/01_metrics.ipynb"} <= names


@pytest.mark.parametrize("name", ["notebooks", "exercises", "solutions"])
def test_notebooks_are_committed_clean(root, name):
    for path in sorted((root / name).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: use NN_topic.ipynb"
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path}: kernelspec missing"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path}: stored outputs (clear them before committing)"
                assert cell.execution_count is None, f"{path}: stored execution count"


def test_ruff_is_clean(root):
    ruff = shutil.which("ruff", path=str(root / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    done = subprocess.run([ruff, "check", "--no-cache", str(root)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_imports_without_optional_heavy_modules():
    # Importing the package must stay cheap: no shap/lime/plotly at import time.
    code = "import sys, bigtrain_lab; print(any(m in sys.modules for m in ('shap', 'lime', 'plotly')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr


def test_readme_maps_every_lesson_and_exercise(root):
    from bigtrain_lab.grading import exercise_ids

    readme = (root / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for path in all_notebooks(root):
        assert path.relative_to(root).as_posix() in readme, f"README's curriculum map lacks {path.name}"
    for exercise_id in exercise_ids():
        assert f"`{exercise_id}`" in readme, f"README's curriculum map lacks {exercise_id}"


def test_ci_runs_the_readme_test_command(root):
    assert "make test" in (root / ".ci" / "run").read_text()
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
