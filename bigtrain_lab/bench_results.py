"""Read a saved bench result for a lesson, refusing numbers that were measured on a loaded machine; and write
one (``write_json``, shared by the benches' ``save_result`` and a lesson's full-run figures).

Every ``bench/NAME.py`` saves ``bench/results/NAME.json`` with a ``"conditions"`` entry (CPU, cores, torch
threads, versions, the 1-minute load average before and after, ``"loaded"``). A lesson quotes a figure only
through ``read_bench``, and prints ``describe_conditions`` next to it. The package locates no file of the
checkout itself: the notebook passes the path (from ``notebooks/``: ``"../bench/results/NAME.json"``).

>>> result = {"conditions": {"cpu": "AMD EPYC", "cores": 2, "torch_threads": 1, "torch": "2.13.0+cpu",
...                          "load_before": 0.4, "load_after": 0.9, "loaded": False}}
>>> describe_conditions(result)
'AMD EPYC, 2 cores, 1 thread, torch 2.13.0+cpu, load 0.4 -> 0.9'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bigtrain_lab.files import write_atomic

__all__ = ["check_conditions", "describe_conditions", "is_loaded", "quote_bench", "read_bench", "write_json"]


def _rerun_command(result: dict[str, Any], stem: str) -> str:
    conditions = result.get("conditions")
    recorded = conditions.get("command") if isinstance(conditions, dict) else None
    return recorded or result.get("command") or f"python bench/{stem}.py"


def _max_load(conditions: dict[str, Any]) -> float | None:
    loads = [x for x in (conditions.get("load_before"), conditions.get("load_after")) if x is not None]
    return max(loads) if loads else None


def is_loaded(conditions: dict[str, Any]) -> bool:
    """``conditions["loaded"]``; where a result lacks it, max(load before, load after) > cores."""
    if "loaded" in conditions:
        return bool(conditions["loaded"])
    load, cores = _max_load(conditions), conditions.get("cores")
    return load is not None and cores is not None and load > cores


def check_conditions(result: dict[str, Any], name: str = "NAME") -> dict[str, Any]:
    """``result`` itself when it records its conditions and was measured on an idle machine; else ValueError.

    ``name``: the result file's stem, for the message."""
    conditions = result.get("conditions")
    rerun = f"re-run `{_rerun_command(result, name)}` on an idle machine"
    if not isinstance(conditions, dict):
        raise ValueError(f"bench result {name!r} records no conditions (machine, load average): {rerun}")
    if is_loaded(conditions):
        raise ValueError(f"bench result {name!r} was recorded on a loaded machine (load {_max_load(conditions)} > "
                         f"{conditions.get('cores', '?')} cores): {rerun}")
    return result


def read_bench(path: str | os.PathLike) -> dict[str, Any]:
    """The bench result saved at ``path``; ValueError when it has no conditions or they say it was loaded."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: run `python bench/{p.stem}.py` to make it")
    return check_conditions(json.loads(p.read_text(encoding="utf-8")), p.stem)


def _threads_text(n: Any) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def describe_conditions(result: dict[str, Any]) -> str:
    """One line for a lesson to print next to a quoted figure: CPU, cores, threads, torch, load before -> after."""
    c = result.get("conditions")
    if not isinstance(c, dict):
        return "conditions not recorded"
    parts = [str(c.get("cpu", "unknown CPU")), f"{c.get('cores', '?')} cores",
             _threads_text(c.get("torch_threads", "?")), f"torch {c.get('torch', '?')}"]
    if c.get("gpu"):
        parts.append(str(c["gpu"]))

    def fmt(x: Any) -> str:
        return "?" if x is None else f"{x:g}"

    parts.append(f"load {fmt(c.get('load_before'))} -> {fmt(c.get('load_after'))}")
    return ", ".join(parts)


def quote_bench(path: str | os.PathLike) -> dict[str, Any] | None:
    """For a lesson cell: the result at ``path`` after printing where and how it was measured, or None after
    printing why it cannot be quoted (missing, no conditions, or recorded on a loaded machine)."""
    try:
        result = read_bench(path)
    except (FileNotFoundError, ValueError) as why:
        print(f"not quoted: {why}")
        return None
    command = (result.get("conditions") or {}).get("command") or result.get("command") or Path(path).name
    print(f"measured by `{command}` on {describe_conditions(result)}")
    return result


def write_json(path: str | os.PathLike, document: dict[str, Any], *,
               default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``document`` as indented JSON to ``path`` (its folder made if needed) through a temporary file and
    a rename, so that a reader never sees half a file and a crash leaves the previous one intact.
    ``default``: as ``json.dumps``'s, for values JSON does not know. Returns the path."""
    text = json.dumps(document, indent=1, ensure_ascii=False, default=default) + "\n"
    return write_atomic(path, text.encode("utf-8"))
