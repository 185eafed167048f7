"""Every solution notebook grades 100 % through ``bigtrain-lab grade``'s grader (the verdict computed by the
grader, the outputs taken from the notebook's kernel). Its own file, so pytest-xdist runs it beside the
exercise notebooks' test."""

import nbformat

from bigtrain_lab.grading.notebook_grader import expected_exercises, grade_notebook


def test_solutions_grade_100_percent(root):
    for path in sorted((root / "solutions").glob("*.ipynb")):
        report = grade_notebook(path, timeout=300)
        assert report.status == "ok", report.message
        assert report.checks and all(c["passed"] for c in report.checks), report.checks
        assert [c["exercise_id"] for c in report.checks] == expected_exercises(nbformat.read(path, 4))
