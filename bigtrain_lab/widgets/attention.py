"""Attention-map explorer of lesson 04: pick a layer, a head (or their mean) and a query position.

``attention_view`` is the plain function (maps, tokens, layer, head, position -> heatmap data and
numbers) that the unit tests call; ``AttentionExplorer`` only draws what it returns: two IntSliders
("layer", "position"), a Dropdown "head", an HTML summary ``bt-attention-summary`` and a plotly
FigureWidget with a heatmap trace "attention" and a bar trace "row" (the chosen query's weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

__all__ = ["AttentionExplorer", "AttentionView", "attention_explorer", "attention_view", "display_tokens"]

_VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥"}


def display_tokens(tokens: list[str]) -> list[str]:
    """Tokens made visible and unique for plot axes: newline, space and tab get symbols, and each
    label is prefixed with its position (``"3:a"``)."""
    return [f"{i}:{''.join(_VISIBLE.get(c, c) for c in t)}" for i, t in enumerate(tokens)]


@dataclass(frozen=True)
class AttentionView:
    """What the explorer shows. ``z``: the (T, T) weights (rows: queries, columns: keys) of one head or
    the mean over heads (``head`` None); ``row``: query ``position``'s weights over the keys;
    ``top_keys``: its ``(key position, token, weight)`` largest first; ``entropy``: of ``row`` in nats
    (0 = looks at one key, ln(position + 1) = uniform over the keys it may see)."""

    layer: int
    head: int | None
    position: int
    z: np.ndarray
    row: np.ndarray
    top_keys: list[tuple[int, str, float]]
    entropy: float
    labels: list[str]


def attention_view(maps: np.ndarray | torch.Tensor, tokens: list[str], *, layer: int, head: int | None,
                   position: int, top_k: int = 5) -> AttentionView:
    """The view of ``maps`` ``(n_layer, n_head, T, T)`` (one sequence; e.g. ``attention_maps(model,
    idx)[:, 0]``) at ``layer``, ``head`` (None: mean over heads) and query ``position``."""
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if maps.ndim != 4 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"maps must have shape (n_layer, n_head, T, T), got {maps.shape}")
    n_layer, n_head, T, _ = maps.shape
    if len(tokens) != T:
        raise ValueError(f"got {len(tokens)} tokens for maps over T={T} positions")
    if not 0 <= layer < n_layer:
        raise ValueError(f"layer must be in [0, {n_layer}), got {layer}")
    if head is not None and not 0 <= head < n_head:
        raise ValueError(f"head must be None (mean) or in [0, {n_head}), got {head}")
    if not 0 <= position < T:
        raise ValueError(f"position must be in [0, {T}), got {position}")
    z = maps[layer].mean(axis=0) if head is None else maps[layer, head]
    row = z[position]
    order = np.argsort(-row, kind="stable")[:top_k]
    positive = row[row > 0]
    return AttentionView(
        layer=layer, head=head, position=position, z=z, row=row,
        top_keys=[(int(j), tokens[j], float(row[j])) for j in order],
        entropy=float(-(positive * np.log(positive)).sum()),
        labels=display_tokens(tokens))


def summary_html(view: AttentionView) -> str:
    """The query, its top keys and the entropy of its weights, as HTML."""
    head = "mean over heads" if view.head is None else f"head {view.head}"
    keys = " · ".join(f"{escape(view.labels[j])} {w:.2f}" for j, _, w in view.top_keys)
    return (f'<div class="bt-attention-summary">layer {view.layer}, {head}: query '
            f"<b>{escape(view.labels[view.position])}</b> attends to {keys} "
            f"(entropy {view.entropy:.2f} nats; uniform would be {np.log(view.position + 1):.2f})</div>")


class AttentionExplorer(widgets.VBox):
    """``layer`` (IntSlider), ``head`` (Dropdown: "mean" or a head index), ``position`` (IntSlider),
    ``summary`` (HTML) and ``figure`` (heatmap "attention" and bars "row")."""

    def __init__(self, maps: np.ndarray | torch.Tensor, tokens: list[str], *, layer: int = 0,
                 head: int | None = None, position: int | None = None) -> None:
        self.maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
        self.tokens = list(tokens)
        position = len(self.tokens) - 1 if position is None else position
        view = attention_view(self.maps, self.tokens, layer=layer, head=head, position=position)
        n_layer, n_head, T, _ = self.maps.shape
        self.layer = widgets.IntSlider(description="layer", min=0, max=n_layer - 1, value=layer,
                                       continuous_update=False)
        self.head = widgets.Dropdown(description="head", options=[("mean", -1)] + [(str(h), h) for h in range(n_head)],
                                     value=-1 if head is None else head)
        self.position = widgets.IntSlider(description="position", min=0, max=T - 1, value=position,
                                          continuous_update=False, layout=widgets.Layout(width="480px"))
        self.summary = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                            subplot_titles=("attention weights (rows: queries, columns: keys)",
                                            "the chosen query's weights"))
        fig.add_trace(go.Heatmap(z=view.z, x=view.labels, y=view.labels, name="attention", colorscale="Blues",
                                 zmin=0, zmax=1, showscale=False), row=1, col=1)
        fig.add_trace(go.Bar(x=view.labels, y=view.row, name="row"), row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=1)
        fig.update_yaxes(range=[0, 1], title_text="weight", row=1, col=2)
        fig.update_layout(height=520, width=1000, showlegend=False, margin={"l": 60, "r": 20, "t": 40, "b": 60})
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[widgets.HBox([self.layer, self.head]), self.position, self.summary,
                                   self.figure])
        self._show(view)
        for control in (self.layer, self.head, self.position):
            control.observe(self._on_change, names="value")

    @property
    def view(self) -> AttentionView:
        """The numbers for the controls' current values."""
        head = None if self.head.value == -1 else self.head.value
        return attention_view(self.maps, self.tokens, layer=self.layer.value, head=head,
                              position=self.position.value)

    def _on_change(self, change: dict) -> None:
        self._show(self.view)

    def _show(self, view: AttentionView) -> None:
        self.summary.value = summary_html(view)
        heatmap = next(self.figure.select_traces({"name": "attention"}))
        bars = next(self.figure.select_traces({"name": "row"}))
        with self.figure.batch_update():
            heatmap.z = view.z
            bars.y = view.row


def attention_explorer(maps: np.ndarray | torch.Tensor, tokens: list[str], *, layer: int = 0,
                       head: int | None = None, position: int | None = None) -> AttentionExplorer:
    """Interactive view of attention maps ``(n_layer, n_head, T, T)`` over ``tokens`` (T strings)."""
    return AttentionExplorer(maps, tokens, layer=layer, head=head, position=position)
