"""Every generated exercise notebook still runs, and grades 0 with "not implemented yet" on every exercise."""

from bigtrain_lab.grading.notebook_grader import grade_notebook


def test_exercises_grade_0_and_say_not_implemented(root):
    for path in sorted((root / "exercises").glob("*.ipynb")):
        report = grade_notebook(path, timeout=300)
        assert report.status == "ok", f"{path}: an unsolved exercise notebook must still run: {report.message}"
        assert report.checks and all(not c["passed"] and c["score"] == 0.0 for c in report.checks)
        assert all("not implemented yet" in c["feedback"] for c in report.checks)
