"""The errata index (bigtrain_lab/quiz/errata.yaml): every circulating wrong answer, the seed question it came
from, and a lesson section that exists and RUNS it; its loader, its renderings, and that the checks reject bad
entries."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from bigtrain_lab.cli import main
from bigtrain_lab.quiz.bank import load_bank
from bigtrain_lab.quiz.errata import (
    ErrataError,
    Erratum,
    errata_rows,
    errata_table,
    format_errata,
    load_errata,
    running_problem,
    section_cells,
)
from tests.conftest import notebook_anchors

ROOT = Path(__file__).resolve().parent.parent
ERRATA = load_errata()

#: the circulating wrong answers issue 12 asks the lessons to run: each must be in the index
REQUIRED_SEEDS = {"seed:000#19", "seed:003#10", "seed:000#5", "seed:000#18", "seed:000#23", "seed:000#8",
                  "seed:000#13", "seed:000#27", "seed:003#8", "seed:003#20", "seed:000#15"}


def test_the_index_loads_and_covers_the_issues_wrong_answers():
    assert len(ERRATA) >= 25
    cited = {s for e in ERRATA for s in e.source}
    assert cited >= REQUIRED_SEEDS, f"not in the errata index: {sorted(REQUIRED_SEEDS - cited)}"
    bank = {q.id: q for q in load_bank()}
    for e in ERRATA:  # the bank entry that refutes it cites one of its seeds, or names one in its pitfalls
        pitfalls = " ".join(bank[e.bank].pitfalls["en"])
        named = {s for s in e.source if s.removeprefix("seed:").replace("#", " #") in pitfalls}
        assert set(e.source) & set(bank[e.bank].source) or named, \
            f"{e.id}: its bank entry {e.bank} cites {bank[e.bank].source}, none of {e.source}"


@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: e.id)
def test_every_anchor_exists_and_has_a_running_cell_behind_it(erratum):
    path = ROOT / erratum.notebook
    assert path.is_file(), f"{erratum.id}: {erratum.notebook} does not exist"
    assert erratum.anchor in notebook_anchors(path), f"{erratum.id}: no section #{erratum.anchor} in {erratum.notebook}"
    assert running_problem(erratum, ROOT) is None, running_problem(erratum, ROOT)


def test_no_anchor_is_left_provisional():
    todo = [f"{e.id} ({', '.join(e.source)}): {e.todo}" for e in ERRATA if e.todo]
    assert not todo, "errata whose section is still being written (set lesson:, delete todo:):\n" + "\n".join(todo)


# ---- renderings -------------------------------------------------------------------------------------------

def test_the_cli_lists_the_index(capsys):
    assert main(["errata"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(ERRATA)} circulating wrong answers")
    for e in ERRATA:
        assert e.id in out and e.lesson in out
    assert main(["errata", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == errata_rows(ERRATA) and rows[0]["source"] == list(ERRATA[0].source)


def test_the_cli_reports_a_broken_index(tmp_path, capsys):
    bad = tmp_path / "errata.yaml"
    bad.write_text("errata: []\n", encoding="utf-8")
    assert main(["errata", "--file", str(bad)]) == 2
    assert "non-empty 'errata' list" in capsys.readouterr().err


def test_the_notebook_table_links_each_section():
    table = errata_table(prefix="")._repr_html_()
    assert table.count("<tr>") == len(ERRATA) + 1
    for e in ERRATA:
        assert f'href="{e.lesson.removeprefix("notebooks/")}"' in table
    assert "<code>roc_auc_score(y_true, y_pred)</code>" in table
    assert "`roc_auc_score(y_true, y_pred)`" in format_errata(ERRATA), "the terminal keeps the backticks"


# ---- the loader and the checks reject bad entries ---------------------------------------------------------

GOOD = {"id": "toy-wrong-answer", "source": "seed:000#19", "bank": "metrics.evaluating_model_performance",
        "wrong": "a wrong claim", "right": "what is true", "lesson": "notebooks/01_metrics.ipynb#toy"}


def write(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "errata.yaml"
    path.write_text(yaml.safe_dump({"errata": list(entries)}, allow_unicode=True), encoding="utf-8")
    return path


def test_a_toy_index_loads(tmp_path):
    (e,) = load_errata(write(tmp_path, GOOD), bank_ids=[GOOD["bank"]])
    assert (e.source, e.notebook, e.anchor, e.seeds) == (("seed:000#19",), "notebooks/01_metrics.ipynb", "toy",
                                                          "000 #19")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"source": "seed:000#31"}, "field 'source': 'seed:000#31': seed 000 has questions 1..30"),
    ({"source": "seed:000#task1"}, "field 'source': 'seed:000#task1': no seed document 000 with tasks"),
    ({"source": "seed:003#task11"}, "seed 003 has programming tasks (taskK) 1..10"),
    ({"source": "kit"}, "a circulating answer comes from a seed, not 'kit'"),
    ({"source": "000#19"}, "field 'source': '000#19': a source is 'kit'"),
    ({"bank": "metrics.no_such_entry"}, "field 'bank': 'metrics.no_such_entry' is not an entry"),
    ({"lesson": "01_metrics#toy"}, "field 'lesson': must look like"),
    ({"wrong": "two\nlines"}, "field 'wrong': must be one line"),
    ({"right": None}, "field 'right': missing"),
    ({"id": "Not A Slug"}, "field 'id': must be a lower-case slug"),
    ({"anchor": "x"}, "field 'anchor': unknown field"),
])
def test_bad_entries_are_reported_with_id_and_field(tmp_path, changes, expected):
    with pytest.raises(ErrataError) as info:
        load_errata(write(tmp_path, {**GOOD, **changes}), bank_ids=[GOOD["bank"]])
    assert expected in str(info.value)


def test_duplicate_ids_are_reported(tmp_path):
    with pytest.raises(ErrataError, match="field 'id': duplicate id"):
        load_errata(write(tmp_path, GOOD, GOOD), bank_ids=[GOOD["bank"]])


def lesson(tmp_path: Path, *cells: tuple[str, str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if kind == "md" else nbformat.v4.new_code_cell(s) for kind, s in cells]
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    nbformat.write(nb, tmp_path / "notebooks" / "01_metrics.ipynb")
    return tmp_path


def toy(anchor: str = "toy", runs: str | None = None) -> Erratum:
    return Erratum(id="toy", source=("seed:000#19",), bank="b", wrong="w", right="r",
                   lesson=f"notebooks/01_metrics.ipynb#{anchor}", runs=runs)


def test_an_anchor_with_a_running_cell_passes(tmp_path):
    root = lesson(tmp_path, ("md", '<a id="toy"></a>\n## 9. Toy'), ("md", "The snippet:"),
                  ("code", "accuracy_score(y, p)"), ("md", "## 10. Next"))
    assert running_problem(toy(runs="accuracy_score("), root) is None
    assert running_problem(toy("9-toy"), root) is None, "the heading's own anchor"


@pytest.mark.parametrize(("cells", "erratum", "expected"), [
    ([("md", "## 9. Other"), ("code", "x = 1")], toy(), "no section #toy"),
    ([("md", '<a id="toy"></a>\n## 9. Toy\nprose only'), ("md", "## 10. Next"), ("code", "x = 1")], toy(),
     "has no code cell before the next heading"),
    ([("md", '<a id="toy"></a>\n## 9. Toy'), ("md", "### 9.1 A subsection"), ("code", "x = 1")], toy(),
     "has no code cell before the next heading"),
    ([("md", '<a id="toy"></a>\n## 9. Toy\n<a id="next"></a>\n## 10. Next'), ("code", "x = 1")], toy(),
     "has no code cell before the next heading"),
    ([("md", '<a id="toy"></a>\n## 9. Toy'), ("code", "   ")], toy(), "has no code cell"),
    ([("md", '<a id="toy"></a>\n## 9. Toy'), ("code", "x = 1")], toy(runs="accuracy_score("),
     "no code cell of #toy in notebooks/01_metrics.ipynb contains 'accuracy_score('"),
])
def test_an_anchor_without_a_running_cell_is_rejected(tmp_path, cells, erratum, expected):
    problem = running_problem(erratum, lesson(tmp_path, *cells))
    assert problem is not None and expected in problem


def test_a_missing_notebook_is_rejected(tmp_path):
    assert "does not exist" in running_problem(toy(), tmp_path)


def test_section_cells_stops_at_the_right_heading():
    cells = [{"cell_type": "markdown", "source": "## 1. A"}, {"cell_type": "code", "source": "a"},
             {"cell_type": "markdown", "source": "### 1.1 Sub"}, {"cell_type": "code", "source": "b"},
             {"cell_type": "markdown", "source": "## 2. B"}, {"cell_type": "code", "source": "c"}]
    assert [c["source"] for c in section_cells(cells, "1-a")] == ["## 1. A", "a"]
    assert [c["source"] for c in section_cells(cells, "1-a", subsections=True)] == ["## 1. A", "a", "### 1.1 Sub", "b"]
    assert [c["source"] for c in section_cells(cells, "2-b")] == ["## 2. B", "c"]
    assert section_cells(cells, "3-c") == []
