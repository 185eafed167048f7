"""Training-memory calculator of lesson 03: model, precision, batch and world size -> stacked bars.

``memory_view`` is the plain function (state -> per-GPU bytes for ZeRO stages 0-3) that the unit tests
call; ``MemoryCalculator`` only draws what it returns: one stacked bar per ZeRO stage (parameters,
gradients, optimizer states, activations, in GiB) and a dashed line at the GPU's memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import plotly.graph_objects as go

from bigtrain_lab.memory import (
    MemoryBreakdown,
    bytes_per_parameter,
    format_bytes,
    gpt_activation_bytes,
    gpt_num_parameters,
    training_memory,
)

__all__ = ["MODELS", "PRECISIONS", "SEVEN_B", "SHAPES", "MemoryCalculator", "MemoryView", "count_label",
           "memory_calculator", "memory_view"]

GIB = 1024**3
#: GPT-2-layout shapes (n_layer, n_embd, n_head, vocab_size, block_size), by name; ``MODELS`` labels each
#: with its parameter count, computed (``gpt_num_parameters``), never typed.
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "TinyGPT, this lesson": (4, 128, 4, 222, 64),
    "GPT-2 small": (12, 768, 12, 50257, 1024),
    "GPT-2 XL": (48, 1600, 25, 50257, 1024),
    # LLaMA-7B's depth, width, heads, vocabulary and context, but GPT-2's blocks (4C MLP, biases, tied
    # embeddings): 6.6 B parameters, not LLaMA-7B's 6.7 B (SwiGLU MLP of 11,008, untied output layer)
    "LLaMA-7B-shaped 32 x 4096, GPT-2 layout": (32, 4096, 32, 32000, 2048),
}
#: the memory recipes of ``bigtrain_lab.memory.bytes_per_parameter``, as the calculator's buttons name them
PRECISIONS: dict[str, str] = {
    "fp32": "fp32",
    "bf16 autocast (fp32 master = the parameters)": "autocast",
    "bf16 model + fp32 master (ZeRO paper)": "mixed",
}


def count_label(n_params: int) -> str:
    """A parameter count as a model's size is usually written: ``124 M``, ``6.6 B``, ``0.8 M``.

    >>> count_label(124_439_808), count_label(6_583_623_680), count_label(829_952)
    ('124 M', '6.6 B', '0.8 M')
    """
    if n_params >= 10**9:
        return f"{n_params / 1e9:.1f} B"
    return f"{n_params / 1e6:.0f} M" if n_params >= 10**7 else f"{n_params / 1e6:.1f} M"


def _n_params(shape: tuple[int, int, int, int, int]) -> int:
    n_layer, n_embd, _, vocab_size, block_size = shape
    return gpt_num_parameters(n_layer=n_layer, n_embd=n_embd, vocab_size=vocab_size, block_size=block_size)


#: the calculator's models, labelled "<name> (<computed count>)", e.g. "GPT-2 small (124 M)"
MODELS: dict[str, tuple[int, int, int, int, int]] = {
    f"{name} ({count_label(_n_params(shape))})": shape for name, shape in SHAPES.items()}
#: the label of the LLaMA-7B-shaped preset (its count is computed: 6.6 B)
SEVEN_B = next(label for label in MODELS if label.startswith("LLaMA-7B-shaped"))
PARTS = ("parameters", "gradients", "optimizer_states", "activations")
STAGE_LABELS = ("ZeRO-0 (DDP)", "ZeRO-1", "ZeRO-2", "ZeRO-3")


@dataclass(frozen=True)
class MemoryView:
    """Per-GPU memory of one configuration, for each ZeRO stage 0..3 (``stages[k]``)."""

    model: str
    n_params: int
    activations: int
    stages: tuple[MemoryBreakdown, ...]
    gpu_bytes: float
    precision: str = "mixed"

    def fits(self) -> list[bool]:
        """Whether each stage's total fits in the GPU's memory."""
        return [s.total <= self.gpu_bytes for s in self.stages]

    def bars(self) -> dict[str, list[float]]:
        """``{part: [GiB at stage 0, 1, 2, 3]}`` for each of ``PARTS``: the data of the stacked bars."""
        return {part: [getattr(s, part) / GIB for s in self.stages] for part in PARTS}


def memory_view(model: str = "GPT-2 small (124 M)", *, batch_size: int = 8, seq_len: int | None = None,
                precision: str = "mixed", world_size: int = 8, checkpointing: bool = False,
                optimizer: str = "adamw", gpu_gib: float = 80.0) -> MemoryView:
    """Per-GPU bytes for ZeRO stages 0..3 of ``MODELS[model]`` trained with ``optimizer``.

    precision, the recipe (``bigtrain_lab.memory.bytes_per_parameter``):

    * "fp32": 4 + 4 + 8 bytes per parameter, fp32 activations;
    * "autocast": ``torch.autocast(bfloat16)``: the fp32 parameters are the master copy, so model states
      are fp32's 4 + 4 + 8; activations as autocast saves them (matmul inputs in bf16, LayerNorm inputs in
      fp32, plus the bf16 copy of every weight it casts);
    * "mixed": the ZeRO paper's (DeepSpeed, Megatron-LM): a bf16/fp16 model, 2 + 2 + 12 (fp32 master
      copy, momentum, variance in the optimizer); activations counted as under autocast, an upper bound
      for a model held in bf16 (it saves no fp32 LayerNorm inputs and makes no weight copies).

    Activations: ``gpt_activation_bytes`` for a micro-batch of ``batch_size`` sequences of ``seq_len``
    tokens (default: the model's block size), the same on every stage.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
    n_layer, n_embd, n_head, vocab_size, block_size = MODELS[model]
    seq_len = block_size if seq_len is None else seq_len
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= block_size:
        raise ValueError(f"seq_len must be an integer in [1, {block_size}] for {model}, got {seq_len!r}")
    if precision not in PRECISIONS.values():
        raise ValueError(f"precision must be one of {list(PRECISIONS.values())}, got {precision!r}")
    if not gpu_gib > 0:
        raise ValueError(f"gpu_gib must be > 0, got {gpu_gib!r}")
    n_params = _n_params(MODELS[model])
    activations = gpt_activation_bytes(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=vocab_size, seq_len=seq_len,
        batch_size=batch_size, precision="fp32" if precision == "fp32" else "bf16", checkpointing=checkpointing)
    stages = tuple(training_memory(n_params, activations=activations, precision=precision, optimizer=optimizer,
                                   zero_stage=stage, world_size=world_size) for stage in range(4))
    return MemoryView(model, n_params, activations, stages, gpu_gib * GIB, precision)


def _recipe(precision: str) -> str:
    return next(label for label, key in PRECISIONS.items() if key == precision)


def _summary_html(view: MemoryView) -> str:
    rows = "".join(
        f"<tr><td>{label}</td><td data-stage='{k}'>{format_bytes(s.total)}</td>"
        f"<td>{'fits' if fit else 'does not fit'}</td></tr>"
        for k, (label, s, fit) in enumerate(zip(STAGE_LABELS, view.stages, view.fits(), strict=True)))
    recipe = _recipe(view.precision)
    per_param = " + ".join(str(b) for b in bytes_per_parameter(view.precision))
    return (f"<div class='bt-memory'>{view.model}: {view.n_params:,} parameters; {recipe}: model states "
            f"{per_param} bytes per parameter before sharding; activations "
            f"{format_bytes(view.activations)} per GPU<table>{rows}</table></div>")


class MemoryCalculator(widgets.VBox):
    """Controls (model, precision, micro-batch, sequence length, world size, checkpointing, GPU memory),
    an HTML summary and a plotly ``FigureWidget`` with one stacked bar per ZeRO stage."""

    def __init__(self, model: str = "GPT-2 small (124 M)", **state: object) -> None:
        first = memory_view(model, **state)  # validates
        defaults = dict(batch_size=8, seq_len=None, precision="mixed", world_size=8, checkpointing=False,
                        gpu_gib=80.0) | state
        block = MODELS[model][4]
        # explicit widths: in an HBox, a slider left to its default layout shrinks to a few dozen pixels
        style = {"description_width": "90px"}
        wide, slider = widgets.Layout(width="420px"), widgets.Layout(width="360px")
        self.model = widgets.Dropdown(options=list(MODELS), value=model, description="model", style=style,
                                      layout=wide)
        self.precision = widgets.ToggleButtons(options=list(PRECISIONS.items()), value=defaults["precision"],
                                               description="precision", style={**style, "button_width": "auto"})
        self.batch_size = widgets.IntSlider(value=defaults["batch_size"], min=1, max=64, description="micro-batch",
                                            continuous_update=False, style=style, layout=slider)
        self.seq_fraction = widgets.FloatSlider(
            value=1.0 if defaults["seq_len"] is None else defaults["seq_len"] / block, min=0.0625, max=1.0,
            step=0.0625, description="seq / block", continuous_update=False, style=style, layout=slider)
        self.world_size = widgets.SelectionSlider(options=[2**k for k in range(11)], value=defaults["world_size"],
                                                  description="GPUs", continuous_update=False, style=style,
                                                  layout=slider)
        self.checkpointing = widgets.Checkbox(value=defaults["checkpointing"], description="checkpointing",
                                              style=style)
        self.gpu_gib = widgets.Dropdown(options=[24.0, 40.0, 80.0, 141.0], value=defaults["gpu_gib"],
                                        description="GPU GiB", style=style, layout=widgets.Layout(width="200px"))
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget(layout=go.Layout(
            barmode="stack", height=400, width=760, yaxis_title="GiB per GPU",
            margin={"l": 60, "r": 20, "t": 70, "b": 40}))
        for part in PARTS:
            self.figure.add_bar(name=part.replace("_", " "), x=list(STAGE_LABELS), y=[0.0] * 4)
        self.figure.add_scatter(name="GPU memory", x=list(STAGE_LABELS), y=[0.0] * 4, mode="lines",
                                line={"dash": "dash", "color": "black"})
        controls = [self.model, self.precision, self.batch_size, self.seq_fraction, self.world_size,
                    self.checkpointing, self.gpu_gib]
        rows = [widgets.HBox([self.model, self.gpu_gib]), self.precision,
                widgets.HBox([self.batch_size, self.seq_fraction]), widgets.HBox([self.world_size, self.checkpointing])]
        super().__init__(children=[*rows, self.summary, self.figure])
        self._show(first)
        for control in controls:
            control.observe(self._on_change, names="value")

    @property
    def view(self) -> MemoryView:
        """The numbers for the controls' current values."""
        block = MODELS[self.model.value][4]
        return memory_view(self.model.value, batch_size=self.batch_size.value,
                           seq_len=max(1, round(self.seq_fraction.value * block)),
                           precision=self.precision.value, world_size=self.world_size.value,
                           checkpointing=self.checkpointing.value, gpu_gib=self.gpu_gib.value)

    def _on_change(self, _change: dict) -> None:
        self._show(self.view)

    def _show(self, view: MemoryView) -> None:
        self.summary.value = _summary_html(view)
        bars = view.bars()
        with self.figure.batch_update():
            for trace, part in zip(self.figure.data[:4], PARTS, strict=True):
                trace.y = bars[part]
            self.figure.data[4].y = [view.gpu_bytes / GIB] * 4
            # two short lines: one long line runs under plotly's toolbar (top right)
            self.figure.layout.title = (f"per-GPU memory by ZeRO stage<br><sub>{view.model}; "
                                        f"{_recipe(view.precision)}</sub>")


def memory_calculator(model: str = "GPT-2 small (124 M)", **state: object) -> MemoryCalculator:
    """The interactive calculator; ``state`` takes ``memory_view``'s keyword arguments (initial values)."""
    return MemoryCalculator(model, **state)
