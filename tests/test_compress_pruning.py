"""Pruning helpers against torch.nn.utils.prune itself; structured shrinking keeps the function of the
rows it keeps."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from bigtrain_lab.compress import (
    iterative_prune,
    magnitude_prune_mask,
    make_permanent,
    per_round_amount,
    prune_unstructured,
    shrink_cnn,
    shrink_mlp,
    size_on_disk,
    sparsity,
)
from bigtrain_lab.compress.pruning import layer_sparsities
from bigtrain_lab.models import CNN, MLP


@pytest.mark.parametrize("amount", [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("shape", [(10,), (6, 7), (4, 3, 3, 3)])
def test_mask_matches_torch_l1_unstructured(amount, shape):
    torch.manual_seed(0)
    layer = nn.Module()
    layer.weight = nn.Parameter(torch.randn(shape))
    mine = magnitude_prune_mask(layer.weight, amount)
    prune.l1_unstructured(layer, "weight", amount=amount)
    assert torch.equal(mine, layer.weight_mask)


def test_mask_rejects_bad_amount():
    with pytest.raises(ValueError, match="amount"):
        magnitude_prune_mask(torch.ones(3), 1.5)


def test_layer_and_global_pruning_reach_the_asked_sparsity():
    torch.manual_seed(0)
    model = MLP(64, (128, 64), 10)
    prune_unstructured(model, 0.8, scope="layer")
    assert all(abs(s - 0.8) < 1e-3 for s in layer_sparsities(model).values())
    model = MLP(64, (128, 64), 10)
    prune_unstructured(model, 0.8, scope="global")
    per_layer = layer_sparsities(model)
    assert abs(sparsity(model) - 0.8) < 1e-3
    assert max(per_layer.values()) - min(per_layer.values()) > 0.01  # one threshold: layers differ
    with pytest.raises(ValueError, match="scope"):
        prune_unstructured(model, 0.5, scope="row")


def test_mask_buffers_double_the_file_until_removed():
    torch.manual_seed(0)
    model = MLP(64, (256,), 10)
    dense = size_on_disk(model)
    prune_unstructured(model, 0.9)
    assert size_on_disk(model) > 1.8 * dense  # weight_orig + weight_mask
    make_permanent(model)
    assert not any(n.endswith("_orig") for n, _ in model.named_parameters())
    assert abs(size_on_disk(model) - dense) < 0.05 * dense  # zeros still take 4 bytes each
    assert abs(sparsity(model) - 0.9) < 1e-3


def test_pruned_weights_stay_zero_while_training():
    torch.manual_seed(0)
    model = prune_unstructured(MLP(8, (16,), 2), 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(4, 8)).sum().backward()
        opt.step()
    assert abs(sparsity(model) - 0.5) < 0.02


def test_iterative_pruning_reaches_the_target():
    assert abs((1 - per_round_amount(0.9, 3)) ** 3 - 0.1) < 1e-12
    torch.manual_seed(0)
    model = MLP(16, (32,), 4)
    calls = []
    history = iterative_prune(model, 0.9, 3, finetune=lambda m: calls.append(1), evaluate=lambda m: 0.5)
    assert len(calls) == 3 and len(history) == 3
    assert [round(h["sparsity"], 2) for h in history] == pytest.approx([0.54, 0.78, 0.9], abs=0.01)


def test_shrink_mlp_is_smaller_and_keeps_the_kept_neurons():
    torch.manual_seed(0)
    model = MLP(10, (20, 12), 3)
    small = shrink_mlp(model, 0.5)
    linears = [m for m in small.modules() if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(10, 10), (6, 10), (3, 6)]
    # reference: masks from prune.ln_structured on a copy give the same function
    ref = copy.deepcopy(model)
    for layer in [m for m in ref.modules() if isinstance(m, nn.Linear)][:-1]:
        prune.ln_structured(layer, "weight", amount=0.5, n=2, dim=0)
        with torch.no_grad():
            layer.bias.mul_(layer.weight_mask[:, 0])
    x = torch.randn(5, 10)
    assert torch.allclose(small(x), ref(x), atol=1e-6)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters()) / 2
    with pytest.raises(ValueError, match="make_permanent"):
        shrink_mlp(prune_unstructured(copy.deepcopy(model), 0.3), 0.5)


def test_shrink_cnn_matches_masked_channels():
    torch.manual_seed(0)
    model = CNN()
    small = shrink_cnn(model, 0.5)
    assert small.features[0].out_channels == 8 and small.features[2].out_channels == 16
    assert small.head[1].in_features == 16 * 16
    ref = copy.deepcopy(model)
    for conv in (ref.features[0], ref.features[2]):
        prune.ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
        with torch.no_grad():
            conv.bias.mul_(conv.weight_mask[:, 0, 0, 0])
    x = torch.randn(4, 64)
    assert torch.allclose(small(x), ref(x), atol=1e-5)
    with pytest.raises(TypeError):
        shrink_cnn(MLP(64), 0.5)


def test_gradual_pruner_prunes_only_when_stepped():
    from bigtrain_lab.compress.pruning import GradualPruner, polynomial_sparsity

    def schedule(step):
        return polynomial_sparsity(step, final=0.8, begin_step=0, end_step=4)

    assert schedule(0) == 0.0 and schedule(4) == 0.8 == schedule(10) and 0.0 < schedule(1) < schedule(2) < 0.8
    torch.manual_seed(0)
    never = GradualPruner(MLP(8, (16, 16), 3), schedule)
    assert never.sparsity() == 0.0  # declared, never stepped: dense (the missing UpdatePruningStep)
    pruner = GradualPruner(MLP(8, (16, 16), 3), schedule)
    reached = [pruner.step() for _ in range(6)]
    assert reached == sorted(reached) and abs(reached[-1] - 0.8) < 0.01
    with pytest.raises(ValueError):
        polynomial_sparsity(0, final=0.5, begin_step=3, end_step=3)
