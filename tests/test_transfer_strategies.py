"""Lesson 10's transfer strategies train exactly what they should; LoRA starts equal to its base; the learning
curves' figure data; the per-layer change. A random CNN stands in for the pretrained one (what trains does not
depend on the weights), so nothing is pretrained here."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from bigtrain_lab.models import CNN
from bigtrain_lab.transfer import (
    STRATEGIES,
    LoRALinear,
    add_lora,
    curve_figure_data,
    learning_curves,
    prepare,
    relative_change,
    train_strategy,
)
from bigtrain_lab.transfer.strategies import trainable_names


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(1)
    return CNN(5)


def backbone_of(base):
    return lambda: copy.deepcopy(base)


def test_lora_starts_equal_to_its_base_and_only_a_b_train():
    torch.manual_seed(0)
    base = nn.Linear(12, 7)
    x = torch.randn(9, 12)
    expected = base(x)
    layer = LoRALinear(base, r=3, alpha=6.0)
    assert torch.equal(layer(x), expected) and torch.count_nonzero(layer.lora_B) == 0
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    layer.lora_B.data.normal_()
    delta = layer.lora_B @ layer.lora_A * 2.0
    assert torch.allclose(layer(x), x @ (base.weight + delta).T + base.bias, atol=1e-5)
    assert torch.allclose(layer.merge()(x), layer(x), atol=1e-5)
    with pytest.raises(ValueError, match="r must be"):
        LoRALinear(nn.Linear(2, 2), r=0)
    with pytest.raises(TypeError, match="not an nn.Linear"):
        add_lora(nn.Sequential(nn.ReLU()), "0")


EXPECTED_TRAINABLE = {
    "probe": ["head.4.weight", "head.4.bias"],
    "lora": ["head.1.lora_A", "head.1.lora_B", "head.4.weight", "head.4.bias"],
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_each_strategy_trains_what_it_should(strategy, base):
    model, groups = prepare(strategy, backbone_of(base), seed=0)
    in_groups = {id(p) for g in groups for p in g["params"]}
    names = trainable_names(model)
    assert in_groups == {id(p) for n, p in model.named_parameters() if n in names}
    assert names == EXPECTED_TRAINABLE.get(strategy, [n for n, _ in model.named_parameters()])
    assert model.head[-1].out_features == 5
    if strategy == "discriminative":
        lrs = [g["lr"] for g in groups]
        assert lrs == sorted(lrs) and lrs[-1] == pytest.approx(3e-3) and lrs[0] == pytest.approx(3e-3 / 27)
    if strategy == "lora":  # starts equal to the backbone it adapts (new head aside)
        x = torch.rand(4, 1, 8, 8)
        ref = copy.deepcopy(base)
        assert torch.equal(model.head[:3](model.features(x)), ref.head[:3](ref.features(x)))


def test_training_moves_only_the_trainable_parts(base):
    X, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 5
    probe = train_strategy("probe", X, y, steps=5, seed=0, backbone=backbone_of(base))
    assert relative_change(base, probe) == {"conv1": 0.0, "conv2": 0.0, "fc": 0.0}
    lora = train_strategy("lora", X, y, steps=5, seed=0, backbone=backbone_of(base))
    change = relative_change(base, lora)
    assert change["conv1"] == 0.0 and change["conv2"] == 0.0 and change["fc"] > 0
    assert torch.equal(lora.head[1].base.weight, base.head[1].weight)
    gradual = train_strategy("gradual", X, y, steps=6, seed=0, backbone=backbone_of(base))
    assert all(v > 0 for v in relative_change(base, gradual).values())
    assert all(p.requires_grad for p in gradual.parameters())


def test_learning_curves_and_their_figure_data(base):
    res = learning_curves(["scratch", "probe"], [1, 2], [0, 1], steps=2, backbone=backbone_of(base))
    assert res["budgets"] == [1, 2] and all(len(v) == 2 and len(v[0]) == 2 for v in res["accuracy"].values())
    d = curve_figure_data(res)
    acc = np.array(res["accuracy"]["probe"][1])
    s = d["series"]["probe"]
    assert d["x"] == [1, 2] and d["seeds"] == 2
    assert s["mean"][1] == pytest.approx(acc.mean()) and s["std"][1] == pytest.approx(acc.std())
    assert s["high"][1] == pytest.approx(acc.mean() + acc.std())
