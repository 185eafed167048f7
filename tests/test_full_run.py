"""A lesson's full-run figures (bigtrain_lab.full_run): the full run saves them with its conditions, every run
quotes them, and no notebook types a full-run figure into its markdown instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from bigtrain_lab.budget import RunBudget
from bigtrain_lab.full_run import FullRunFigures

ROOT = Path(__file__).resolve().parent.parent
FULL_RUNS = ROOT / "bench" / "results" / "full_runs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOW = re.compile(r"""FULL\.show\(\s*["'](\w+)["']""")


def figures(path: Path, fast: bool) -> FullRunFigures:
    return FullRunFigures(path, RunBudget(2, fast, {"epochs": 2 if fast else 20}))


def test_the_full_run_saves_and_every_run_quotes(tmp_path, machine, capsys):
    path = tmp_path / "full_runs" / "02_x.json"
    assert figures(path, fast=True).show("acc", {"a": 0.5}) == {}
    assert not path.exists(), "a fast run must never write the full run's file"
    assert "BIGTRAIN_LAB_FAST=0" in capsys.readouterr().out

    assert figures(path, fast=False).show("acc", {"a": 0.91234, "b": 0.2}, "val accuracy") == {"a": 0.912, "b": 0.2}
    saved = json.loads(path.read_text())
    assert saved["figures"]["acc"]["figures"] == {"a": 0.912, "b": 0.2}
    assert saved["budget"] == {"epochs": 20} and saved["conditions"]["loaded"] is False
    capsys.readouterr()

    fast = figures(path, fast=True)
    assert fast.show("acc", {"a": 0.1}, "val accuracy") == {"a": 0.912, "b": 0.2}
    out = capsys.readouterr().out
    assert "full run (" in out and "a 0.912 · b 0.200" in out and "val accuracy" in out
    assert fast.recorded("acc") == {"a": 0.912, "b": 0.2}
    with pytest.raises(KeyError, match="BIGTRAIN_LAB_FAST=0"):
        fast.recorded("loss")


def test_one_full_run_keeps_all_its_figures_and_a_new_one_replaces_them(tmp_path, machine):
    path = tmp_path / "nb.json"
    first = figures(path, fast=False)
    first.show("acc", {"a": 0.9})
    first.show("loss", {"a": 0.1})
    assert set(json.loads(path.read_text())["figures"]) == {"acc", "loss"}
    second = figures(path, fast=False)
    second._conditions.started_at = "a later run"
    second.show("acc", {"a": 0.8})
    assert set(json.loads(path.read_text())["figures"]) == {"acc"}, "figures of an older full run must not linger"


def test_figures_of_a_loaded_full_run_are_not_quoted(tmp_path, machine, capsys):
    path = tmp_path / "nb.json"
    machine(7.0)
    figures(path, fast=False).show("acc", {"a": 0.9})
    assert json.loads(path.read_text())["conditions"]["loaded"] is True
    capsys.readouterr()
    machine(0.3)
    assert figures(path, fast=True).show("acc", {"a": 0.5}) == {}
    assert "loaded" in capsys.readouterr().out


@pytest.mark.parametrize("key, values", [("not an identifier", {"a": 1.0}), ("acc", {})])
def test_bad_input_is_refused(tmp_path, machine, key, values):
    with pytest.raises(ValueError):
        figures(tmp_path / "nb.json", fast=True).show(key, values)


# ---- the notebooks --------------------------------------------------------------------------------------

def shown_keys(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [key for cell in nb.cells if cell.cell_type == "code" for key in SHOW.findall(cell.source)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_a_lesson_shows_was_recorded_by_an_idle_full_run(notebook):
    keys = shown_keys(notebook)
    if not keys:
        pytest.skip("shows no full-run figures")
    assert len(keys) == len(set(keys)), f"a key is shown twice: {keys}"
    record = FULL_RUNS / f"{notebook.stem}.json"
    assert record.is_file(), f"run `BIGTRAIN_LAB_FAST=0 jupyter execute notebooks/{notebook.name}` to record {record}"
    saved = json.loads(record.read_text(encoding="utf-8"))
    assert set(saved["figures"]) == set(keys), f"{record.name} is stale: re-run the lesson with BIGTRAIN_LAB_FAST=0"
    assert saved["conditions"]["loaded"] is False


#: a decimal figure (0.563, 7.2, 186 is left to the prose around it) in a paragraph that speaks of the full run
TYPED_FIGURE = re.compile(r"\b\d+\.\d+\b")


def typed_full_run_figures(markdown: str) -> list[str]:
    """Paragraphs of ``markdown`` that quote the full run and type a decimal number."""
    return [p for p in markdown.split("\n\n") if re.search(r"full run", p, re.I) and TYPED_FIGURE.search(p)]


def test_the_check_for_typed_figures_catches_one():
    assert typed_full_run_figures("Full run (20 epochs): at batch 512, 0.563 with the same lr.")
    assert not typed_full_run_figures("The full run's figures are printed under the cell.\n\nlr 0.02 at batch 32.")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_lesson_types_a_full_run_figure_into_its_markdown(notebook):
    nb = nbformat.read(notebook, as_version=4)
    typed = [p for cell in nb.cells if cell.cell_type == "markdown" for p in typed_full_run_figures(cell.source)]
    assert typed == [], "print it with FULL.show in the cell that measures it:\n\n" + "\n\n".join(typed)


# The interview bank quotes these records too: each quoted figure is listed under the entry's `figures:` in
# bigtrain_lab/quiz/bank.yaml and checked against the record by tests/test_bank_figures.py.
