"""The curriculum manifest is the one source: README, 00_start_here, exercises, the bank and the package agree."""

import ast
import importlib
import re
import subprocess
import sys

import nbformat
import pytest

from bigtrain_lab import curriculum
from bigtrain_lab.grading import exercise_ids, get_exercise
from bigtrain_lab.quiz.bank import load_bank
from tests.conftest import notebook_anchors


def test_readme_curriculum_section_is_generated_from_the_manifest(root):
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert curriculum.with_readme_section(readme) == readme, \
        "README's curriculum section is stale: run `bigtrain-lab curriculum --write-readme`"
    for entry in curriculum.LESSONS:
        assert entry.title in readme


def test_readme_check_fails_on_a_hand_edited_table(root, tmp_path):
    readme = (root / "README.md").read_text(encoding="utf-8")
    edited = readme.replace("`metrics.roc_auc`, ", "", 1)
    assert edited != readme
    assert curriculum.with_readme_section(edited) == readme  # regenerating restores the row
    with pytest.raises(ValueError, match="markers"):
        curriculum.with_readme_section("# a README without the markers\n")


def test_cli_curriculum_check_passes_on_the_repo(root):
    done = subprocess.run([sys.executable, "-m", "bigtrain_lab.cli", "curriculum", "--check"],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr


def test_start_here_renders_the_manifest_table(root):
    nb = nbformat.read(root / "notebooks" / "00_start_here.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "curriculum_table()" in code
    table = curriculum.curriculum_table()._repr_markdown_()
    for entry in curriculum.LESSONS:
        for notebook in entry.notebooks:
            assert f"](../{notebook})" in table


def test_every_notebook_belongs_to_exactly_one_lesson(root):
    listed = [nb for entry in curriculum.LESSONS for nb in entry.notebooks]
    listed += [p for entry in curriculum.LESSONS for p in (entry.exercise_notebook, entry.solution_notebook) if p]
    assert len(listed) == len(set(listed)), "a notebook is listed twice"
    on_disk = {p.relative_to(root).as_posix() for d in ("notebooks", "exercises", "solutions")
               for p in (root / d).glob("*.ipynb")}
    assert set(listed) == on_disk, f"in the manifest only: {set(listed) - on_disk}; " \
                                   f"on disk only: {on_disk - set(listed)}"
    for entry in curriculum.LESSONS:
        for notebook in entry.notebooks:
            assert re.fullmatch(rf"notebooks/{entry.number:02d}_[a-z0-9_]+\.ipynb", notebook), notebook


def test_lesson_numbers_and_topic_keys_are_unique():
    numbers = [entry.number for entry in curriculum.LESSONS]
    assert numbers == sorted(set(numbers))
    keys = [t.key for t in curriculum.topics()]
    assert len(keys) == len(set(keys))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in keys)


def test_manifest_exercises_are_the_registered_ones():
    listed = [i for entry in curriculum.LESSONS for i in entry.exercises]
    assert sorted(listed) == exercise_ids()
    for entry in curriculum.LESSONS:
        for exercise_id in entry.exercises:
            assert exercise_id.split(".")[0] in entry.quiz_topics, f"{exercise_id} is not a topic of lesson {entry.number}"


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_exercise_lesson_links_point_to_a_section_of_the_topic_notebook(root, exercise_id):
    exercise = get_exercise(exercise_id)
    notebook, anchor = exercise.lesson.split("#")
    topic = exercise_id.split(".")[0]
    # the topic's own notebook, or (named by the exercise) another notebook of the same lesson
    assert notebook == (exercise.notebook or curriculum.topic(topic).notebook)
    assert notebook in curriculum.lesson_of_topic(topic).notebooks
    assert anchor in notebook_anchors(root / notebook), f"{exercise_id}: no section #{anchor} in {notebook}"


def _checked_ids(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    ids = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                ids.append(node.args[0].value)
    return ids


@pytest.mark.parametrize("entry", [e for e in curriculum.LESSONS if e.practice], ids=lambda e: f"lesson{e.number:02d}")
def test_solution_notebook_checks_the_lesson_exercises_in_order(root, entry):
    assert _checked_ids(root / entry.solution_notebook) == list(entry.exercises)


def test_every_topic_has_a_module_and_bank_questions():
    bank_topics = {q.topic for q in load_bank()}
    for t in curriculum.topics():
        importlib.import_module(t.module)
        assert t.key in bank_topics, f"topic {t.key!r} has no interview question in the bank"
    assert bank_topics <= {t.key for t in curriculum.topics()}


def test_bank_entries_link_a_notebook_of_their_topic_lesson():
    for q in load_bank():
        assert q.lesson_notebook in curriculum.lesson_of_topic(q.topic).notebooks, q.id


def test_widget_modules_are_named_by_topic_and_export_what_the_manifest_names(root):
    keys = {t.key for t in curriculum.topics()}
    modules = {p.stem for p in (root / "bigtrain_lab" / "widgets").glob("*.py") if p.stem != "__init__"}
    assert modules <= keys, f"widget modules without a topic: {modules - keys}"
    for t in curriculum.topics():
        if t.widgets:
            module = importlib.import_module(t.widget_module)
            for name in t.widgets:
                assert callable(getattr(module, name, None)), f"{t.widget_module} has no {name}"
        else:
            assert t.key not in modules, f"widgets/{t.key}.py exists but the manifest names none of it"


def test_lesson_notebooks_show_their_widgets(root):
    for t in curriculum.topics():
        # a topic taught over two notebooks (lesson 14) may show a widget in its lesson's other notebook
        texts = {nb: (root / nb).read_text(encoding="utf-8") for nb in curriculum.lesson_of_topic(t.key).notebooks}
        for name in t.widgets:
            assert any(name in text for text in texts.values()), \
                f"no notebook of lesson {curriculum.lesson_of_topic(t.key).number} uses {t.widget_module}.{name}"


def test_lookups_name_the_valid_choices():
    assert curriculum.lesson_of_topic("memory").number == 3
    with pytest.raises(ValueError, match="topics: metrics"):
        curriculum.topic("scaling")
    with pytest.raises(ValueError, match="lessons: 0, 1"):
        curriculum.lesson(99)


def test_lesson_budgets_have_the_same_names_in_both_runs_and_notebooks_use_no_inline_forks(root):
    from bigtrain_lab.budget import Budget, lesson_budget

    for entry in curriculum.LESSONS:
        run = lesson_budget(entry.number, fast=True, echo=False)
        assert run.fast and f"lesson {entry.number:02d} · fast run" in repr(run)
        for notebook in entry.notebooks:
            nb = nbformat.read(root / notebook, as_version=4)
            code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
            assert "if FAST else" not in code and "fast_mode()" not in code, f"{notebook}: use lesson_budget"
            names = set(re.findall(r"\bRUN\.(\w+)", code)) - {"fast"}
            if names:
                assert f"lesson_budget({entry.number})" in code
                assert names <= set(entry.budget.fast), f"{notebook}: {names - set(entry.budget.fast)} not in the budget"
    with pytest.raises(ValueError, match="different things"):
        Budget(fast={"steps": 1}, full={"epochs": 2})
    with pytest.raises(AttributeError, match="no budget entry 'nope'"):
        getattr(lesson_budget(9, echo=False), "nope")  # noqa: B009
