"""Attention-map explorer of lesson 04: pick a layer, a head (or their mean) and a query position.

``attention_view`` is the plain function (maps, tokens, layer, head, position -> heatmap data and
numbers) that the unit tests call; ``AttentionExplorer`` only draws what it returns: two IntSliders
("layer", "position"), a Dropdown "head", an HTML summary ``bt-attention-summary`` and a plotly
FigureWidget with a heatmap trace "attention", a rectangle shape "chosen query" around the chosen row,
a bar trace "row" (the chosen query's weights) and a dashed line shape "uniform" over the keys it may see
(the weight each would get from a uniform row).

The heatmap's colour is each weight relative to a uniform row, on a log2 scale (``AttentionView.relative``):
with a causal mask query 0 can only attend to itself (weight 1.0) and the first rows have large weights
whatever the model learnt, so a colour scale of raw weights is set by those trivial rows and leaves the
rest nearly white. Weight x (keys the query may see) is 1 for a uniform row at every position, so the
colour shows where each query looks more (blue) or less (red) than uniformly; hovering shows the weight.
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

#: the heatmap's colour range, log2 of weight / uniform weight: 1/8x (red) to 8x (blue)
LOG2_RANGE = 3.0
_FLOOR = 2.0**-30  # a visible key whose weight underflowed to 0 gets this instead of log2(0)

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
    (0 = looks at one key, ln(position + 1) = uniform over the keys it may see). ``visible``: how many
    keys each query may see (``i + 1`` for query ``i`` when the maps are causal, else T); ``relative``:
    ``log2(z * visible)``, the weight relative to a uniform row (0 = uniform), NaN where the mask hides
    the key."""

    layer: int
    head: int | None
    position: int
    z: np.ndarray
    row: np.ndarray
    top_keys: list[tuple[int, str, float]]
    entropy: float
    labels: list[str]
    visible: np.ndarray
    relative: np.ndarray

    @property
    def uniform(self) -> float:
        """The weight each visible key would get from a uniform chosen query: 1 / its visible keys."""
        return 1.0 / float(self.visible[self.position])


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
    causal = not np.triu(maps[layer], k=1).any()  # every head's upper triangle is exactly 0
    allowed = np.tril(np.ones((T, T), dtype=bool)) if causal else np.ones((T, T), dtype=bool)
    visible = allowed.sum(axis=1)
    with np.errstate(invalid="ignore"):
        relative = np.where(allowed, np.log2(np.maximum(z, _FLOOR) * visible[:, None]), np.nan)
    return AttentionView(
        layer=layer, head=head, position=position, z=z, row=row,
        top_keys=[(int(j), tokens[j], float(row[j])) for j in order],
        entropy=float(-(positive * np.log(positive)).sum()),
        labels=display_tokens(tokens), visible=visible, relative=relative)


def summary_html(view: AttentionView) -> str:
    """The query, its top keys and the entropy of its weights, as HTML."""
    head = "mean over heads" if view.head is None else f"head {view.head}"
    keys = " · ".join(f"{escape(view.labels[j])} {w:.2f}" for j, _, w in view.top_keys)
    return (f'<div class="bt-attention-summary">layer {view.layer}, {head}: query '
            f"<b>{escape(view.labels[view.position])}</b> attends to {keys} "
            f"(entropy {view.entropy:.2f} nats; uniform would be {np.log(view.visible[view.position]):.2f})</div>")


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
        fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.2,
                            subplot_titles=("weight vs uniform (log2 colour; hover: weight)",
                                            "the chosen query's weights"))
        heat_domain = fig.layout.xaxis.domain
        ticks = np.arange(-LOG2_RANGE, LOG2_RANGE + 1)
        fig.add_trace(go.Heatmap(
            z=view.relative, customdata=view.z, x=view.labels, y=view.labels, name="attention",
            colorscale="RdBu", zmid=0, zmin=-LOG2_RANGE, zmax=LOG2_RANGE, hoverongaps=False,
            hovertemplate="query %{y}<br>key %{x}<br>weight %{customdata:.3f}<extra></extra>",
            colorbar={"x": heat_domain[1] + 0.01, "xanchor": "left", "len": 0.9, "thickness": 12,
                      "tickvals": ticks, "ticktext": [_ratio_label(t) for t in ticks],
                      "title": {"text": "vs<br>uniform", "side": "top", "font": {"size": 11}}}), row=1, col=1)
        fig.add_trace(go.Bar(x=view.labels, y=view.row, name="row", marker_color="#2166ac",
                             hovertemplate="key %{x}<br>weight %{y:.3f}<extra></extra>"), row=1, col=2)
        fig.add_shape(type="rect", xref="x", yref="y", x0=-0.5, x1=len(view.labels) - 0.5, y0=position - 0.5,
                      y1=position + 0.5, line={"color": "black", "width": 2}, name="chosen query")
        fig.add_shape(type="line", xref="x2", yref="y2", x0=-0.5, x1=0.5, y0=0, y1=0,
                      line={"color": "grey", "dash": "dash"}, name="uniform")
        fig.update_yaxes(autorange="reversed", tickfont={"size": 9}, row=1, col=1)
        fig.update_xaxes(tickfont={"size": 9}, tickangle=-90, row=1, col=1)
        fig.update_xaxes(tickfont={"size": 9}, tickangle=-90, row=1, col=2)
        fig.update_yaxes(title_text="weight", row=1, col=2)
        fig.update_annotations(font={"size": 13})
        # no fixed width: the figure fills the output area instead of being clipped on its right
        fig.update_layout(height=540, autosize=True, showlegend=False,
                          margin={"l": 60, "r": 20, "t": 40, "b": 70})
        self.figure = go.FigureWidget(fig)
        self.figure.layout.width = None
        super().__init__(children=[widgets.HBox([self.layer, self.head]), self.position, self.summary,
                                   self.figure], layout=widgets.Layout(width="100%"))
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
        visible = int(view.visible[view.position])
        with self.figure.batch_update():
            heatmap.z = view.relative
            heatmap.customdata = view.z
            bars.y = view.row
            self.figure.layout.yaxis2.range = [0, 1.1 * max(float(view.row.max()), view.uniform)]
            chosen, uniform = self.figure.layout.shapes
            chosen.update(y0=view.position - 0.5, y1=view.position + 0.5)
            uniform.update(x1=visible - 0.5, y0=view.uniform, y1=view.uniform)


def _ratio_label(log2_ratio: float) -> str:
    """A colour-bar tick: ``"8x"``, ``"1x"``, ``"1/8x"``."""
    ratio = 2.0**log2_ratio
    return f"{ratio:g}x" if ratio >= 1 else f"1/{1 / ratio:g}x"


def attention_explorer(maps: np.ndarray | torch.Tensor, tokens: list[str], *, layer: int = 0,
                       head: int | None = None, position: int | None = None) -> AttentionExplorer:
    """Interactive view of attention maps ``(n_layer, n_head, T, T)`` over ``tokens`` (T strings)."""
    return AttentionExplorer(maps, tokens, layer=layer, head=head, position=position)
