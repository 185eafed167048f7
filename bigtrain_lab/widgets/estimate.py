"""The widgets of lesson 15's planning notebook, each a thin view over a plain function the unit tests call
(``tests/test_widgets_estimate.py``):

* ``PlannerWidget`` over ``planner_state(...)``: a model preset (or layers / hidden / heads), sequence length,
  global batch, GPUs per node, nodes and hardware preset; a table of the best plans
  (``bigtrain_lab.estimate.planner.plans``: DP, TP, PP, ZeRO, micro-batch, memory per GPU, step time, MFU, fits)
  and, for the chosen row, a stacked bar of its memory per GPU by component against the GPU's memory.
* ``DrillWidget`` over ``new_drill_state(...)`` / ``check_drill_state(...)``: back-of-envelope questions of
  ``bigtrain_lab.estimate.drills`` (a "new question" button, the question, an answer box, "check" -> right or
  not, with the expected value and the formula), every graded attempt recorded in the review schedule
  (``drills.record``) so that misses come back sooner.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from bigtrain_lab.estimate import drills
from bigtrain_lab.estimate.planner import HARDWARE, MODELS, Assumptions, ModelShape, plans
from bigtrain_lab.memory import format_bytes
from bigtrain_lab.quiz import review

__all__ = ["DrillWidget", "PlannerWidget", "check_drill_state", "new_drill_state", "planner_state"]

GIB = 2**30
_COMPONENT_COLOURS = {"weights": "#1f77b4", "gradients": "#ff7f0e", "optimizer states": "#2ca02c",
                      "activations": "#d62728", "logits": "#9467bd"}
CUSTOM = "custom"


def _int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


# ---- planner -------------------------------------------------------------------------------------------------

def planner_state(model: str = "Llama-2 70B", *, layers: int | None = None, hidden: int | None = None,
                  heads: int | None = None, vocab: int = 32000, seq: int | None = None, global_batch: int = 1024,
                  gpus_per_node: int = 8, nodes: int = 8, hardware: str = "H100-SXM", recompute: str = "selective",
                  top: int = 10, chosen: int = 0) -> dict[str, Any]:
    """What the planner widget shows.

    ``model``: a preset of ``planner.MODELS`` or "custom" (then ``layers``, ``hidden``, ``heads``, ``vocab``
    give the shape, GPT-style: MLP 4h, tied embeddings). ``seq`` overrides the preset's sequence length;
    ``global_batch`` is in sequences. Returns ``rows`` (the first ``top`` plans, best first: fitting plans by step
    time, then the rest by memory), ``n_plans``, ``n_fit``, ``chosen`` (the row index shown in the bar chart,
    clamped), ``components`` (component -> GiB of the chosen plan), ``gpu_gib``, ``usable_gib``, ``params``,
    ``tokens_per_step`` and ``summary`` (HTML)."""
    if model == CUSTOM:
        if None in (layers, hidden, heads):
            raise ValueError("a custom model needs layers, hidden and heads")
        shape = ModelShape(layers, hidden, heads, vocab, seq or 2048, name="custom")
    elif model in MODELS:
        shape = MODELS[model]
        if seq is not None:
            shape = replace(shape, seq=_int("seq", seq))
    else:
        raise ValueError(f"model must be one of {[*MODELS, CUSTOM]}, got {model!r}")
    if hardware not in HARDWARE:
        raise ValueError(f"hardware must be one of {list(HARDWARE)}, got {hardware!r}")
    hw = replace(HARDWARE[hardware], gpus_per_node=_int("gpus_per_node", gpus_per_node))
    _int("top", top)
    assumptions = Assumptions(recompute=recompute)
    found = plans(shape, hw, _int("nodes", nodes), _int("global_batch", global_batch), assumptions=assumptions)
    rows = [e.row() for e in found[:top]]
    n_fit = sum(e.fits for e in found)
    state: dict[str, Any] = {"model": shape.name or model, "params": shape.params, "seq": shape.seq,
                             "gpus": nodes * gpus_per_node, "tokens_per_step": global_batch * shape.seq,
                             "rows": rows, "n_plans": len(found), "n_fit": n_fit,
                             "gpu_gib": hw.memory_bytes / GIB, "usable_gib": assumptions.usable_memory * hw.memory_bytes
                             / GIB, "hardware": hardware}
    if not found:
        state.update(chosen=None, components={}, summary=f"<b>no valid plan</b> for {nodes} x {gpus_per_node} GPUs "
                     f"and a global batch of {global_batch}: try a batch divisible by more data-parallel sizes")
        return state
    chosen = min(max(_int("chosen", chosen, 0), 0), len(rows) - 1)
    best = found[chosen]
    state["chosen"] = chosen
    state["components"] = {k: v / GIB for k, v in best.memory.items()}
    state["times"] = dict(best.times)
    p = best.plan
    fit = "fits" if best.fits else "<b style='color:#d62728'>does not fit</b>"
    state["summary"] = (
        f"<div>{html.escape(state['model'])}: {shape.params / 1e9:.1f}B parameters, {shape.seq} tokens x "
        f"{global_batch} sequences per step on {nodes} x {gpus_per_node} {html.escape(hardware)}: "
        f"<b>{n_fit}</b> of {len(found)} valid plans fit. Row {chosen}: DP {p.dp} x TP {p.tp} x PP {p.pp}, ZeRO "
        f"{p.zero_stage}, micro-batch {p.micro_batch} x {p.grad_accum}: {format_bytes(best.memory_per_gpu)} per GPU "
        f"({fit}), {best.step_seconds:.2f} s per step, MFU {best.mfu:.0%}.</div>")
    return state


class PlannerWidget(widgets.VBox):
    """Model, cluster and batch controls -> the best plans and the chosen plan's memory per GPU."""

    def __init__(self, model: str = "Llama-2 70B", *, nodes: int = 8, global_batch: int = 1024,
                 hardware: str = "H100-SXM", top: int = 10) -> None:
        planner_state(model, nodes=nodes, global_batch=global_batch, hardware=hardware, top=top)  # refuse bad input
        self.top = top
        style = {"description_width": "initial"}
        shape = MODELS.get(model, ModelShape(32, 4096, 32, 32000, 2048))
        self.model = widgets.Dropdown(options=[*MODELS, CUSTOM], value=model, description="model", style=style)
        self.hardware = widgets.Dropdown(options=list(HARDWARE), value=hardware, description="GPU", style=style)
        self.layers = widgets.BoundedIntText(value=shape.layers, min=1, max=1024, description="layers", style=style,
                                             layout=widgets.Layout(width="160px"))
        self.hidden = widgets.BoundedIntText(value=shape.hidden, min=1, max=1 << 17, description="hidden",
                                             style=style, layout=widgets.Layout(width="180px"))
        self.heads = widgets.BoundedIntText(value=shape.heads, min=1, max=1024, description="heads", style=style,
                                            layout=widgets.Layout(width="160px"))
        self.seq = widgets.Dropdown(options=[1024, 2048, 4096, 8192, 16384], value=shape.seq,
                                    description="sequence", style=style)
        self.global_batch = widgets.BoundedIntText(value=global_batch, min=1, max=1_000_000,
                                                   description="global batch (sequences)", style=style)
        self.gpus_per_node = widgets.Dropdown(options=[1, 2, 4, 8], value=8, description="GPUs per node", style=style)
        self.nodes = widgets.IntSlider(value=nodes, min=1, max=128, description="nodes", continuous_update=False,
                                       style=style)
        self.row = widgets.BoundedIntText(value=0, min=0, max=top - 1, description="show row", style=style,
                                          layout=widgets.Layout(width="160px"))
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        fig = go.Figure()
        fig.update_layout(barmode="stack", width=560, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                          yaxis_title="GiB per GPU")
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[
            widgets.HBox([self.model, self.hardware]), widgets.HBox([self.layers, self.hidden, self.heads]),
            widgets.HBox([self.seq, self.global_batch]), widgets.HBox([self.gpus_per_node, self.nodes, self.row]),
            self.summary, widgets.HBox([self.table, self.figure])])
        self.model.observe(self._on_model, names="value")
        for control in (self.hardware, self.layers, self.hidden, self.heads, self.seq, self.global_batch,
                        self.gpus_per_node, self.nodes, self.row):
            control.observe(self._show, names="value")
        self._quiet = False
        self._on_model()

    def _on_model(self, _change: dict | None = None) -> None:
        """A preset fills the shape boxes (and locks them); "custom" unlocks them."""
        custom = self.model.value == CUSTOM
        if not custom:
            shape = MODELS[self.model.value]
            self._quiet = True
            try:
                self.layers.value, self.hidden.value, self.heads.value = shape.layers, shape.hidden, shape.heads
            finally:
                self._quiet = False
        for box in (self.layers, self.hidden, self.heads):
            box.disabled = not custom
        self._show()

    def data(self) -> dict[str, Any]:
        custom = self.model.value == CUSTOM
        return planner_state(self.model.value, layers=self.layers.value if custom else None,
                             hidden=self.hidden.value if custom else None, heads=self.heads.value if custom else None,
                             seq=self.seq.value, global_batch=self.global_batch.value,
                             gpus_per_node=self.gpus_per_node.value, nodes=self.nodes.value,
                             hardware=self.hardware.value, top=self.top, chosen=self.row.value)

    def _show(self, _change: dict | None = None) -> None:
        if getattr(self, "_quiet", False):
            return
        try:
            d = self.data()
        except ValueError as exc:
            self.summary.value = f"<b style='color:#d62728'>{html.escape(str(exc))}</b>"
            return
        self.summary.value = d["summary"]
        head = "".join(f"<th style='padding:2px 6px'>{h}</th>" for h in
                       ("#", "DP", "TP", "PP", "ZeRO", "mb x acc", "GiB/GPU", "step s", "MFU", "fits"))
        body = []
        for i, r in enumerate(d["rows"]):
            mark = " style='background:#fde0dd'" if i == d["chosen"] else ""
            cells = (i, r["dp"], r["tp"], r["pp"], r["zero"], f"{r['micro_batch']} x {r['grad_accum']}",
                     f"{r['memory_gib']:.1f}", f"{r['step_s']:.3g}", f"{r['mfu']:.0%}", "yes" if r["fits"] else "no")
            body.append(f"<tr{mark}>" + "".join(f"<td style='padding:2px 6px'>{c}</td>" for c in cells) + "</tr>")
        self.table.value = f"<table><tr>{head}</tr>{''.join(body)}</table>"
        with self.figure.batch_update():
            self.figure.data = ()
            for name, gib in d["components"].items():
                self.figure.add_bar(x=["chosen plan"], y=[gib], name=name, marker_color=_COMPONENT_COLOURS[name])
            self.figure.add_scatter(x=["chosen plan"], y=[d["usable_gib"]], mode="markers", name="usable memory",
                                    marker={"symbol": "line-ew-open", "size": 40, "color": "black"})
            self.figure.layout.title = f"memory per GPU, row {d['chosen']}"


# ---- drills --------------------------------------------------------------------------------------------------

def new_drill_state(kind: str | None = None, *, seed: int | None = None, language: str = "en",
                    due_first: bool = False, path: str | Path | None = None) -> dict[str, Any]:
    """A fresh drill (``drills.drill(kind, seed=seed)``) and what the widget shows of it: ``drill``, ``question``
    (in ``language``, "en" or "zh"), ``unit``, ``kind``. With ``kind`` None and ``due_first``, the kind comes
    from the review schedule at ``path`` when one is due (``review.due_drill_kinds``: missed kinds come back)."""
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    if kind is None and due_first:
        due = review.due_drill_kinds(None if path is None else Path(path))
        kind = due[0] if due else None
    d = drills.drill(kind, seed=seed)
    return {"drill": d, "kind": d.kind, "unit": d.unit,
            "question": d.question if language == "en" else d.question_zh}


def check_drill_state(drill: drills.Drill, answer: float | str, *, record: bool = True,
                      path: str | Path | None = None) -> dict[str, Any]:
    """Grade ``answer``: ``correct``, ``expected``, ``got``, ``message`` (with the formula and numbers),
    ``recorded`` (whether the attempt went to the review schedule: only readable answers are attempts)
    and ``html``. ``path``: the review file (default: the kit's, ``bigtrain_lab.quiz.review``)."""
    if not isinstance(drill, drills.Drill):
        raise TypeError(f"drill must be a bigtrain_lab.estimate.drills.Drill, got {type(drill).__name__}")
    result = drill.grade(answer)
    card = review.record_drill(drill, result, path=None if path is None else Path(path)) if record else None
    colour = "#2ca02c" if result.correct else "#d62728"
    text = html.escape(result.message).replace("\n", "<br>")
    return {"correct": result.correct, "expected": result.expected, "got": result.got, "message": result.message,
            "recorded": card is not None,
            "html": f"<div style='color:{colour}'><b>{'right' if result.correct else 'not right'}</b></div>"
                    f"<div style='font-family:monospace;font-size:12px'>{text}</div>"}


class DrillWidget(widgets.VBox):
    """New question / answer / check, over ``bigtrain_lab.estimate.drills``."""

    def __init__(self, kind: str | None = None, *, language: str = "en", record: bool = True,
                 path: str | Path | None = None, seed: int | None = None) -> None:
        """``seed``: the n-th question of a kind is ``drills.drill(kind, seed=seed + n)`` (None: a random base);
        ``record``: send graded answers to the review schedule (file ``path``, default the kit's)."""
        import random

        self.language, self.record, self.path = language, record, path
        self.seed = random.randrange(2**31) if seed is None else _int("seed", seed, 0)
        self.count = 0
        self.kind = widgets.Dropdown(options=[("any", None), *[(k, k) for k in drills.DRILL_KINDS]], value=kind,
                                     description="kind")
        self.new = widgets.Button(description="new question", button_style="info")
        self.question = widgets.HTML()
        self.answer = widgets.Text(placeholder="your answer (a number, or with its unit)", description="answer",
                                   layout=widgets.Layout(width="420px"))
        self.check = widgets.Button(description="check", button_style="primary")
        self.feedback = widgets.HTML()
        super().__init__(children=[widgets.HBox([self.kind, self.new]), self.question,
                                   widgets.HBox([self.answer, self.check]), self.feedback])
        self.new.on_click(lambda _b: self.next_question())
        self.check.on_click(lambda _b: self.grade())
        self.kind.observe(self._on_kind, names="value")
        self.answer.continuous_update = False
        self.answer.observe(lambda _c: self.grade() if self.answer.value.strip() else None, names="value")
        self.state: dict[str, Any] = {}
        self._ask()

    def _on_kind(self, _change: dict) -> None:
        self.count = 0
        self._ask()

    def next_question(self, seed: int | None = None) -> dict[str, Any]:
        """A new question (``seed``: draw exactly ``drills.drill(kind, seed=seed)``)."""
        self.count += 1
        return self._ask(seed)

    def _ask(self, seed: int | None = None) -> dict[str, Any]:
        seed = self.seed + self.count if seed is None else seed
        self.state = new_drill_state(self.kind.value, seed=seed, language=self.language, due_first=self.record,
                                     path=self.path)
        self.question.value = (f"<p><b>{html.escape(self.state['question'])}</b> "
                               f"<i>(answer in {html.escape(self.state['unit'])})</i></p>")
        self.answer.value, self.feedback.value = "", ""
        return self.state

    def grade(self) -> dict[str, Any]:
        out = check_drill_state(self.state["drill"], self.answer.value, record=self.record, path=self.path)
        self.feedback.value = out["html"]
        return out
