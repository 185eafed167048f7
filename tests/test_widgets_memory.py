"""The memory calculator widget: the plain view against the calculator, and the widget's wiring."""

import ipywidgets as widgets
import plotly.graph_objects as go
import pytest

from bigtrain_lab.memory import gpt_activation_bytes, gpt_num_parameters, model_state_bytes
from bigtrain_lab.widgets.memory import (
    GIB,
    MODELS,
    PARTS,
    PRECISIONS,
    SEVEN_B,
    SHAPES,
    MemoryCalculator,
    count_label,
    memory_calculator,
    memory_view,
)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("precision", ["fp32", "autocast", "mixed"])
def test_view_is_the_calculator(model, precision):
    view = memory_view(model, batch_size=4, precision=precision, world_size=16, checkpointing=True)
    L, C, H, V, T = MODELS[model]
    n = gpt_num_parameters(n_layer=L, n_embd=C, vocab_size=V, block_size=T)
    acts = gpt_activation_bytes(n_layer=L, n_embd=C, n_head=H, vocab_size=V, seq_len=T, batch_size=4,
                                precision="fp32" if precision == "fp32" else "bf16", checkpointing=True)
    assert view.n_params == n and view.activations == acts
    for stage, s in enumerate(view.stages):
        states = model_state_bytes(n, precision=precision, zero_stage=stage, world_size=16)
        assert s.parameters == pytest.approx(states.parameters)
        assert s.model_states == pytest.approx(states.total)
        assert s.activations == acts
    bars = view.bars()
    assert list(bars) == list(PARTS) and all(len(v) == 4 for v in bars.values())
    assert bars["parameters"][0] == pytest.approx(view.stages[0].parameters / GIB)


def test_labels_carry_the_computed_parameter_count():
    # every preset is named "<shape name> (<count>)" with the count computed from its shape
    for label, name, shape in zip(MODELS, SHAPES, SHAPES.values(), strict=True):
        L, C, _, V, T = shape
        assert label == f"{name} ({count_label(gpt_num_parameters(n_layer=L, n_embd=C, vocab_size=V, block_size=T))})"
    assert SEVEN_B == "LLaMA-7B-shaped 32 x 4096, GPT-2 layout (6.6 B)"  # not "7 B": 6,583,623,680 parameters
    assert "GPT-2 small (124 M)" in MODELS and "GPT-2 XL (1.6 B)" in MODELS
    assert [count_label(n) for n in (829_952, 124_439_808, 1_557_611_200, 6_583_623_680)] == [
        "0.8 M", "124 M", "1.6 B", "6.6 B"]


def test_stages_never_increase_memory_and_one_gpu_gains_nothing():
    view = memory_view("GPT-2 XL (1.6 B)", world_size=8)
    totals = [s.total for s in view.stages]
    assert totals == sorted(totals, reverse=True) and totals[3] < totals[0]
    single = memory_view("GPT-2 XL (1.6 B)", world_size=1)
    assert len({s.total for s in single.stages}) == 1


def test_fits_uses_the_gpu_size():
    view = memory_view(SEVEN_B, batch_size=1, world_size=64, checkpointing=True,
                       gpu_gib=80.0)
    assert view.fits() == [s.total <= 80 * GIB for s in view.stages]
    assert view.fits()[0] is False and view.fits()[3] is True


@pytest.mark.parametrize("bad", [dict(model="GPT-5"), dict(seq_len=0), dict(seq_len=10**6), dict(gpu_gib=0),
                                 dict(world_size=0), dict(precision="fp8")])
def test_view_rejects_bad_state(bad):
    with pytest.raises(ValueError):
        memory_view(**bad)


def test_widget_wiring_redraws_the_bars():
    box = memory_calculator("GPT-2 small (124 M)", world_size=8)
    assert isinstance(box, MemoryCalculator) and isinstance(box, widgets.VBox)
    assert isinstance(box.figure, go.FigureWidget) and box.figure.layout.barmode == "stack"
    names = [t.name for t in box.figure.data]
    assert names == ["parameters", "gradients", "optimizer states", "activations", "GPU memory"]
    before = list(box.figure.data[2].y)
    assert before == pytest.approx(box.view.bars()["optimizer_states"])
    box.world_size.value = 64
    after = list(box.figure.data[2].y)
    assert after[1] < before[1] and after[0] == pytest.approx(before[0])  # stage 1 shards, DDP does not
    box.model.value = SEVEN_B
    assert "6,583,623,680 parameters" in box.summary.value
    assert list(box.figure.data[3].y) == pytest.approx(box.view.bars()["activations"])
    box.checkpointing.value = True
    assert list(box.figure.data[3].y) == pytest.approx(box.view.bars()["activations"])
    box.gpu_gib.value = 24.0
    assert list(box.figure.data[4].y) == [24.0] * 4
    box.precision.value = "autocast"
    assert box.view.stages[1].parameters == pytest.approx(4 * box.view.n_params)  # fp32 parameters, unsharded
    assert "4 + 4 + 8 bytes per parameter" in box.summary.value
    assert list(box.figure.data[0].y) == pytest.approx(box.view.bars()["parameters"])
    assert [v for _, v in box.precision.options] == list(PRECISIONS.values())


def test_sliders_are_wide_enough_to_use():
    # a slider in an HBox with no explicit width is drawn a few dozen pixels wide
    box = memory_calculator()
    for slider in (box.batch_size, box.seq_fraction, box.world_size):
        assert slider.layout.width is not None and int(slider.layout.width.removesuffix("px")) >= 300
        assert slider.style.description_width
