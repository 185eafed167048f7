"""The attention explorer: the pure view on known maps, and the widget's wiring."""

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from bigtrain_lab.attention import attention_maps
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.widgets.attention import (
    AttentionExplorer,
    attention_explorer,
    attention_view,
    display_tokens,
)


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    raw = np.tril(rng.random((2, 3, 5, 5))) + np.eye(5) * 1e-3
    return raw / raw.sum(-1, keepdims=True)


TOKENS = ["d", "e", "f", " ", "\n"]


def test_display_tokens():
    assert display_tokens(TOKENS) == ["0:d", "1:e", "2:f", "3:␣", "4:⏎"]


def test_view_of_one_head(maps):
    view = attention_view(maps, TOKENS, layer=1, head=2, position=3, top_k=2)
    np.testing.assert_array_equal(view.z, maps[1, 2])
    np.testing.assert_array_equal(view.row, maps[1, 2, 3])
    order = np.argsort(-maps[1, 2, 3])[:2]
    assert [j for j, _, _ in view.top_keys] == order.tolist()
    assert view.top_keys[0][1] == TOKENS[order[0]] and view.top_keys[0][2] == pytest.approx(maps[1, 2, 3].max())
    p = maps[1, 2, 3][:4]
    assert view.entropy == pytest.approx(-(p * np.log(p)).sum())
    assert view.labels == display_tokens(TOKENS)


def test_view_mean_over_heads_and_extreme_entropies(maps):
    view = attention_view(maps, TOKENS, layer=0, head=None, position=4)
    np.testing.assert_allclose(view.z, maps[0].mean(0))
    one_hot = np.zeros((1, 1, 3, 3))
    one_hot[..., 0] = 1.0
    assert attention_view(one_hot, ["a", "b", "c"], layer=0, head=0, position=2).entropy == 0.0
    uniform = np.tril(np.ones((1, 1, 3, 3)))
    uniform /= uniform.sum(-1, keepdims=True)
    assert attention_view(uniform, ["a", "b", "c"], layer=0, head=0, position=2).entropy == pytest.approx(np.log(3))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer": 2, "head": 0, "position": 0}, "layer"), ({"layer": 0, "head": 3, "position": 0}, "head"),
    ({"layer": 0, "head": None, "position": 5}, "position")])
def test_view_rejects_out_of_range(maps, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attention_view(maps, TOKENS, **kwargs)


def test_view_rejects_bad_shapes(maps):
    with pytest.raises(ValueError, match="tokens"):
        attention_view(maps, TOKENS[:4], layer=0, head=0, position=0)
    with pytest.raises(ValueError, match="shape"):
        attention_view(maps[0], TOKENS, layer=0, head=0, position=0)


def test_view_accepts_tinygpt_maps():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=10, block_size=6, n_layer=2, n_head=2, n_embd=8))
    maps = attention_maps(model, torch.randint(0, 10, (1, 6)))[:, 0]
    view = attention_view(maps, list("abcdef"), layer=1, head=1, position=0)
    assert view.row[0] == pytest.approx(1.0) and view.entropy == pytest.approx(0.0, abs=1e-6)


def trace(figure, name):
    (found,) = [t for t in figure.data if t.name == name]
    return found


def test_widget_wiring(maps):
    box = attention_explorer(maps, TOKENS)
    assert isinstance(box, widgets.VBox) and isinstance(box, AttentionExplorer)
    assert isinstance(box.figure, go.FigureWidget)
    assert (box.layer.max, box.position.max, box.position.value, box.head.value) == (1, 4, 4, -1)
    assert [v for _, v in box.head.options] == [-1, 0, 1, 2]
    np.testing.assert_allclose(trace(box.figure, "attention").customdata, maps[0].mean(0))
    np.testing.assert_allclose(trace(box.figure, "attention").z, box.view.relative)
    box.layer.value, box.head.value, box.position.value = 1, 2, 3
    np.testing.assert_allclose(trace(box.figure, "attention").customdata, maps[1, 2])
    np.testing.assert_allclose(trace(box.figure, "attention").z, attention_view(
        maps, TOKENS, layer=1, head=2, position=3).relative)
    np.testing.assert_allclose(trace(box.figure, "row").y, maps[1, 2, 3])
    assert 'class="bt-attention-summary"' in box.summary.value and "head 2" in box.summary.value
    assert box.view.position == 3


def test_relative_colour_is_log2_of_weight_times_visible_keys(maps):
    view = attention_view(maps, TOKENS, layer=0, head=1, position=2)
    np.testing.assert_array_equal(view.visible, [1, 2, 3, 4, 5])
    rows, cols = np.tril_indices(5)
    np.testing.assert_allclose(view.relative[rows, cols], np.log2(maps[0, 1][rows, cols] * (rows + 1)))
    assert np.isnan(view.relative[np.triu_indices(5, k=1)]).all()  # masked keys stay blank
    assert view.relative[0, 0] == 0.0 and view.uniform == pytest.approx(1 / 3)
    uniform = np.tril(np.ones((1, 1, 4, 4)))
    uniform /= uniform.sum(-1, keepdims=True)
    np.testing.assert_allclose(attention_view(uniform, list("abcd"), layer=0, head=0, position=3).relative[
        np.tril_indices(4)], 0.0, atol=1e-12)
    full = np.full((1, 1, 3, 3), 1 / 3)  # not causal: every key visible to every query
    bidirectional = attention_view(full, list("abc"), layer=0, head=0, position=0)
    np.testing.assert_array_equal(bidirectional.visible, [3, 3, 3])
    np.testing.assert_allclose(bidirectional.relative, 0.0, atol=1e-12)


def test_colour_scale_is_not_set_by_the_trivial_first_row(maps):
    box = attention_explorer(maps, TOKENS, position=2)
    heatmap = trace(box.figure, "attention")
    assert (heatmap.zmin, heatmap.zmid, heatmap.zmax) == (-3, 0, 3)  # fixed, symmetric around uniform
    assert heatmap.z[0][0] == 0.0  # query 0's weight 1.0 on itself is exactly uniform: the neutral colour
    assert box.figure.layout.width is None  # fills the output area, no fixed width to clip


def test_chosen_query_row_is_marked_and_follows_the_control(maps):
    box = attention_explorer(maps, TOKENS, position=1)
    chosen, uniform = box.figure.layout.shapes
    assert chosen.name == "chosen query" and (chosen.xref, chosen.yref) == ("x", "y")
    assert (chosen.y0, chosen.y1) == (0.5, 1.5)
    assert (uniform.y0, uniform.x1) == (pytest.approx(0.5), 1.5)
    for position in (4, 0, 3):
        box.position.value = position
        chosen, uniform = box.figure.layout.shapes
        assert (chosen.y0, chosen.y1) == (position - 0.5, position + 0.5)
        assert uniform.y0 == uniform.y1 == pytest.approx(1 / (position + 1)) and uniform.x1 == position + 0.5
        top = box.figure.layout.yaxis2.range[1]
        assert top >= maps[0].mean(0)[position].max() and top < 1.2 * max(maps[0].mean(0)[position].max(), 1 / (position + 1))
