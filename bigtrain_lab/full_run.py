"""Figures a lesson's full run measured, kept so that the fast run (and every reader) quotes them from data.

A lesson's fast run (the tests) trains less than its full run (``BIGTRAIN_LAB_FAST=0``), and some findings
show only at full size. Instead of typing the full run's numbers into the markdown, the cell that measures
them hands them to ``FullRunFigures.show``: the full run saves them, with the conditions it ran under
(``bigtrain_lab.conditions``), to a JSON file beside the bench results; every run prints the recorded figures
under its own. The notebook passes the path (the package locates no file of the checkout):

    FULL = FullRunFigures("../bench/results/full_runs/02_optimizers_and_schedules.json", RUN)
    FULL.show("batch_scaling", {"batch 512, same lr": 0.563, ...}, "validation accuracy")

The fast run never writes the file; a full run on a loaded machine writes it marked ``loaded`` and the
figures are then refused (``bench_results.check_conditions``) until an idle full run replaces them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bigtrain_lab.bench_results import check_conditions, describe_conditions, write_json
from bigtrain_lab.budget import RunBudget
from bigtrain_lab.conditions import Conditions

__all__ = ["FullRunFigures"]


class FullRunFigures:
    """The figures of one notebook's full run, saved at ``path`` (one JSON file per notebook)."""

    def __init__(self, path: str | os.PathLike[str], run: RunBudget) -> None:
        self.path, self.run = Path(path), run
        command = f"BIGTRAIN_LAB_FAST=0 jupyter execute notebooks/{self.path.stem}.ipynb"
        self._conditions = None if run.fast else Conditions.start(command=command)

    def show(self, key: str, figures: Mapping[str, float], what: str = "", *, digits: int = 3) -> dict[str, float]:
        """Save ``figures`` under ``key`` when this is the full run; print the full run's recorded figures.

        ``figures``: name -> number, as this run measured them; ``what``: what the numbers are (printed);
        ``digits``: decimals kept and printed. Returns the recorded full-run figures ({} when none can be
        quoted, after printing why)."""
        if not key.isidentifier():
            raise ValueError(f"key must be an identifier, got {key!r}")
        rounded = {str(name): round(float(value), digits) for name, value in figures.items()}
        if not rounded:
            raise ValueError(f"no figures to show for {key!r}")
        if self._conditions is not None:
            self._save(key, rounded, what, digits)
        document = self._quotable(key)
        if document is None:
            return {}
        recorded = document["figures"][key]
        print(f"full run ({describe_conditions(document)}), {recorded['what'] or key}:")
        print("  " + " · ".join(f"{name} {value:.{recorded['digits']}f}" for name, value in recorded["figures"].items()))
        return dict(recorded["figures"])

    def recorded(self, key: str) -> dict[str, float]:
        """The full run's figures under ``key`` without printing them; KeyError when none are recorded."""
        entry = self._document().get("figures", {}).get(key)
        if entry is None:
            raise KeyError(f"{self.path.name} records no figures {key!r}: run the lesson with BIGTRAIN_LAB_FAST=0")
        return dict(entry["figures"])

    # ---- the file ------------------------------------------------------------------------------------

    def _document(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _quotable(self, key: str) -> dict[str, Any] | None:
        """The saved document when it records ``key`` and was measured idle; else None, after printing why."""
        document = self._document()
        entry = document.get("figures", {}).get(key)
        if entry is None:
            print(f"full run: no figures {key!r} recorded in {self.path}: run the lesson with BIGTRAIN_LAB_FAST=0")
            return None
        try:
            check_conditions(document, self.path.stem)
        except ValueError as why:
            print(f"full run: not quoted: {why}")
            return None
        return document

    def _save(self, key: str, figures: dict[str, float], what: str, digits: int) -> None:
        """Merge ``key`` into the file; the conditions span this run from its start to now."""
        document = self._document()
        if document.get("conditions", {}).get("started_at") != self._conditions.started_at:
            document = {"figures": {}}  # a new full run replaces the last one's figures, not merges with them
        document["figures"][key] = {"what": what, "digits": digits, "figures": figures}
        document["budget"] = dict(self.run.values)
        document["conditions"] = self._conditions.finish().as_dict()
        write_json(self.path, document)
