"""Widgets of the distributed lesson: a ring all-reduce stepper and a scaling-efficiency calculator.

``ring_frame(world_size, step)`` and ``scaling_curve(...)`` are the plain functions the unit tests call;
``RingStepper`` and ``ScalingCalculator`` only draw what they return.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.distributed.allreduce import data_parallel_step, ring_allreduce_steps

__all__ = ["RingFrame", "RingStepper", "ScalingCalculator", "ring_frame", "ring_stepper", "scaling_calculator",
           "scaling_curve"]

ALGORITHMS = ("ring", "parameter_server", "naive_ring")


@dataclass(frozen=True)
class RingFrame:
    """The ring after ``step`` steps: ``counts[r][c]`` = how many workers' chunk ``c`` is summed in worker
    ``r``'s copy (N = complete), ``labels[r][c]`` which ones ("0+2+3"), ``transfers`` the ``(src, dst,
    chunk)`` messages of this step, ``sent_fraction`` what each worker has sent so far, in tensors."""

    world_size: int
    step: int
    n_steps: int
    phase: str
    counts: list[list[int]]
    labels: list[list[str]]
    transfers: list[tuple[int, int, int]]
    sent_fraction: float
    caption: str


def ring_frame(world_size: int, step: int) -> RingFrame:
    """State ``step`` (0 .. 2(N-1)) of a ring all-reduce on ``world_size`` workers."""
    states = ring_allreduce_steps(world_size)
    if not 0 <= step < len(states):
        raise ValueError(f"step must be in [0, {len(states) - 1}] for {world_size} workers, got {step!r}")
    state = states[step]
    n = world_size
    counts = [[len(h) for h in row] for row in state.holdings]
    labels = [["+".join(map(str, sorted(h))) for h in row] for row in state.holdings]
    if step == 0:
        caption = f"start: each of the {n} workers holds its own gradient, split into {n} chunks"
    elif state.phase == "reduce-scatter":
        caption = (f"reduce-scatter step {step}/{n - 1}: every worker sends one chunk to its right neighbour, "
                   f"which ADDS it to its own copy")
    else:
        s = step - (n - 1)
        caption = (f"all-gather step {s}/{n - 1}: complete chunks are passed on and COPIED"
                   + (" - every worker now holds the full sum" if step == 2 * (n - 1) else ""))
    return RingFrame(n, step, 2 * (n - 1), state.phase, counts, labels, list(state.transfers),
                     step / n, caption)


#: characters per title line of the ring figure: at 13 px about 480 px, left of plotly's mode bar
_TITLE_CHARS = 80


def ring_cell_text(label: str, world_size: int) -> str:
    """What a heatmap cell shows: the workers summed in ("0+2+3") while that fits a cell at a legible
    size, else how many ("5 workers", "all 8"); the hover always shows the full list."""
    if len(label) <= 9:
        return label
    k = label.count("+") + 1
    return f"all {world_size}" if k == world_size else f"{k} workers"


def ring_title_lines(frame: RingFrame) -> list[str]:
    """The figure's title, wrapped so that no line is cut off: the step's caption, then the sends of this
    step and what each worker has sent so far."""
    n = frame.world_size
    sends = ", ".join(f"{s}→{d} (chunk {c})" for s, d, c in frame.transfers) or "none yet"
    sent = (f"each worker has sent {frame.sent_fraction:.2f} of the tensor so far "
            f"(2(N-1)/N = {2 * (n - 1) / n:.2f} at the end)")
    return [*textwrap.wrap(frame.caption, _TITLE_CHARS), *textwrap.wrap(f"sends this step: {sends}", _TITLE_CHARS),
            sent]


def ring_figure(frame: RingFrame) -> go.Figure:
    """Heatmap of workers x chunks, coloured by how many workers are summed in, with the step's sends."""
    n = frame.world_size
    lines = ring_title_lines(frame)
    fig = go.Figure(go.Heatmap(
        z=frame.counts, text=[[ring_cell_text(label, n) for label in row] for row in frame.labels],
        customdata=frame.labels, texttemplate="%{text}", textfont={"size": 12}, zmin=1, zmax=n,
        colorscale="Blues", x=[f"chunk {c}" for c in range(n)], y=[f"worker {r}" for r in range(n)], name="ring",
        colorbar={"title": {"text": "workers<br>summed"}},
        hovertemplate="%{y}, %{x}: %{customdata}<extra></extra>"))
    top = 30 + 18 * len(lines)
    fig.update_layout(title={"text": "<br>".join(lines), "font": {"size": 13}, "x": 0.01, "xanchor": "left",
                             "y": 1 - 10 / (top + 40 * n + 30), "yanchor": "top"},
                      yaxis={"autorange": "reversed"}, height=top + 40 * n + 30, width=800,
                      margin={"l": 80, "r": 20, "t": top, "b": 30})
    return fig


class RingStepper(widgets.VBox):
    """Sliders for the number of workers and the step; the heatmap follows."""

    def __init__(self, world_size: int = 4, step: int = 0) -> None:
        frame = ring_frame(world_size, step)
        self.workers = widgets.IntSlider(description="workers", min=2, max=8, value=world_size,
                                         continuous_update=False)
        self.step = widgets.IntSlider(description="step", min=0, max=frame.n_steps, value=step,
                                      continuous_update=False)
        self.figure = go.FigureWidget(ring_figure(frame))
        super().__init__(children=[widgets.HBox([self.workers, self.step]), self.figure])
        self.workers.observe(self._on_workers, names="value")
        self.step.observe(self._redraw, names="value")

    @property
    def frame(self) -> RingFrame:
        return ring_frame(self.workers.value, self.step.value)

    def _on_workers(self, change: dict) -> None:
        self.step.max = 2 * (change["new"] - 1)
        self.step.value = min(self.step.value, self.step.max)
        self._redraw()

    def _redraw(self, change: dict | None = None) -> None:
        new = ring_figure(self.frame)
        with self.figure.batch_update():
            self.figure.data[0].update(new.data[0])
            self.figure.layout.update(new.layout)


def ring_stepper(world_size: int = 4, step: int = 0) -> RingStepper:
    """The ring all-reduce, step by step: which chunk every worker holds, summed over which workers."""
    return RingStepper(world_size, step)


# ---- scaling efficiency -------------------------------------------------------------------------------------

def scaling_curve(n_params: float, *, compute_s: float, bandwidth_gbs: float, latency_us: float = 5.0,
                  grad_bytes: int = 4, overlap: float = 1.0, algorithm: str = "ring",
                  max_world: int = 64) -> dict[str, list[float]]:
    """``data_parallel_step`` for world sizes 1, 2, 4, ... ``max_world``: lists ``world_size``,
    ``step_ms``, ``comm_ms``, ``exposed_ms``, ``efficiency`` and ``speedup``. Bandwidth in GB/s
    (1e9 bytes/s) per link, latency in microseconds."""
    if max_world < 1:
        raise ValueError(f"max_world must be >= 1, got {max_world!r}")
    worlds = [1]
    while worlds[-1] * 2 <= max_world:
        worlds.append(worlds[-1] * 2)
    out: dict[str, list[float]] = {k: [] for k in ("world_size", "step_ms", "comm_ms", "exposed_ms",
                                                   "efficiency", "speedup")}
    for n in worlds:
        r = data_parallel_step(n, n_params, compute_s=compute_s, bandwidth=bandwidth_gbs * 1e9,
                               latency=latency_us * 1e-6, grad_bytes=grad_bytes, overlap=overlap,
                               algorithm=algorithm)
        out["world_size"].append(n)
        out["step_ms"].append(1e3 * r["step_s"])
        out["comm_ms"].append(1e3 * r["comm_s"])
        out["exposed_ms"].append(1e3 * r["exposed_comm_s"])
        out["efficiency"].append(r["efficiency"])
        out["speedup"].append(r["speedup"])
    return out


def scaling_figure(curve: dict[str, list[float]], title: str = "") -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("scaling efficiency (1 = perfect)",
                                                        "step time (ms): compute + exposed all-reduce"))
    w = curve["world_size"]
    fig.add_trace(go.Scatter(x=w, y=curve["efficiency"], mode="lines+markers", name="efficiency"), row=1, col=1)
    compute = [s - e for s, e in zip(curve["step_ms"], curve["exposed_ms"], strict=True)]
    fig.add_trace(go.Bar(x=[str(n) for n in w], y=compute, name="compute"), row=1, col=2)
    fig.add_trace(go.Bar(x=[str(n) for n in w], y=curve["exposed_ms"], name="exposed all-reduce"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="workers", row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title_text="workers", row=1, col=2)
    fig.update_layout(barmode="stack", height=360, width=840, title=title,
                      margin={"l": 50, "r": 20, "t": 70, "b": 40})
    return fig


class ScalingCalculator(widgets.VBox):
    """Model size, link bandwidth, latency, compute time, overlap and algorithm -> efficiency and step time."""

    def __init__(self, *, n_params_m: float = 124.0, compute_ms: float = 100.0, bandwidth_gbs: float = 25.0,
                 latency_us: float = 5.0, grad_bytes: int = 2, overlap: float = 1.0, max_world: int = 64) -> None:
        style = {"description_width": "150px"}
        layout = widgets.Layout(width="430px")  # two columns of controls fit a 900 px output area
        self.params = widgets.FloatLogSlider(description="parameters (M)", value=n_params_m, base=10, min=0,
                                             max=5, style=style, layout=layout, continuous_update=False)
        self.compute = widgets.FloatLogSlider(description="compute / step (ms)", value=compute_ms, base=10,
                                              min=0, max=4, style=style, layout=layout, continuous_update=False)
        self.bandwidth = widgets.FloatLogSlider(description="link bandwidth (GB/s)", value=bandwidth_gbs, base=10,
                                                min=-1, max=3, style=style, layout=layout,
                                                continuous_update=False)
        self.latency = widgets.FloatLogSlider(description="latency (µs)", value=latency_us, base=10, min=-1,
                                              max=3, style=style, layout=layout, continuous_update=False)
        self.grad_bytes = widgets.Dropdown(description="gradient bytes", options=[("fp32 (4)", 4), ("bf16 (2)", 2)],
                                           value=grad_bytes, style=style)
        self.overlap = widgets.FloatSlider(description="overlap with backward", value=overlap, min=0, max=1,
                                           step=0.05, style=style, layout=layout, continuous_update=False)
        self.algorithm = widgets.Dropdown(description="algorithm", options=ALGORITHMS, value="ring", style=style)
        self.max_world = max_world
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget(scaling_figure(self.curve))
        controls = [self.params, self.compute, self.bandwidth, self.latency, self.grad_bytes, self.overlap,
                    self.algorithm]
        super().__init__(children=[widgets.HBox([widgets.VBox(controls[:4]), widgets.VBox(controls[4:])]),
                                   self.summary, self.figure])
        for control in controls:
            control.observe(self._redraw, names="value")
        self._redraw()

    @property
    def curve(self) -> dict[str, list[float]]:
        return scaling_curve(self.params.value * 1e6, compute_s=self.compute.value / 1e3,
                             bandwidth_gbs=self.bandwidth.value, latency_us=self.latency.value,
                             grad_bytes=self.grad_bytes.value, overlap=self.overlap.value,
                             algorithm=self.algorithm.value, max_world=self.max_world)

    def _redraw(self, change: dict | None = None) -> None:
        curve = self.curve
        new = scaling_figure(curve)
        with self.figure.batch_update():
            for old, fresh in zip(self.figure.data, new.data, strict=True):
                old.x, old.y = fresh.x, fresh.y
        last = len(curve["world_size"]) - 1
        self.summary.value = (f"<b>{curve['world_size'][last]} workers</b>: all-reduce "
                              f"{curve['comm_ms'][last]:.1f} ms, exposed {curve['exposed_ms'][last]:.1f} ms, "
                              f"step {curve['step_ms'][last]:.1f} ms, efficiency "
                              f"{curve['efficiency'][last]:.0%}, speed-up {curve['speedup'][last]:.1f}x")


def scaling_calculator(**kwargs) -> ScalingCalculator:
    """Interactive latency-bandwidth model of data-parallel scaling (see ``allreduce.data_parallel_step``)."""
    return ScalingCalculator(**kwargs)
