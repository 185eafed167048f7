"""Optimizer trajectories of lesson 02: real ``torch.optim`` optimizers on a 2-D loss surface.

``trajectory_view`` is the plain function (surface, optimizers, lr scale, steps -> trajectories and
numbers) that the unit tests call; ``OptimizerExplorer`` only draws what it returns: a contour plot of the
surface with one path per optimizer. Each optimizer starts from the surface's tuned lr
(``Surface.lrs``) times the "lr x" slider. DOM relied on by tests: a Dropdown "surface", a
SelectMultiple "optimizers", a FloatLogSlider "lr x", an IntSlider "steps", an HTML table
``bt-trajectories`` and a FigureWidget with one trace per optimizer, named after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from bigtrain_lab.optim import OPTIMIZER_NAMES, SURFACES, Trajectory, run_trajectory, surface_grid

__all__ = ["OptimizerExplorer", "TrajectoryView", "optimizer_explorer", "trajectory_figure", "trajectory_view"]

COLORS = dict(zip(OPTIMIZER_NAMES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                    "#e377c2", "#17becf"), strict=True))


@dataclass(frozen=True)
class TrajectoryView:
    """The runs on one surface: ``trajectories[name]`` for each optimizer asked for, in order."""

    surface: str
    lr_scale: float
    steps: int
    trajectories: dict[str, Trajectory]

    def table(self) -> list[dict]:
        """One row per optimizer: lr, final loss, final point, distance to the nearest minimum, diverged."""
        minima = np.array(SURFACES[self.surface].minima)
        rows = []
        for name, path in self.trajectories.items():
            end = path.xy[-1]
            rows.append({"optimizer": name, "lr": path.lr, "final_loss": path.final_loss,
                         "final_x": float(end[0]), "final_y": float(end[1]),
                         "distance_to_minimum": float(np.min(np.linalg.norm(minima - end, axis=1))),
                         "diverged": path.diverged})
        return rows


def trajectory_view(surface: str, optimizers=OPTIMIZER_NAMES, *, lr_scale: float = 1.0,
                    steps: int | None = None) -> TrajectoryView:
    """Run each optimizer from the surface's start at ``lr_scale`` times its tuned lr for ``steps`` steps
    (default: the surface's own number)."""
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; choose one of {sorted(SURFACES)}")
    unknown = [name for name in optimizers if name not in OPTIMIZER_NAMES]
    if unknown:
        raise ValueError(f"unknown optimizers {unknown}; choose from {OPTIMIZER_NAMES}")
    if not lr_scale > 0:
        raise ValueError(f"lr_scale must be > 0, got {lr_scale!r}")
    spec = SURFACES[surface]
    steps = spec.steps if steps is None else int(steps)
    paths = {name: run_trajectory(spec, name, lr=spec.lrs[name] * lr_scale, steps=steps) for name in optimizers}
    return TrajectoryView(surface, float(lr_scale), steps, paths)


def table_html(view: TrajectoryView) -> str:
    """The view's table as HTML."""
    rows = "".join(
        f'<tr data-optimizer="{r["optimizer"]}"><td>{r["optimizer"]}</td><td>{r["lr"]:.2g}</td>'
        f'<td>{r["final_loss"]:.3g}</td><td>({r["final_x"]:.3f}, {r["final_y"]:.3f})</td>'
        f'<td>{r["distance_to_minimum"]:.3g}</td><td>{"yes" if r["diverged"] else ""}</td></tr>'
        for r in view.table())
    return ('<table class="bt-trajectories"><tr><th>optimizer</th><th>lr</th><th>final loss</th>'
            f"<th>final point</th><th>to nearest minimum</th><th>diverged</th></tr>{rows}</table>")


def trajectory_figure(view: TrajectoryView, *, grid: int = 120) -> go.Figure:
    """Contour of log(1 + loss) with every optimizer's path and the minima."""
    spec = SURFACES[view.surface]
    xs, ys, z = surface_grid(spec, grid)
    fig = go.Figure(go.Contour(x=xs, y=ys, z=np.log1p(z), colorscale="Greys", showscale=False, ncontours=30,
                               name="log(1 + loss)", hoverinfo="skip", line={"width": 0.5}))
    for name in OPTIMIZER_NAMES:
        path = view.trajectories.get(name)
        xy = path.xy if path is not None else np.empty((0, 2))
        fig.add_scatter(x=xy[:, 0], y=xy[:, 1], mode="lines", name=name, visible=path is not None,
                        line={"color": COLORS[name], "width": 2})
    mins = np.array(spec.minima)
    fig.add_scatter(x=mins[:, 0], y=mins[:, 1], mode="markers", name="minimum",
                    marker={"symbol": "star", "size": 14, "color": "gold", "line": {"width": 1}})
    fig.add_scatter(x=[spec.start[0]], y=[spec.start[1]], mode="markers", name="start",
                    marker={"size": 10, "color": "black"})
    fig.update_xaxes(range=list(spec.x_range))
    fig.update_yaxes(range=list(spec.y_range))
    # two lines: the surface's description is too long for one line of an 860-pixel figure (Himmelblau's was cut)
    fig.update_layout(title={"text": f"{spec.name}, {view.steps} steps, lr x {view.lr_scale:g}<br>"
                                     f"<sup>{spec.description}</sup>", "x": 0.02, "xanchor": "left"},
                      height=500, width=860, margin={"l": 50, "r": 20, "t": 80, "b": 40})
    return fig


class OptimizerExplorer(widgets.VBox):
    """Dropdown ``surface``, SelectMultiple ``optimizers``, sliders ``lr x`` and ``steps``, an HTML table and
    a FigureWidget; any change re-runs ``trajectory_view`` and redraws the paths."""

    def __init__(self, surface: str = "rosenbrock", optimizers=OPTIMIZER_NAMES, *, lr_scale: float = 1.0,
                 steps: int | None = None) -> None:
        view = trajectory_view(surface, optimizers, lr_scale=lr_scale, steps=steps)
        self.surface = widgets.Dropdown(description="surface", options=sorted(SURFACES), value=surface)
        self.optimizers = widgets.SelectMultiple(description="optimizers", options=list(OPTIMIZER_NAMES),
                                                 value=tuple(optimizers), rows=len(OPTIMIZER_NAMES))
        self.lr_scale = widgets.FloatLogSlider(description="lr x", value=lr_scale, base=10, min=-2, max=1,
                                               step=0.05, continuous_update=False)
        self.steps = widgets.IntSlider(description="steps", value=view.steps, min=1, max=3000,
                                       continuous_update=False)
        self.table = widgets.HTML()
        self._quiet = False
        self.figure = go.FigureWidget(trajectory_figure(view))
        controls = widgets.HBox([self.optimizers, widgets.VBox([self.surface, self.lr_scale, self.steps])])
        super().__init__(children=[controls, self.table, self.figure])
        self.table.value = table_html(view)
        self.surface.observe(self._on_surface, names="value")
        for control in (self.optimizers, self.lr_scale, self.steps):
            control.observe(self._update, names="value")

    @property
    def view(self) -> TrajectoryView:
        """The runs for the controls' current values."""
        return trajectory_view(self.surface.value, self.optimizers.value, lr_scale=self.lr_scale.value,
                               steps=self.steps.value)

    def _on_surface(self, change: dict) -> None:
        self._quiet = True  # the steps slider moves to the new surface's own number: one redraw, not two
        try:
            self.steps.value = SURFACES[change["new"]].steps
        finally:
            self._quiet = False
        self._update(redraw=True)

    def _update(self, _change: dict | None = None, *, redraw: bool = False) -> None:
        if self._quiet:
            return
        view = self.view
        self.table.value = table_html(view)
        new = trajectory_figure(view)
        with self.figure.batch_update():
            if redraw:  # another surface: new contour and axes
                self.figure.layout = new.layout
                self.figure.data[0].update(new.data[0])
            for old, fresh in zip(self.figure.data[1:], new.data[1:], strict=True):
                old.x, old.y, old.visible = fresh.x, fresh.y, fresh.visible
            self.figure.layout.title = new.layout.title


def optimizer_explorer(surface: str = "rosenbrock", optimizers=OPTIMIZER_NAMES, *, lr_scale: float = 1.0,
                       steps: int | None = None) -> OptimizerExplorer:
    """Interactive optimizer trajectories on a 2-D surface (real torch.optim optimizers)."""
    return OptimizerExplorer(surface, optimizers, lr_scale=lr_scale, steps=steps)
