"""The ensemble builder of lesson 11: tick members, see what voting gains and how much the members disagree.

``bigtrain_lab.ensemble.ensemble_report(member_probas, y, selected)`` is the plain function (the members'
predicted probabilities and a selection -> accuracies and the disagreement matrix) that the unit tests call;
``EnsembleBuilder`` only draws what it returns: one checkbox per member, a summary line, bars of each selected
member's accuracy next to the hard and the soft vote's, and the members' pairwise disagreement as a heatmap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.ensemble.classic import ensemble_report

__all__ = ["EnsembleBuilder"]

MEMBER_COLOUR, VOTE_COLOURS = "#8c9bb5", {"hard vote": "#ff7f0e", "soft vote": "#2ca02c"}
ROW_WIDTH = 800  # px of checkboxes per row (a JupyterLab output area is about 848 px wide)


def _box_width(name: str) -> int:
    """Width in px of a checkbox labelled ``name``: the box and about 7 px per character."""
    return 36 + 7 * len(name)


class EnsembleBuilder(widgets.VBox):
    """One checkbox per member of ``member_probas`` (name -> ``predict_proba`` on the samples of ``y``, class
    indices), a summary and a figure: accuracy of each ticked member, of their hard and soft vote (left), and
    their pairwise disagreement (right). ``selected``: the members ticked at first (default: all)."""

    def __init__(self, member_probas: Mapping[str, np.ndarray], y: np.ndarray, *,
                 selected: Sequence[str] | None = None) -> None:
        self.member_probas, self.y = dict(member_probas), np.asarray(y)
        ticked = list(self.member_probas) if selected is None else list(selected)
        ensemble_report(self.member_probas, self.y, ticked or list(self.member_probas)[:1])  # validates
        # each box as wide as its name (ipywidgets' default 300 px would put two on a row), rows packed to fit
        self.checks = {name: widgets.Checkbox(value=name in ticked, description=name, indent=False,
                                              layout=widgets.Layout(width=f"{_box_width(name)}px"))
                       for name in self.member_probas}
        self.summary = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.16,
                            subplot_titles=("test accuracy", "disagreement between members"))
        fig.add_bar(x=[], y=[], marker={"color": []}, showlegend=False, row=1, col=1)
        fig.add_heatmap(z=[], x=[], y=[], zmin=0, zmax=1, colorscale="Blues", texttemplate="%{z:.2f}",
                        colorbar={"title": {"text": "share"}, "len": 0.9}, row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
        fig.update_layout(height=380, width=840, margin={"l": 50, "r": 20, "t": 50, "b": 110})
        self.figure = go.FigureWidget(fig)
        rows, width = [[]], 0
        for name, check in self.checks.items():
            if rows[-1] and width + _box_width(name) > ROW_WIDTH:
                rows, width = [*rows, []], 0
            rows[-1].append(check)
            width += _box_width(name)
        rows = [widgets.HBox(row) for row in rows]
        super().__init__(children=[*rows, self.summary, self.figure])
        self._show()
        for check in self.checks.values():
            check.observe(lambda _change: self._show(), names="value")

    @property
    def selected(self) -> list[str]:
        """The ticked members, in the order of ``member_probas``."""
        return [name for name, check in self.checks.items() if check.value]

    def _show(self) -> None:
        selected = self.selected
        if not selected:
            self.summary.value = "<i>tick at least one member</i>"
            with self.figure.batch_update():
                bars, heat = self.figure.data
                bars.x, bars.y, bars.text, bars.marker.color = [], [], [], []
                heat.z, heat.x, heat.y = [], [], []
                self.figure.layout.yaxis.range = [0.0, 1.0]
            return
        r = ensemble_report(self.member_probas, self.y, selected)
        best = max(r["members"], key=r["members"].get)
        self.summary.value = (
            f"{len(selected)} member{'s' if len(selected) > 1 else ''}: hard vote <b>{r['hard']:.3f}</b>, "
            f"soft vote <b>{r['soft']:.3f}</b>, best member {best} {r['members'][best]:.3f}; "
            f"mean pairwise disagreement {r['mean_disagreement']:.3f}; "
            f"at least one member right on {r['oracle']:.3f} of the samples")
        names = [*selected, "hard vote", "soft vote"]
        values = [*r["members"].values(), r["hard"], r["soft"]]
        low = max(0.0, min(values) - 0.05)
        with self.figure.batch_update():
            bars = self.figure.data[0]
            bars.x, bars.y = names, values
            bars.marker.color = [VOTE_COLOURS.get(n, MEMBER_COLOUR) for n in names]
            bars.text = [f"{v:.3f}" for v in values]
            self.figure.layout.yaxis.range = [low, 1.0]
            heat = self.figure.data[1]
            heat.z, heat.x, heat.y = r["disagreement"].round(3).tolist(), selected, selected
