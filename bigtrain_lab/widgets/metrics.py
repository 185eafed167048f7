"""Decision-threshold explorer of the metrics lesson: a slider over a classifier's scores.

``threshold_view`` is the plain function (labels, scores, threshold -> numbers) that the unit tests call;
``ThresholdExplorer`` only draws what it returns. The DOM it produces is relied on by the browser test:
a FloatSlider described "threshold", an HTML table ``bt-confusion`` with ``data-cell`` = tp/fp/fn/tn
cells and a ``bt-scores`` line, and a plotly FigureWidget with traces "ROC", "PR", "current (ROC)" and
"current (PR)".
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from plotly.subplots import make_subplots
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from bigtrain_lab.metrics import threshold_metrics

__all__ = ["ThresholdExplorer", "ThresholdView", "confusion_table_html", "threshold_explorer",
           "threshold_view"]


_TABLE_CSS = (".bt-confusion th, .bt-confusion td {padding: 2px 12px; text-align: right} "
              ".bt-confusion td {font-family: monospace; border: 1px solid #ccc}")


@dataclass(frozen=True)
class ThresholdView:
    """Everything shown at one threshold (predict positive when score >= threshold)."""

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    fpr: float
    tpr: float
    accuracy: float


def threshold_view(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> ThresholdView:
    """Confusion counts and rates at ``threshold``; see ``bigtrain_lab.metrics.threshold_metrics``."""
    return ThresholdView(**threshold_metrics(y_true, y_score, threshold))


def confusion_table_html(view: ThresholdView) -> str:
    """The confusion matrix (rows: actual, columns: predicted) and the scores, as HTML."""
    return (
        f"<style>{_TABLE_CSS}</style>"
        f'<div class="bt-threshold-view">'
        f'<table class="bt-confusion">'
        f"<tr><th></th><th>predicted 1</th><th>predicted 0</th></tr>"
        f'<tr><th>actual 1</th><td data-cell="tp">{view.tp}</td><td data-cell="fn">{view.fn}</td></tr>'
        f'<tr><th>actual 0</th><td data-cell="fp">{view.fp}</td><td data-cell="tn">{view.tn}</td></tr>'
        f"</table>"
        f'<div class="bt-scores">threshold {view.threshold:.2f}: precision {view.precision:.3f} · '
        f"recall {view.recall:.3f} · F1 {view.f1:.3f} · accuracy {view.accuracy:.3f} · "
        f"FPR {view.fpr:.3f}</div>"
        f"</div>"
    )


def _curves_figure(y_true: np.ndarray, y_score: np.ndarray) -> go.FigureWidget:
    fpr, tpr, _ = roc_curve(y_true, y_score)
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"ROC curve (AUC {roc_auc_score(y_true, y_score):.3f})",
        f"precision-recall curve (AP {average_precision_score(y_true, y_score):.3f})"))
    fig.add_trace(go.Scatter(x=fpr, y=tpr, name="ROC", mode="lines"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], name="chance", mode="lines",
                             line={"dash": "dot", "color": "gray"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=recall, y=precision, name="PR", mode="lines"), row=1, col=2)
    marker = {"size": 12, "color": "crimson"}
    fig.add_trace(go.Scatter(x=[0.0], y=[0.0], name="current (ROC)", mode="markers", marker=marker),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[0.0], y=[0.0], name="current (PR)", mode="markers", marker=marker),
                  row=1, col=2)
    fig.update_xaxes(title_text="false positive rate", range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="true positive rate (recall)", range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="recall", range=[-0.02, 1.02], row=1, col=2)
    fig.update_yaxes(title_text="precision", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(height=380, width=860, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      showlegend=False)
    return go.FigureWidget(fig)


class ThresholdExplorer(widgets.VBox):
    """A VBox of ``slider`` (FloatSlider), ``table`` (HTML) and ``figure`` (plotly FigureWidget).

    Moving the slider recomputes ``threshold_view`` and updates the table and the two "current" markers.
    """

    def __init__(self, y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5) -> None:
        self.y_true = np.asarray(y_true)
        self.y_score = np.asarray(y_score, dtype=float)
        view = threshold_view(self.y_true, self.y_score, threshold)  # validates the inputs
        if self.y_score.min() < 0 or self.y_score.max() > 1:
            raise ValueError("threshold_explorer needs probabilities in [0, 1] (the slider's range); got "
                             f"scores in [{self.y_score.min():.4g}, {self.y_score.max():.4g}]")
        if len(np.unique(self.y_true)) < 2:
            raise ValueError("threshold_explorer needs both classes in y_true to draw the ROC and PR curves")
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.slider = widgets.FloatSlider(description="threshold", min=0.0, max=1.0, step=0.01,
                                          value=threshold, continuous_update=False,
                                          layout=widgets.Layout(width="480px"))
        self.table = widgets.HTML()
        self.figure = _curves_figure(self.y_true, self.y_score)
        super().__init__(children=[self.slider, self.table, self.figure])
        self._show(view)
        self.slider.observe(self._on_threshold, names="value")

    @property
    def view(self) -> ThresholdView:
        """The numbers at the slider's current threshold."""
        return threshold_view(self.y_true, self.y_score, self.slider.value)

    def _on_threshold(self, change: dict) -> None:
        self._show(threshold_view(self.y_true, self.y_score, change["new"]))

    def _show(self, view: ThresholdView) -> None:
        self.table.value = confusion_table_html(view)
        roc_marker, pr_marker = (next(self.figure.select_traces({"name": name}))
                                 for name in ("current (ROC)", "current (PR)"))
        with self.figure.batch_update():
            roc_marker.x, roc_marker.y = [view.fpr], [view.tpr]
            pr_marker.x, pr_marker.y = [view.recall], [view.precision]


def threshold_explorer(y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5) -> ThresholdExplorer:
    """Interactive view of a binary classifier's decision threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}, both classes present (use the validation split).
    y_score : array-like of shape (n_samples,)
        Predicted probabilities of class 1, in [0, 1].
    threshold : float
        Initial slider position.
    """
    return ThresholdExplorer(y_true, y_score, threshold=threshold)

