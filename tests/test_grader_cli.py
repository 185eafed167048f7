"""bigtrain-lab build-exercises / grade / progress, as an instructor and a learner use them."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bigtrain_lab.cli import main
from bigtrain_lab.grading.build import MarkerError, build_exercises, exercise_notebook, strip_solutions
from bigtrain_lab.grading.progress import load_progress

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def write_notebook(path, *sources):
    cells = [new_code_cell(s) if not s.startswith("#md") else new_markdown_cell(s[3:]) for s in sources]
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), path)
    return path


# ---- build-exercises ------------------------------------------------------------------------------

def test_strip_solutions_keeps_indentation_and_surroundings():
    src = "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2"
    out = strip_solutions(src)
    assert "return x + 1" not in out
    assert '    raise NotImplementedError(' in out and out.startswith('def f(x):\n    """doc"""')
    assert out.endswith("\n\ny = 2")


@pytest.mark.parametrize("src", [
    "### BEGIN SOLUTION\nx = 1",
    "### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
])
def test_unbalanced_markers_are_errors(src):
    with pytest.raises(MarkerError):
        strip_solutions(src)


def test_exercise_notebook_clears_outputs_and_leaves_solution_untouched():
    cell = new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    cell.outputs = [nbformat.v4.new_output("stream", text="hi")]
    cell.execution_count = 3
    solution = new_notebook(cells=[cell])
    exercise = exercise_notebook(solution, source_name="solutions/x.ipynb")
    assert exercise.cells[0].outputs == [] and exercise.cells[0].execution_count is None
    assert "x = 1" in solution.cells[0].source and "x = 1" not in exercise.cells[0].source
    assert exercise.metadata["bigtrain_lab"]["generated_from"] == "solutions/x.ipynb"


def test_committed_exercises_match_the_solutions(root):
    assert build_exercises(root / "solutions", root / "exercises", check_only=True) == []


def test_build_detects_drift_and_stale_files(root, tmp_path):
    out = tmp_path / "exercises"
    written = build_exercises(root / "solutions", out)
    assert {p.name for p in written} == {p.name for p in (root / "solutions").glob("*.ipynb")}
    assert build_exercises(root / "solutions", out) == []  # idempotent
    first = sorted(out.glob("*.ipynb"))[0]
    first.write_text(first.read_text() + " ")
    (out / "99_orphan.ipynb").write_text("{}")
    drift = build_exercises(root / "solutions", out, check_only=True)
    assert {p.name for p in drift} == {first.name, "99_orphan.ipynb"}
    assert main(["build-exercises", "--solutions", str(root / "solutions"), "--exercises", str(out),
                 "--check"]) == 1


def test_every_solution_region_is_removed_from_exercises(root):
    for path in (root / "exercises").glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert "NotImplementedError" in text


# ---- grade ----------------------------------------------------------------------------------------

def test_grade_cli_rows_for_broken_notebooks_and_json(root, tmp_path, capsys):
    write_notebook(tmp_path / "good.ipynb",
                          "import numpy as np\nfrom bigtrain_lab.grading import check",
                          "def regression_errors(t, p):\n    e = np.subtract(p, t, dtype=float)\n"
                          "    return float(np.sqrt(np.mean(e**2))), float(np.mean(np.abs(e)))",
                          'check("metrics.regression_errors", regression_errors)')
    (tmp_path / "notjson.ipynb").write_text("this is not json")
    write_notebook(tmp_path / "nochecks.ipynb", "x = 1")
    write_notebook(tmp_path / "crash.ipynb", "from bigtrain_lab.grading import check", "1 / 0",
                   'check("metrics.roc_auc", lambda y, s: 0.5)')
    write_notebook(tmp_path / "slow.ipynb", "from bigtrain_lab.grading import check\nimport time",
                   "time.sleep(60)", 'check("metrics.roc_auc", lambda y, s: 0.5)')
    out = tmp_path / "grades.json"
    paths = [str(tmp_path / n) for n in ("good.ipynb", "notjson.ipynb", "nochecks.ipynb", "crash.ipynb")]
    code = main(["grade", *paths, "--json", str(out), "--timeout", "240"])  # generous: a loaded CI machine
    assert code == 1
    text = capsys.readouterr().out
    assert "metrics.regression_errors" in text and "[unreadable]" in text and "[no checks]" in text
    assert "[cell error]" in text and "ZeroDivisionError" in text
    data = json.loads(out.read_text())
    slow_out = tmp_path / "slow.json"
    assert main(["grade", str(tmp_path / "slow.ipynb"), "--json", str(slow_out), "--timeout", "20"]) == 1
    assert "[timeout]" in capsys.readouterr().out
    data["notebooks"] += json.loads(slow_out.read_text())["notebooks"]
    by_name = {n["path"].rsplit("/", 1)[-1]: n for n in data["notebooks"]}
    assert by_name["good.ipynb"]["passed"] and not data["passed"]
    assert by_name["crash.ipynb"]["checks"][0]["exercise_id"] == "metrics.roc_auc"
    assert not by_name["crash.ipynb"]["checks"][0]["passed"]  # the check after the error still ran
    assert by_name["slow.ipynb"]["status"] == "timeout"
    assert by_name["slow.ipynb"]["checks"][0]["feedback"].startswith("this check never ran")
    progress = load_progress()
    assert progress["metrics.regression_errors"]["passed"] is True
    assert progress["metrics.roc_auc"]["passed"] is False

    assert main(["grade", str(tmp_path / "good.ipynb")]) == 0
    assert main(["progress"]) == 0
    shown = capsys.readouterr().out
    assert "metrics.regression_errors" in shown and "passed" in shown and "not attempted" in shown


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "bigtrain_lab.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "build-exercises" in done.stdout


def test_bench_lists_benchmarks(capsys):
    assert main(["bench"]) == 0
    assert "available benchmarks" in capsys.readouterr().out
    assert main(["bench", "no-such-bench"]) == 2
