"""Write tests/forged/*.ipynb: notebooks whose metrics.roc_auc is WRONG (always 0.5) but which try to make the
grader believe otherwise. Each must grade as failed."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KS = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
WRONG = ("def roc_auc(y_true, y_score):\n"
         "    if len(set(map(int, y_true))) < 2:\n"
         "        raise ValueError('needs both classes')\n"
         "    return 0.5  # wrong: the AUC of a coin, whatever the scores")
CHECK = 'check("metrics.roc_auc", roc_auc)'
IMPORT = "from bigtrain_lab.grading import check"

forgeries = {
    "forge_results_file": ("appends a passing result to the file the old grader read (BIGTRAIN_LAB_RESULTS)", [
        IMPORT, WRONG, CHECK,
        "import json, os, time\n"
        "entry = {'time': time.time(), 'exercise_id': 'metrics.roc_auc', 'passed': True, 'score': 1.0,\n"
        "         'feedback': 'PASSED metrics.roc_auc: all 21 cases passed.'}\n"
        "path = os.environ.get('BIGTRAIN_LAB_RESULTS')\n"
        "if path:\n"
        "    with open(path, 'a') as f:\n"
        "        f.write(json.dumps(entry) + '\\n')\n"
        "print('PASSED metrics.roc_auc: all 21 cases passed.')",
    ]),
    "patch_reference": ("replaces the exercise's reference and comparison inside the kernel", [
        IMPORT, WRONG,
        "import dataclasses\n"
        "from bigtrain_lab.grading import registry\n"
        "ex = registry.get_exercise('metrics.roc_auc')\n"
        "registry._REGISTRY['metrics.roc_auc'] = dataclasses.replace(\n"
        "    ex, reference=lambda *a, **k: 0.5, compare=lambda got, expected: None,\n"
        "    make_cases=lambda rng: [c for c in ex.make_cases(rng) if c.raises is None])",
        CHECK,
    ]),
    "replace_check": ("replaces check (in the package and in the notebook) with one that always passes", [
        IMPORT, WRONG,
        "import bigtrain_lab.grading as grading\n"
        "from bigtrain_lab.grading.result import CheckResult\n"
        "import importlib, json, os\n"
        "def check(exercise_id, candidate, **kw):\n"
        "    result = CheckResult(exercise_id, True, 1.0, f'PASSED {exercise_id}: all cases passed.', 21, 21)\n"
        "    if os.environ.get('BIGTRAIN_LAB_RESULTS'):  # where the old grader read its verdicts\n"
        "        with open(os.environ['BIGTRAIN_LAB_RESULTS'], 'a') as f:\n"
        "            f.write(json.dumps({'time': 0, **result.to_dict()}, default=str) + '\\n')\n"
        "    return result\n"
        "grading.check = importlib.import_module('bigtrain_lab.grading.check').check = check",
        CHECK,
    ]),
    "patch_numpy_torch": ("patches numpy, math and torch so that every comparison says 'equal'", [
        IMPORT, WRONG,
        "import math, numpy as np, torch\n"
        "np.isclose = lambda *a, **k: np.True_\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\n"
        "math.isclose = lambda *a, **k: True\n"
        "torch.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True",
        CHECK,
    ]),
    "patch_grading_modules": ("patches the comparators and the safe caller of the grading package", [
        IMPORT, WRONG,
        "import importlib\n"
        "from bigtrain_lab.grading import compare, sandbox\n"
        "check_module = importlib.import_module('bigtrain_lab.grading.check')\n"
        "compare.real = lambda **kw: (lambda got, expected: None)\n"
        "check_module._grade_case = lambda *a, **k: (None, False)  # every case 'passes'\n"
        "sandbox.same_value = lambda a, b: True",
        CHECK,
    ]),
    "lying_value": ("returns a float whose == and comparisons always say yes", [
        IMPORT,
        "class Liar(float):\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    def __sub__(self, other): return 0.0\n"
        "    def __rsub__(self, other): return 0.0\n"
        "    __hash__ = float.__hash__\n"
        "def roc_auc(y_true, y_score):\n"
        "    return Liar(0.5)",
        CHECK,
    ]),
    "input_transformer": ("rewrites every later cell (the grader's own code too) into a fake 'pass'", [
        IMPORT, WRONG, CHECK,
        "ip = get_ipython()\n"
        "ip.input_transformers_post.append(lambda lines: ['print(\"PASSED\")\\n'])",
    ]),
}

for name, (what, cells) in forgeries.items():
    nb = new_notebook(cells=[new_markdown_cell(f"# Forged: {what}\n\nThe function is wrong (`roc_auc` returns 0.5); "
                                               "`bigtrain-lab grade` must mark it failed.")]
                      + [new_code_cell(c) for c in cells], metadata={"kernelspec": KS})
    nbformat.write(nb, Path(__file__).parent / f"{name}.ipynb")
print(len(forgeries))
