"""A cached sweep of three regularizer strengths on the overfit task, and the data the lesson's explorer draws.

``sweep(task, weight_decays, dropouts, smoothings, epochs=...)`` trains one run per grid point (AdamW's
decoupled ``weight_decay`` x dropout p x label smoothing) and keeps, per point, the curves, the final numbers
and a histogram of the weights: plain data (a dict, JSON-ready), which the widget and the unit tests read.
``explorer_data(sweep, weight_decay=..., dropout=..., label_smoothing=...)`` is the plain function behind
``bigtrain_lab.widgets.regularization.RegularizationExplorer``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from bigtrain_lab.regularization.experiment import OverfitTask, RegConfig, RunResult, train_run
from bigtrain_lab.regularization.penalties import weight_values

__all__ = ["HIST_EDGES", "explorer_data", "grid_config", "point_key", "run_record", "sweep"]

#: Bin edges of the weight histograms: |w| beyond 0.3 is rare in these runs and is counted in the outer bins.
HIST_EDGES = tuple(float(x) for x in np.linspace(-0.3, 0.3, 41))


def grid_config(weight_decay: float, dropout: float, label_smoothing: float) -> RegConfig:
    """The ``RegConfig`` of one grid point: AdamW with ``weight_decay`` (plain Adam at 0, the same update),
    ``dropout``, ``label_smoothing``."""
    return RegConfig(optimizer="adamw" if weight_decay else "adam", weight_decay=float(weight_decay), dropout=float(dropout),
                     label_smoothing=float(label_smoothing))


def point_key(weight_decay: float, dropout: float, label_smoothing: float) -> str:
    """The sweep's key of a grid point, e.g. ``"wd=1|p=0.5|ls=0.1"``."""
    return f"wd={float(weight_decay):g}|p={float(dropout):g}|ls={float(label_smoothing):g}"


def run_record(run: RunResult) -> dict[str, Any]:
    """A run as plain data: per-epoch curves, the final numbers and the weight histogram (``HIST_EDGES``)."""
    h = run.history
    w = weight_values(run.model).numpy()
    counts, _ = np.histogram(np.clip(w, HIST_EDGES[0], HIST_EDGES[-1]), bins=np.asarray(HIST_EDGES))
    return {"epochs": list(h.epochs), "train_loss": list(h.train_loss), "val_loss": list(h.val_loss),
            "train_acc": list(h.train_acc), "val_acc": list(h.val_acc), "final": dict(run.final),
            "hist_counts": [int(c) for c in counts]}


def sweep(task: OverfitTask, weight_decays: Sequence[float], dropouts: Sequence[float],
          smoothings: Sequence[float], *, epochs: int, seed: int = 0,
          known: Mapping[RegConfig, RunResult] | None = None,
          progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train ``train_run(task, grid_config(wd, p, ls), epochs=epochs, seed=seed)`` at every grid point (runs
    already in ``known``, keyed by their config and trained with the same settings, are reused) and return
    ``{"weight_decay": [...], "dropout": [...], "label_smoothing": [...], "epochs": epochs, "hist_edges": [...],
    "runs": {point_key(...): run_record(...)}}``. ``progress`` wraps the grid (e.g. ``tqdm``)."""
    grid = list(itertools.product(weight_decays, dropouts, smoothings))
    runs = {}
    for wd, p, ls in (progress(grid) if progress is not None else grid):
        config = grid_config(wd, p, ls)
        run = (known or {}).get(config) or train_run(task, config, epochs=epochs, seed=seed, **kwargs)
        runs[point_key(wd, p, ls)] = run_record(run)
    return {"weight_decay": [float(x) for x in weight_decays], "dropout": [float(x) for x in dropouts],
            "label_smoothing": [float(x) for x in smoothings], "epochs": epochs, "hist_edges": list(HIST_EDGES),
            "runs": runs}


def explorer_data(sweep_result: Mapping[str, Any], *, weight_decay: float, dropout: float,
                  label_smoothing: float, metric: str = "loss") -> dict[str, Any]:
    """What the explorer shows for one grid point, next to the unregularized run (the grid's first point,
    every strength at its smallest value): ``curves`` (``{"train": ..., "val": ...}`` of ``metric`` "loss" or
    "acc" per epoch, for the point and for the ``baseline``), the weight histograms (``hist``: centres and
    counts of both), the final numbers of both and a one-line ``summary``. ``KeyError`` names the grid values
    when the point is not in the sweep."""
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    key = point_key(weight_decay, dropout, label_smoothing)
    runs = sweep_result["runs"]
    if key not in runs:
        raise KeyError(f"{key} is not in the sweep: weight_decay {sweep_result['weight_decay']}, dropout "
                       f"{sweep_result['dropout']}, label_smoothing {sweep_result['label_smoothing']}")
    base_key = point_key(min(sweep_result["weight_decay"]), min(sweep_result["dropout"]),
                         min(sweep_result["label_smoothing"]))
    point, base = runs[key], runs[base_key]
    edges = np.asarray(sweep_result["hist_edges"])
    centres = [float(c) for c in (edges[:-1] + edges[1:]) / 2]
    f, b = point["final"], base["final"]
    summary = (f"val accuracy {f['val_accuracy']:.3f} (unregularized {b['val_accuracy']:.3f}) · train - val accuracy "
               f"{f['gap']:.3f} ({b['gap']:.3f}) · final val loss {f['val_loss']:.3f} ({b['val_loss']:.3f}) · "
               f"weight norm {f['norm']:.1f} ({b['norm']:.1f})")
    return {"key": key, "epochs": point["epochs"], "metric": metric,
            "curves": {"train": point[f"train_{metric}"], "val": point[f"val_{metric}"]},
            "baseline_curves": {"train": base[f"train_{metric}"], "val": base[f"val_{metric}"]},
            "hist": {"centres": centres, "counts": point["hist_counts"], "baseline_counts": base["hist_counts"]},
            "final": dict(f), "baseline_final": dict(b), "summary": summary}
