"""Forbidden imports, for classrooms: an exercise that asks for ``roc_auc`` is not answered by importing
``sklearn.metrics``. ``bigtrain-lab grade`` reports a failed row naming the import when a graded cell uses
one (``--allow-imports`` turns this off); ``check()`` in a notebook does not police it.

Graded cells are found statically (``ast``): the cell that defines the function a notebook passes to
``check``, and, transitively, the cells that define the names it uses. A use is an ``import`` / ``from
... import`` of a forbidden module (or of a name inside it), or a dotted access such as
``sklearn.metrics.roc_auc_score`` through a module imported anywhere in the notebook. This is a policy
check that catches the honest shortcut, not a security boundary: code that builds module names at run
time (``importlib.import_module("skl" + "earn")``) is not seen.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable

#: Exercise id pattern -> modules (or names inside them) a graded cell may not use.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "*": ("bigtrain_lab.grading.registry", "bigtrain_lab.grading.exercises", "bigtrain_lab.grading.get_exercise"),
    "metrics.*": ("sklearn.metrics", "bigtrain_lab.metrics"),
    "schedules.*": ("torch.optim.lr_scheduler", "bigtrain_lab.schedules"),
    "optim.*": ("torch.optim", "bigtrain_lab.optim"),
    "preprocess.*": ("sklearn.preprocessing", "bigtrain_lab.preprocess"),
    "imbalance.*": ("sklearn.utils.class_weight", "bigtrain_lab.imbalance"),
    "labels.*": ("bigtrain_lab.labels",),
    "augment.*": ("bigtrain_lab.augment",),
    "memory.*": ("bigtrain_lab.memory",),
    "precision.*": ("bigtrain_lab.precision", "torch.amp", "torch.cuda.amp"),
    "attention.*": ("bigtrain_lab.attention", "torch.nn.functional.scaled_dot_product_attention"),
    "debugging.*": ("bigtrain_lab.debugging", "torch.autograd.gradcheck", "torch.func"),
    "distributed.shard_indices": ("torch.utils.data.DistributedSampler", "torch.utils.data.distributed"),
    "distributed.ring_allreduce": ("bigtrain_lab.distributed.allreduce.ring_allreduce", "torch.distributed"),
    "compress.*": ("bigtrain_lab.compress", "torch.ao", "torch.nn.utils.prune"),
    "explain.exact_shapley": ("shap", "bigtrain_lab.explain"),
    "explain.lime_tabular": ("lime", "bigtrain_lab.explain"),
    "explain.integrated_gradients": ("captum", "bigtrain_lab.explain"),
    "ensemble.*": ("bigtrain_lab.ensemble", "sklearn.ensemble", "sklearn.model_selection.cross_val_predict",
                   "torch.optim.swa_utils"),
    "hpo.*": ("bigtrain_lab.hpo", "optuna", "scipy.stats.loguniform", "scipy.stats.reciprocal"),
    "regularization.*": ("bigtrain_lab.regularization",),
    "regularization.inverted_dropout": ("torch.nn.functional.dropout", "torch.nn.Dropout", "torch.dropout"),
    "regularization.label_smoothing_cross_entropy": ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"),
    "transfer.*": ("bigtrain_lab.transfer.freezing", "bigtrain_lab.transfer.strategies"),
    "lightweight.*": ("bigtrain_lab.lightweight",),
    "llm.*": ("bigtrain_lab.llm",),
    "llm.bpe_merges": ("tokenizers",),
    "llm.online_softmax_attention": ("torch.nn.functional.scaled_dot_product_attention",),
}


def forbidden_for(exercise_id: str) -> tuple[str, ...]:
    """The modules and names the graded cells of ``exercise_id`` may not use."""
    out: list[str] = []
    for pattern, names in FORBIDDEN.items():
        if fnmatch.fnmatchcase(exercise_id, pattern):
            out += [n for n in names if n not in out]
    return tuple(out)


def _under(dotted: str, forbidden: Iterable[str]) -> str | None:
    for name in forbidden:
        if dotted == name or dotted.startswith(name + "."):
            return name
    return None


_PARSE_TRIES = 5


def parse_python(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, tried again when CPython 3.11 raises "AST constructor recursion depth mismatch".

    3.11's AST constructor keeps one depth counter for the whole interpreter (cpython gh-106905), which
    another thread building an AST at the same moment throws off (3.11 parses source lines to underline
    them in tracebacks; a grader runs notebooks on threads): the source is not at fault, a second try
    parses it (seen once in a full test run, in the grader's import check)."""
    for _ in range(_PARSE_TRIES - 1):
        try:
            return ast.parse(source, mode=mode)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(source, mode=mode)


def parse_cell(source: str) -> tuple[str, ast.Module] | None:
    """A code cell as plain Python (IPython's magics and shell escapes turned into calls) and its syntax
    tree; None for a cell that is not Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        python = TransformerManager().transform_cell(source)
        return python, parse_python(python)
    except (SyntaxError, ValueError):
        return None


def _aliases(trees: Iterable[ast.Module]) -> dict[str, str]:
    """Local name -> the module (or module.name) it was imported as, over the whole notebook."""
    aliases: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _uses(tree: ast.AST, aliases: dict[str, str], forbidden: tuple[str, ...]) -> str | None:
    """The first forbidden module or name a tree imports or reaches through a dotted access."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if hit := _under(a.name, forbidden):
                    return f"import {a.name} ({hit} is not allowed)"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                for dotted in (node.module, f"{node.module}.{a.name}"):
                    if hit := _under(dotted, forbidden):
                        return f"from {node.module} import {a.name} ({hit} is not allowed)"
        elif isinstance(node, ast.Attribute | ast.Name) and (dotted := _dotted(node)):
            base, _, rest = dotted.partition(".")
            if base in aliases:
                full = aliases[base] + (f".{rest}" if rest else "")
                if hit := _under(full, forbidden):
                    return f"uses {dotted} ({hit} is not allowed)"
    return None


def forbidden_use(cell_sources: list[str], expression: str, exercise_id: str) -> str | None:
    """Why the graded cells of ``exercise_id`` break its import policy ('' or None when they do not).

    ``expression`` is what the notebook passed to ``check`` (a function's name, usually)."""
    forbidden = forbidden_for(exercise_id)
    if not forbidden:
        return None
    trees = [parsed[1] if (parsed := parse_cell(s)) else None for s in cell_sources]
    aliases = _aliases(t for t in trees if t is not None)
    defined = {i: _defined_names(t) for i, t in enumerate(trees) if t is not None}
    try:
        checked = parse_python(expression, mode="eval")
    except SyntaxError:
        checked = None
    wanted = {n.id for n in ast.walk(checked) if isinstance(n, ast.Name)} if checked else set()
    cells: list[int] = []
    while wanted:
        name = wanted.pop()
        for i in sorted(defined):
            if name in defined[i] and i not in cells:
                cells.append(i)
                wanted |= {n.id for n in ast.walk(trees[i]) if isinstance(n, ast.Name)} - set().union(
                    *(defined[c] for c in cells))
    for i in cells:
        tree = trees[i]
        # only what the definitions in this cell contain: a demo line beside them is not graded
        graded = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
                                                         | ast.Assign | ast.AnnAssign | ast.Import
                                                         | ast.ImportFrom)]
        for node in graded:
            if reason := _uses(node, aliases, forbidden):
                return f"cell {i + 1}: {reason}"
    if checked is not None and (reason := _uses(checked, aliases, forbidden)):
        return f"the checked expression {reason}"
    return None
