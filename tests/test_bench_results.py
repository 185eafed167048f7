"""Bench conditions (bench/conditions.py) and the lessons' reader (bigtrain_lab.bench_results).

A bench records the machine and the load average before and after it measured; a result measured on a
loaded machine (load average above the core count) or without conditions is refused by ``read_bench``.
"""

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bigtrain_lab.bench_results import check_conditions, describe_conditions, read_bench

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


def _load_bench_module(name: str):
    """bench/NAME.py as a module, without putting bench/ (augment.py, graphs.py, ...) on sys.path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_conditions = _load_bench_module("conditions")
Conditions, save_result = bench_conditions.Conditions, bench_conditions.save_result

HELPERS = {"conditions.py"}  # bench/ modules that are not benches
BENCH_SCRIPTS = sorted(p for p in BENCH_DIR.glob("*.py") if p.name not in HELPERS and not p.name.startswith("_"))
CONDITION_KEYS = {"cpu", "cores", "torch_threads", "torch", "python", "load_before", "load_after", "loaded",
                  "wall_seconds", "command"}


def run(machine, before: float, after: float, **start) -> Conditions:
    machine(before)
    conditions = Conditions.start(**start)
    machine(after)
    return conditions.finish()


# ---- Conditions -----------------------------------------------------------------------------------------

def test_an_idle_run_records_its_conditions(machine):
    import torch

    c = run(machine, 0.4, 0.9, threads=1, command="python bench/x.py")
    d = c.as_dict()
    assert set(d) >= CONDITION_KEYS
    assert (d["cores"], d["torch_threads"], d["torch"], d["command"]) == (2, 1, torch.__version__, "python bench/x.py")
    assert (d["load_before"], d["load_after"], d["loaded"], c.loaded) == (0.4, 0.9, False, False)
    assert d["wall_seconds"] >= 0 and d["cpu"] and d["python"].count(".") == 2
    json.dumps(d)  # JSON-ready


@pytest.mark.parametrize(("before", "after"), [(2.5, 0.5), (0.5, 3.5), (3.0, 3.0)])
def test_a_load_above_the_core_count_before_or_after_the_benchs_own_workers_is_loaded(machine, before, after):
    c = run(machine, before, after, threads=1)
    assert c.loaded and c.as_dict()["loaded"] is True


def test_the_benchs_own_workers_do_not_make_it_loaded(machine):
    assert not run(machine, 2.0, 2.0, threads=1).loaded
    assert not run(machine, 0.3, 2.9, threads=1).loaded  # one busy thread of its own on 2 cores
    assert run(machine, 0.3, 3.1, threads=1).loaded
    assert not run(machine, 0.3, 3.9, threads=1, workers=2).loaded  # two DDP ranks
    assert run(machine, 0.3, 4.1, threads=1, workers=2).as_dict()["workers"] == 2


def test_threads_default_to_torchs_and_the_command_to_this_process(machine, monkeypatch):
    import torch

    monkeypatch.setattr(sys, "argv", ["/somewhere/bench/augment.py", "--fast", "--out-dir", "/tmp/a b"])
    machine(0.1)
    d = Conditions.start().as_dict()
    assert d["torch_threads"] == torch.get_num_threads()
    assert d["command"] == "python bench/augment.py --fast --out-dir '/tmp/a b'"


def test_no_load_average_on_this_os_is_recorded_as_none(monkeypatch):
    def missing():
        raise OSError("no load average")

    monkeypatch.setattr(os, "getloadavg", missing)
    c = Conditions.start().finish()
    assert (c.load_before, c.load_after, c.loaded) == (None, None, False)


# ---- save_result ----------------------------------------------------------------------------------------

def test_save_result_writes_the_result_and_its_conditions(machine, tmp_path, capsys):
    c = run(machine, 0.4, 0.9, threads=1, command="python bench/demo.py")
    path = save_result("demo", {"ms": np.float32(1.5), "rows": [1, 2]}, c, out_dir=tmp_path / "out")
    assert path == tmp_path / "out" / "demo.json"
    saved = json.loads(path.read_text())
    assert saved == {"ms": 1.5, "rows": [1, 2], "conditions": c.as_dict()}
    assert [p.name for p in path.parent.iterdir()] == ["demo.json"]  # the temporary file was renamed
    assert "WARNING" not in capsys.readouterr().err


def test_save_result_warns_loudly_on_a_loaded_machine(machine, tmp_path, capsys):
    c = run(machine, 3.5, 1.0, command="python bench/demo.py")
    path = save_result("demo", {"x": 1}, c, out_dir=tmp_path)
    assert json.loads(path.read_text())["conditions"]["loaded"] is True
    err = capsys.readouterr().err
    assert "WARNING: LOADED MACHINE" in err and "3.5 -> 1.0 on 2 cores" in err and "python bench/demo.py" in err


def test_save_result_finishes_unfinished_conditions_and_replaces_an_old_result(machine, tmp_path):
    (tmp_path / "demo.json").write_text('{"old": true}')
    machine(0.3)
    c = Conditions.start()
    saved = json.loads(save_result("demo", {"new": True}, c, out_dir=tmp_path).read_text())
    assert "old" not in saved and saved["conditions"]["wall_seconds"] is not None
    assert saved["conditions"]["load_after"] == 0.3


def test_save_result_defaults_to_bench_results():
    assert bench_conditions.RESULTS_DIR == BENCH_DIR / "results"


# ---- read_bench / describe_conditions --------------------------------------------------------------------

def test_read_bench_returns_an_idle_result(machine, tmp_path):
    path = save_result("demo", {"ms": 2.0}, run(machine, 0.4, 0.9), out_dir=tmp_path)
    assert read_bench(path)["ms"] == 2.0
    assert read_bench(str(path))["conditions"]["loaded"] is False


def test_read_bench_refuses_a_loaded_result(machine, tmp_path):
    path = save_result("demo", {"ms": 2.0}, run(machine, 12.8, 11.0, command="python bench/demo.py"),
                       out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"loaded machine \(load 12.8 > 2 cores\).*re-run `python bench/demo.py` "
                                         r"on an idle machine"):
        read_bench(path)


def test_read_bench_refuses_a_result_without_conditions(tmp_path):
    path = tmp_path / "augment.json"
    path.write_text(json.dumps({"machine": {"cpu": "x"}, "images_per_second": {}}))
    with pytest.raises(ValueError, match=r"no conditions.*re-run `python bench/augment.py` on an idle machine"):
        read_bench(path)


def test_read_bench_without_a_loaded_flag_judges_the_loads():
    with pytest.raises(ValueError, match="loaded machine"):
        check_conditions({"conditions": {"cores": 2, "load_before": 0.5, "load_after": 2.5}}, "demo")
    assert check_conditions({"conditions": {"cores": 2, "load_before": 0.5, "load_after": 1.5}}, "demo")


def test_read_bench_on_a_missing_file_names_the_bench(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/graphs.py"):
        read_bench(tmp_path / "graphs.json")


def test_describe_conditions():
    c = {"cpu": "AMD EPYC", "cores": 2, "torch_threads": 1, "torch": "2.13.0+cpu", "gpu": None,
         "load_before": 0.4, "load_after": 0.9, "loaded": False}
    assert describe_conditions({"conditions": c}) == "AMD EPYC, 2 cores, 1 thread, torch 2.13.0+cpu, load 0.4 -> 0.9"
    c.update(torch_threads=2, gpu="NVIDIA H100", load_after=None)
    assert describe_conditions({"conditions": c}) == ("AMD EPYC, 2 cores, 2 threads, torch 2.13.0+cpu, NVIDIA H100, "
                                                      "load 0.4 -> ?")
    assert describe_conditions({"machine": "x86_64"}) == "conditions not recorded"


def test_describe_conditions_of_a_saved_result(machine, tmp_path):
    path = save_result("demo", {}, run(machine, 0.25, 0.5, threads=1), out_dir=tmp_path)
    line = describe_conditions(read_bench(path))
    assert line.endswith(", 2 cores, 1 thread, torch " + json.loads(path.read_text())["conditions"]["torch"]
                         + ", load 0.25 -> 0.5")


# ---- every bench uses it ---------------------------------------------------------------------------------

def _imports_conditions(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.module == "conditions"
               and {"Conditions", "save_result"} <= {a.name for a in n.names} for n in ast.walk(tree))


def _calls(tree: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
               for n in ast.walk(tree))


def _writes_a_machine_key(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "machine"
                                               for k in n.keys) for n in ast.walk(tree))


def test_there_are_benches():
    assert {"augment.py", "graphs.py", "train_gpt.py"} <= {p.name for p in BENCH_SCRIPTS}


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda p: p.stem)
def test_every_bench_saves_through_conditions(script):
    tree = ast.parse(script.read_text(encoding="utf-8"))
    assert _imports_conditions(tree), f"{script.name}: add `from conditions import Conditions, save_result`"
    assert _calls(tree, "save_result"), f"{script.name}: save the result with save_result(...)"
    assert "Conditions.start(" in script.read_text(encoding="utf-8"), f"{script.name}: call Conditions.start"
    assert not _writes_a_machine_key(tree), f"{script.name}: the machine goes in 'conditions', not 'machine'"


#: Runs ``<script> --help`` for every bench script given on its command line, in ONE process (torch and the
#: rest are imported once, not once per script), and prints {name: [exit code, stdout, stderr]} as JSON.
_HELP_ALL = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, sys.argv[1])
out = {}
for script in sys.argv[2:]:
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, "--help"]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException as error:
            code, _ = 1, stderr.write(repr(error))
    out[script] = [code, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bench_help() -> dict[str, list]:
    out = subprocess.run([sys.executable, "-c", _HELP_ALL, str(BENCH_DIR), *map(str, BENCH_SCRIPTS)],
                         capture_output=True, text=True, timeout=300, cwd=BENCH_DIR.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda p: p.stem)
def test_every_bench_has_help_and_an_out_dir(script, bench_help):
    code, stdout, stderr = bench_help[str(script)]
    assert code == 0, stderr[-2000:]
    assert "--out-dir" in stdout


def test_quote_bench_prints_the_conditions_or_why_not(tmp_path, capsys):
    from bigtrain_lab.bench_results import quote_bench

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"x": 1, "conditions": {"cpu": "AMD EPYC", "cores": 2, "torch_threads": 1,
                                                        "torch": "2.13.0+cpu", "load_before": 0.2,
                                                        "load_after": 1.1, "loaded": False,
                                                        "command": "python bench/good.py"}}))
    assert quote_bench(good)["x"] == 1
    assert "measured by `python bench/good.py` on AMD EPYC, 2 cores" in capsys.readouterr().out
    loaded = tmp_path / "loaded.json"
    loaded.write_text(json.dumps({"x": 1, "conditions": {"cores": 2, "load_before": 12.8, "load_after": 3.0,
                                                          "loaded": True}}))
    assert quote_bench(loaded) is None and quote_bench(tmp_path / "missing.json") is None
    out = capsys.readouterr().out
    assert "not quoted: bench result 'loaded' was recorded on a loaded machine" in out and "not found" in out


def test_readme_quotes_the_recipes_bench():
    """README's recipe comparison is bench/results/recipes.json's, rounded as written."""
    saved = read_bench(BENCH_DIR / "results" / "recipes.json")
    loss = {run["recipe"]: run["final_val_loss"] for run in saved["runs"]}
    readme = (BENCH_DIR.parent / "README.md").read_text(encoding="utf-8")
    assert f"validation loss {loss['kit']:.3f} vs {loss['nanogpt']:.3f}" in readme
