"""``bigtrain-lab grade`` computes every verdict itself: forged notebooks earn only what their function earns,
the kernel runs under limits in a scratch folder, and ``--sandbox`` contains what it cannot stop."""

import json
import socket
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from bigtrain_lab.cli import main
from bigtrain_lab.grading import check, wire
from bigtrain_lab.grading.kernel import Limits, sandbox_problem
from bigtrain_lab.grading.notebook_grader import (
    NotebookReport,
    checked_functions,
    class_summary,
    grade_notebook,
)

FORGED = Path(__file__).parent / "forged"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
SEED = 1234
WRONG_AUC = ("def roc_auc(y_true, y_score):\n"
             "    if len(set(map(int, y_true))) < 2:\n"
             "        raise ValueError('needs both classes')\n"
             "    return 0.5")
RIGHT_AUC = ("from scipy.stats import rankdata\nimport numpy as np\n"
             "def roc_auc(y_true, y_score):\n"
             "    y = np.asarray(y_true).astype(int)\n"
             "    if len(set(y.tolist())) < 2:\n"
             "        raise ValueError('needs both classes')\n"
             "    r = rankdata(y_score)\n"
             "    n1, n0 = y.sum(), len(y) - y.sum()\n"
             "    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))")


def notebook(path: Path, *sources: str) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources], metadata={"kernelspec": KERNELSPEC}),
                   path)
    return path


# ---- which function is graded: parsed, not grepped -----------------------------------------------------

def test_checked_functions_come_from_the_syntax_tree():
    nb = new_notebook(cells=[
        new_code_cell("# check(\"metrics.roc_auc\", fake) in a comment\ns = 'check(\"metrics.roc_auc\", f)'"),
        new_code_cell("%%time\nresult = check('metrics.roc_auc', my_auc)"),
        new_code_cell("grading.check(\"metrics.confusion_counts\", candidate=lambda y, p: (0, 0, 0, 0))"),
        new_code_cell("check(\"metrics.roc_auc\", better_auc)  # the last call wins"),
        new_code_cell("this is not python"),
        new_code_cell("check(exercise_id, fn)  # not a literal id: nothing to grade statically"),
    ])
    assert checked_functions(nb) == {"metrics.roc_auc": "better_auc",
                                     "metrics.confusion_counts": "lambda y, p: (0, 0, 0, 0)"}


# ---- the wire: data only ---------------------------------------------------------------------------------

def test_wire_round_trips_data_and_keeps_dtypes():
    value = (np.int64(5), torch.tensor(1.5, dtype=torch.float64), np.array(2.0), torch.ones(2, 3).T,
             torch.tensor([1.0, 2.0], dtype=torch.bfloat16), [None, float("nan"), 2**70, "text", True],
             {"p": torch.nn.Parameter(torch.ones(2))}, torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()))
    back = wire.decode(wire.encode(value))
    assert back[0] == 5 and type(back[0]) is np.int64
    assert back[1].shape == () and back[1].dtype == torch.float64
    assert back[2].shape == () and back[3].shape == (3, 2)
    assert back[4].dtype == torch.bfloat16 and back[4].tolist() == [1.0, 2.0]
    assert back[5][0] is None and np.isnan(back[5][1]) and back[5][2:] == [2**70, "text", True]
    assert isinstance(back[6]["p"], torch.nn.Parameter)
    seq = back[7]
    assert isinstance(seq[0], torch.nn.Linear) and isinstance(seq[1], torch.nn.Tanh)
    assert torch.equal(seq[0].weight, value[7][0].weight)


def test_wire_carries_bytes_as_bytes():  # llm.bpe_merges answers with pairs of byte strings
    value = [(b"a", b"\xc3\xa9"), (b"", bytes(range(256)))]
    back = wire.decode(wire.encode(value))
    assert back == value and all(type(part) is bytes for pair in back for part in pair)


def test_wire_never_unpickles_and_rebuilds_only_allowed_kinds(tmp_path):
    class Custom:
        def __repr__(self):
            return "Custom()"

    opaque = wire.decode(wire.encode([Custom()]))[0]
    assert isinstance(opaque, wire.Opaque) and opaque.type_name.endswith("Custom")
    with pytest.raises(wire.WireError):
        wire.encode(Custom(), strict=True)
    with pytest.raises(wire.WireError):
        wire.encode(np.array([Custom()], dtype=object))
    # a blob carrying a pickled object array (what np.save writes with allow_pickle=True) is refused
    evil = tmp_path / "evil.npz"
    np.savez(evil, __manifest__=np.frombuffer(b'{"t": "nd", "k": "a0"}', dtype=np.uint8),
             a0=np.array([{"pickled": True}], dtype=object))
    with pytest.raises(wire.WireError):
        wire.decode(evil.read_bytes())
    # an object kind the reader does not allow comes back as a placeholder, never as the object
    blob = wire.encode(torch.nn.Linear(2, 2))
    assert isinstance(wire.decode(blob, rebuild={}), wire.Opaque)


# ---- forged notebooks ------------------------------------------------------------------------------------

def test_forged_notebooks_earn_only_what_their_function_earns(tmp_path):
    namespace: dict = {}
    exec(WRONG_AUC, namespace)  # what the wrong function earns, checked in-process with the same seed
    earned = check("metrics.roc_auc", namespace["roc_auc"], seed=SEED).score
    assert 0 < earned < 0.5  # the single-class cases raise as they should; the rest are wrong
    forged = sorted(FORGED.glob("*.ipynb"))
    assert len(forged) >= 7
    for path in forged:
        report = grade_notebook(path, seed=SEED)
        [row] = report.checks
        assert row["exercise_id"] == "metrics.roc_auc"
        assert not row["passed"], f"{path.name} fooled the grader: {row}"
        assert row["score"] <= earned + 1e-12, f"{path.name} earned {row['score']} > {earned}"


def test_a_right_answer_still_passes_and_the_class_summary_names_the_missed_case(tmp_path):
    right = grade_notebook(notebook(tmp_path / "right.ipynb", "from bigtrain_lab.grading import check",
                                    RIGHT_AUC, 'check("metrics.roc_auc", roc_auc)'))
    assert right.passed, right.checks
    assert right.checks[0]["first_failing_case"] is None

    def wrong(case: str) -> NotebookReport:
        return NotebookReport("w.ipynb", "ok", checks=[{"exercise_id": "metrics.roc_auc", "passed": False,
                                                        "score": 0.1, "feedback": "", "first_failing_case": case}])

    summary = class_summary([right, wrong("ties"), wrong("only one class present"), wrong("ties")])
    assert summary == {"metrics.roc_auc": {"notebooks": 4, "passed": 1, "most_common_first_failure": "ties",
                                           "most_common_first_failure_count": 2}}


def test_a_candidate_that_hangs_or_swallows_the_interrupt_is_stopped(tmp_path):
    hang = notebook(tmp_path / "hang.ipynb", "from bigtrain_lab.grading import check",
                    "def roc_auc(y, s):\n    import signal\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "    while True:\n        pass",
                    "def regression_errors(t, p):\n    return 0.0, 0.0",
                    'if False:\n    check("metrics.roc_auc", roc_auc)\n    check("metrics.regression_errors", '
                    'regression_errors)')
    report = grade_notebook(hang, seed=SEED)
    rows = {c["exercise_id"]: c for c in report.checks}
    assert not rows["metrics.roc_auc"]["passed"] and "time limit" in rows["metrics.roc_auc"]["feedback"]
    assert not rows["metrics.regression_errors"]["passed"]
    assert "given up" in rows["metrics.regression_errors"]["feedback"]


# ---- limits: each one trips, gets its row, and the run goes on -----------------------------------------------

def test_time_memory_and_output_limits_each_get_their_row(tmp_path, capsys):
    check_cell = 'check("metrics.roc_auc", roc_auc)'
    paths = [
        notebook(tmp_path / "a_slow.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC,
                 "import time\ntime.sleep(120)", check_cell),
        notebook(tmp_path / "b_greedy.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC,
                 "import numpy as np\nhog = np.ones(3 * 2**30 // 8)  # 3 GB, touched", check_cell),
        notebook(tmp_path / "c_chatty.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC,
                 "for i in range(20000):\n    print('x' * 100)", check_cell),
        notebook(tmp_path / "d_good.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC, check_cell),
    ]
    out = tmp_path / "grades.json"
    code = main(["grade", *map(str, paths), "--timeout", "25", "--memory-mb", "1500", "--output-mb", "0.5",
                 "--json", str(out), "--no-progress"])
    assert code == 1
    data = json.loads(out.read_text())
    by_name = {Path(n["path"]).name: n for n in data["notebooks"]}
    assert by_name["a_slow.ipynb"]["status"] == "timeout"
    assert by_name["b_greedy.ipynb"]["status"] == "memory limit"
    assert "1500 MB" in by_name["b_greedy.ipynb"]["message"]
    assert by_name["c_chatty.ipynb"]["status"] == "output limit"
    for name in ("a_slow.ipynb", "b_greedy.ipynb", "c_chatty.ipynb"):
        assert by_name[name]["checks"][0]["feedback"].startswith("this check never ran")
    assert by_name["d_good.ipynb"]["passed"]  # the run went on after three stopped kernels
    assert data["limits"] == {"timeout_s": 25.0, "memory_mb": 1500, "output_bytes": 500000, "sandbox": False}
    assert data["class_summary"]["metrics.roc_auc"] == {
        "notebooks": 4, "passed": 1, "most_common_first_failure": None, "most_common_first_failure_count": 0}
    text = capsys.readouterr().out
    for status in ("[timeout]", "[memory limit]", "[output limit]"):
        assert status in text
    assert "no sandbox" in text


# ---- where the kernel runs ---------------------------------------------------------------------------------

def test_the_kernel_runs_in_a_scratch_folder_with_its_own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "do-not-leak")
    path = notebook(tmp_path / "probe.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC,
                    "import os, pathlib\n"
                    "assert 'INSTRUCTOR_TOKEN' not in os.environ\n"
                    f"assert pathlib.Path.cwd() != pathlib.Path({str(tmp_path)!r})\n"
                    "pathlib.Path('left-behind.txt').write_text('x')\n"
                    "pathlib.Path('~/home-file.txt').expanduser().write_text('x')",
                    'check("metrics.roc_auc", roc_auc)')
    report = grade_notebook(path)
    assert report.status == "ok" and report.passed, (report.message, report.checks)
    assert not (tmp_path / "left-behind.txt").exists()
    assert not (Path.home() / "home-file.txt").exists()


needs_sandbox = pytest.mark.skipif(bool(sandbox_problem()), reason=f"no sandbox here: {sandbox_problem()}")


@needs_sandbox
def test_sandbox_stops_writes_outside_reads_of_siblings_and_sockets(tmp_path):
    sibling = tmp_path / "sibling.ipynb"
    sibling.write_text("another student's work")
    outside = tmp_path / "escaped.txt"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    attacks = {
        "write": f"open({str(outside)!r}, 'w').write('escaped')",
        "read": f"print(open({str(sibling)!r}).read())",
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)",
    }
    limits = Limits(timeout=120, sandbox=True)
    try:
        for name, attack in attacks.items():
            path = notebook(tmp_path / f"attack_{name}.ipynb", "from bigtrain_lab.grading import check",
                            RIGHT_AUC, attack, 'check("metrics.roc_auc", roc_auc)')
            report = grade_notebook(path, limits=limits)
            assert report.status == "cell error", (name, report.status, report.message)
            assert any(e in report.message for e in ("OSError", "FileNotFoundError", "PermissionError",
                                                     "ConnectionRefusedError")), (name, report.message)
            assert report.checks[0]["passed"]  # the function itself is right, and is graded as such
    finally:
        server.close()
    assert not outside.exists()
    # without --sandbox the same write is not contained: say so instead of pretending
    open_report = grade_notebook(tmp_path / "attack_write.ipynb")
    assert open_report.status == "ok" and outside.exists()


def test_sandbox_refused_with_a_reason_where_it_cannot_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("shutil.which", lambda name: None)
    path = notebook(tmp_path / "x.ipynb", "from bigtrain_lab.grading import check", RIGHT_AUC,
                    'check("metrics.roc_auc", roc_auc)')
    assert main(["grade", str(path), "--sandbox", "--no-progress"]) == 2
    assert "bubblewrap" in capsys.readouterr().err


# ---- forbidden imports -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cells", "reason"), [
    (["from sklearn import metrics", "def roc_auc(y, s):\n    return metrics.roc_auc_score(y, s)"],
     "uses metrics.roc_auc_score (sklearn.metrics"),
    (["import sklearn.metrics as skm", "def helper(y, s):\n    return skm.roc_auc_score(y, s)",
      "def roc_auc(y, s):\n    return helper(y, s)"], "uses skm.roc_auc_score"),
    (["def roc_auc(y, s):\n    from bigtrain_lab.grading import get_exercise\n"
      "    return get_exercise('metrics.roc_auc').reference(y, s)"], "bigtrain_lab.grading.get_exercise"),
    (["from sklearn.metrics import roc_auc_score\nprint(roc_auc_score([0, 1], [0, 1]))  # a demo, not graded",
      "def roc_auc(y, s):\n    return 0.5"], None),
])
def test_forbidden_imports_are_found_in_the_graded_cells_only(cells, reason):
    from bigtrain_lab.grading.imports import forbidden_use

    found = forbidden_use(cells, "roc_auc", "metrics.roc_auc")
    assert (found is None) if reason is None else (reason in found), found


def test_the_solutions_use_no_forbidden_import(root):
    from bigtrain_lab.grading.imports import forbidden_use

    for path in sorted((root / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, 4)
        sources = [c.source if c.cell_type == "code" else "" for c in nb.cells]
        for exercise_id, expression in checked_functions(nb).items():
            assert forbidden_use(sources, expression, exercise_id) is None, (path.name, exercise_id)


def test_a_forbidden_import_fails_the_row_with_the_reason(tmp_path):
    path = notebook(tmp_path / "sklearn.ipynb", "from bigtrain_lab.grading import check",
                    "from sklearn.metrics import roc_auc_score\n"
                    "def roc_auc(y_true, y_score):\n"
                    "    if len(set(map(int, y_true))) < 2:\n"
                    "        raise ValueError('needs both classes')  # sklearn now warns and returns nan\n"
                    "    return roc_auc_score(y_true, y_score)",
                    'check("metrics.roc_auc", roc_auc)')
    [row] = grade_notebook(path).checks
    assert not row["passed"] and "forbidden import" in row["feedback"] and "sklearn.metrics" in row["feedback"]
    [row] = grade_notebook(path, forbid_imports=False).checks
    assert row["passed"]


def test_parse_python_tries_again_after_cpython_311s_ast_depth_race(monkeypatch):
    import ast

    from bigtrain_lab.grading import imports

    real = ast.parse
    calls = []

    def flaky(source, mode="exec"):  # the race: another thread threw off the shared depth counter
        calls.append(source)
        if len(calls) < 3:
            raise SystemError("AST constructor recursion depth mismatch (before=147, after=195)")
        return real(source, mode=mode)

    monkeypatch.setattr(imports.ast, "parse", flaky)
    assert isinstance(imports.parse_python("x = 1"), ast.Module) and len(calls) == 3
    assert imports.parse_cell("import sklearn.metrics")[0] == "import sklearn.metrics\n"

    def always(source, mode="exec"):
        raise SystemError("AST constructor recursion depth mismatch (before=1, after=2)")

    monkeypatch.setattr(imports.ast, "parse", always)
    with pytest.raises(SystemError, match="mismatch"):  # a few tries, then the error is the caller's
        imports.parse_python("x = 1")

    def other(source, mode="exec"):
        calls.append("other")
        raise SystemError("something else")

    calls.clear()
    monkeypatch.setattr(imports.ast, "parse", other)
    with pytest.raises(SystemError, match="something else"):  # any other SystemError is not retried
        imports.parse_python("x = 1")
    assert calls == ["other"]
