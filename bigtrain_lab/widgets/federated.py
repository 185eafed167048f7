"""The federated viewer of lesson 12: pick how non-IID the clients are (Dirichlet alpha, from nearly IID at 100
to one or two classes per client at 0.1) and how many local steps each client takes per round; see the global
model's test accuracy per round against FedSGD's, each client's local model, and the clients' label mix.

``bigtrain_lab.federated.simulate.viewer_data`` is the plain function the unit tests call (it runs the
simulation on demand, well under a second, and caches it); ``FederatedViewer`` only draws it: two
SelectionSliders ("Dirichlet alpha", "local steps"), an HTML readout and a plotly FigureWidget (left:
accuracy per round; right: the clients' label histogram).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.federated.simulate import VIEWER_ALPHAS, VIEWER_LOCAL_STEPS, viewer_data

__all__ = ["FederatedViewer"]

_GLOBAL, _SGD, _CLIENT = "#1f77b4", "#7f7f7f", "#ff7f0e"


def _slider(description: str, values: Sequence[float], value: float, fmt: str) -> widgets.SelectionSlider:
    options = [(format(v, fmt), v) for v in values]
    return widgets.SelectionSlider(description=description, options=options, index=list(values).index(value),
                                   continuous_update=False, style={"description_width": "initial"},
                                   layout=widgets.Layout(width="400px"))


class FederatedViewer(widgets.VBox):
    """Accuracy per round of FedAvg's global model, of FedSGD and of each client's local model, for one
    Dirichlet alpha and number of local steps."""

    def __init__(self, *, alpha: float = 0.1, local_steps: int = 10, alphas: Sequence[float] = VIEWER_ALPHAS,
                 local_steps_options: Sequence[int] = VIEWER_LOCAL_STEPS, n_clients: int = 5, rounds: int = 20,
                 seed: int = 0) -> None:
        self.settings = {"n_clients": n_clients, "rounds": rounds, "seed": seed}
        self.alpha = _slider("Dirichlet alpha (IID ... non-IID)", list(alphas), alpha, "g")
        self.local_steps = _slider("local steps per round", list(local_steps_options), local_steps, "d")
        self.readout = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                            subplot_titles=("test accuracy per round", "examples per class and client"))
        fig.update_layout(width=820, height=430, margin={"l": 60, "r": 30, "t": 70, "b": 50},
                          legend={"orientation": "h", "y": -0.18})
        fig.update_xaxes(title_text="round", row=1, col=1)
        fig.update_yaxes(title_text="accuracy", range=[0, 1], row=1, col=1)
        fig.update_xaxes(title_text="class", dtick=1, row=1, col=2)
        fig.update_yaxes(title_text="client", dtick=1, autorange="reversed", row=1, col=2)
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[widgets.HBox([self.alpha, self.local_steps]), self.readout, self.figure])
        self._show()
        for control in (self.alpha, self.local_steps):
            control.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return viewer_data(float(self.alpha.value), int(self.local_steps.value), **self.settings)

    def _show(self) -> None:
        d = self.data()
        self.readout.value = d["summary"]
        traces = [go.Scatter(x=d["rounds"], y=acc, name="each client's local model", mode="lines",
                             legendgroup="clients", showlegend=k == 0, line={"color": _CLIENT, "width": 1},
                             opacity=0.5, hovertemplate=f"client {k}, round %{{x}}: %{{y:.3f}}<extra></extra>")
                  for k, acc in enumerate(d["clients"])]
        traces += [go.Scatter(x=d["rounds"], y=d["fedsgd"], name="FedSGD (same lr)", mode="lines",
                              line={"color": _SGD, "dash": "dot", "width": 2}),
                   go.Scatter(x=d["rounds"], y=d["global"], name="FedAvg global model", mode="lines+markers",
                              line={"color": _GLOBAL, "width": 3})]
        heat = go.Heatmap(z=d["histogram"], x=list(range(len(d["histogram"][0]))), y=list(range(len(d["sizes"]))),
                          colorscale="Blues", showscale=False, texttemplate="%{z}", textfont={"size": 9},
                          hovertemplate="client %{y}, class %{x}: %{z} examples<extra></extra>")
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces, rows=1, cols=1)
            self.figure.add_trace(heat, row=1, col=2)
            self.figure.layout.title = f"alpha {d['alpha']:g}, {d['local_steps']} local steps"
