"""bigtrain_lab.llm.moe: the top-k router's hand examples (capacity order, ties, gates) and a loop reference,
the Switch balancing loss, the z-loss, capacity, and MoEMLP against dense MLPs with the same weights."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.llm.moe import (
    MoEMLP,
    active_parameters,
    expert_capacity,
    load_balancing_loss,
    router_z_loss,
    topk_router,
)
from bigtrain_lab.models import GPTMLP, GPTConfig


def logits_from_probs(rows):
    return torch.log(torch.tensor(rows, dtype=torch.float32))


def loop_router(logits, k, capacity):
    """The brief's semantics written plainly: python loops, no vectorisation."""
    probs = torch.softmax(logits.double(), -1)
    n_tokens, n_experts = probs.shape
    experts, gates = [], []
    for t in range(n_tokens):
        order = sorted(range(n_experts), key=lambda e: (-probs[t, e].item(), e))[:k]
        top = [probs[t, e].item() for e in order]
        experts.append(order)
        gates.append(top if k == 1 else [p / sum(top) for p in top])
    kept = [[False] * k for _ in range(n_tokens)]
    used = [0] * n_experts
    for r in range(k):
        for t in range(n_tokens):
            e = experts[t][r]
            if used[e] < capacity:
                used[e] += 1
                kept[t][r] = True
    gates = [[g if kept[t][r] else 0.0 for r, g in enumerate(row)] for t, row in enumerate(gates)]
    return torch.tensor(experts), torch.tensor(gates), torch.tensor(kept)


def config(**kw):
    base = dict(n_embd=8, n_experts=4, expert_top_k=1, capacity_factor=1.25, bias=True, dropout=0.0)
    return SimpleNamespace(**{**base, **kw})


# ---------------------------------------------------------------------------------------------- router

def test_capacity_drops_later_tokens_first_choice_k1():
    logits = logits_from_probs([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    experts, gates, kept = topk_router(logits, 1, 2)
    assert experts[:, 0].tolist() == [0, 0, 0, 1]
    assert kept[:, 0].tolist() == [True, True, False, True]  # token 2 is the third to ask expert 0
    torch.testing.assert_close(gates[:, 0], torch.tensor([0.7, 0.6, 0.0, 0.8]))  # k=1: the probability


def test_capacity_serves_every_first_choice_before_any_second_choice():
    # token 0: e0 > e1; token 1: e1 > e0. Capacity 1: both first choices fit, so token 0's second choice (e1)
    # is dropped although token 0 comes first in token order.
    logits = logits_from_probs([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    experts, gates, kept = topk_router(logits, 2, 1)
    assert experts.tolist() == [[0, 1], [1, 2]]
    assert kept.tolist() == [[True, False], [True, True]]
    torch.testing.assert_close(gates, torch.tensor([[0.6 / 0.9, 0.0], [0.5 / 0.8, 0.3 / 0.8]]))
    # the kept gate of token 0 is NOT renormalised to 1 after its second choice was dropped
    assert gates[0, 0].item() < 1.0


def test_ties_go_to_the_lower_expert_index():
    experts, gates, _ = topk_router(torch.zeros(1, 4), 2, 10)
    assert experts.tolist() == [[0, 1]]
    torch.testing.assert_close(gates, torch.tensor([[0.5, 0.5]]))
    experts, _, _ = topk_router(torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0]]), 3, 10)
    assert experts.tolist() == [[1, 2, 4]]


def test_gates_k1_probability_and_k2_renormalised_with_dtypes():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0]], dtype=torch.float64)
    probs = torch.softmax(logits.float(), -1)
    experts, gates, kept = topk_router(logits, 1, 2)
    assert experts.dtype == torch.int64 and gates.dtype == torch.float32 and kept.dtype == torch.bool
    torch.testing.assert_close(gates[:, 0], probs.max(-1).values)
    experts, gates, _ = topk_router(logits, 2, 2)
    top = probs.sort(-1, descending=True).values[:, :2]
    torch.testing.assert_close(gates, top / top.sum(-1, keepdim=True))
    torch.testing.assert_close(gates.sum(-1), torch.ones(2))


def test_capacity_zero_drops_everything_and_k_equal_e_works():
    experts, gates, kept = topk_router(torch.randn(5, 3), 3, 0)
    assert not kept.any() and (gates == 0).all()
    assert sorted(experts[0].tolist()) == [0, 1, 2]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_router_matches_a_plain_loop_reference(k):
    g = torch.Generator().manual_seed(k)
    for trial in range(6):
        t, e = 3 + trial * 3, 4 + trial % 3
        logits = torch.randn(t, e, generator=g) * 2
        if trial % 2:
            logits = logits.round()  # many ties
        capacity = int(torch.randint(0, t + 1, (1,), generator=g))
        got = topk_router(logits, k, capacity)
        want = loop_router(logits, k, capacity)
        assert got[0].tolist() == want[0].tolist()
        assert got[2].tolist() == want[2].tolist()
        torch.testing.assert_close(got[1], want[1].float())


def test_router_gates_are_differentiable_and_input_untouched():
    logits = torch.randn(6, 4, requires_grad=True)
    before = logits.detach().clone()
    _, gates, _ = topk_router(logits, 1, 6)
    gates.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.equal(logits.detach(), before)


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(4), 1, 1), "shape"),
    ((torch.zeros(2, 3), 0, 1), "k must"),
    ((torch.zeros(2, 3), 4, 1), "k must"),
    ((torch.zeros(2, 3), 1, -1), "capacity"),
    ((torch.zeros(2, 3), 1, 1.5), "capacity"),
    ((torch.zeros(2, 3), True, 1), "k must"),
])
def test_router_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        topk_router(*args)


# ---------------------------------------------------------------------------------------------- losses

def test_load_balancing_loss_values():
    e = 4
    uniform = torch.full((8, e), 1 / e)
    assert load_balancing_loss(uniform, torch.arange(8).remainder(e).view(8, 1), e).item() == pytest.approx(1.0)
    collapsed = F.one_hot(torch.zeros(8, dtype=torch.long), e).float()
    assert load_balancing_loss(collapsed, torch.zeros(8, 1, dtype=torch.long), e).item() == pytest.approx(e)
    # by hand: f = (1, 0), P = (0.55, 0.45) -> 2 * 0.55
    probs = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    assert load_balancing_loss(probs, torch.tensor([[0], [0]]), 2).item() == pytest.approx(1.1)
    # k = 2: f counts the T * k assignments
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    f = torch.tensor([1, 2, 1]) / 4
    want = 3 * (f * probs.mean(0)).sum()
    got = load_balancing_loss(probs, torch.tensor([[0, 1], [1, 2]]), 3)
    assert got.item() == pytest.approx(want.item())


def test_load_balancing_loss_gradient_flows_through_probs_only():
    logits = torch.randn(10, 3, requires_grad=True)
    probs = logits.softmax(-1)
    load_balancing_loss(probs, probs.argmax(-1, keepdim=True), 3).backward()
    assert logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="probs"):
        load_balancing_loss(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="experts"):
        load_balancing_loss(torch.zeros(4, 3), torch.zeros(5, 1, dtype=torch.long), 3)


def test_router_z_loss():
    logits = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    want = (torch.logsumexp(logits, -1) ** 2).mean()
    assert router_z_loss(logits).item() == pytest.approx(want.item())
    assert router_z_loss(torch.zeros(2, 3, 4)).item() == pytest.approx(torch.log(torch.tensor(4.0)).item() ** 2)


def test_expert_capacity():
    assert expert_capacity(8, 4, 1, 1.25) == 3  # ceil(2.5)
    assert expert_capacity(8, 4, 2, 1.0) == 4
    assert expert_capacity(10, 1, 1, 1.1) == 11  # not 12 from 11.000000000000002
    assert expert_capacity(0, 4, 1, 1.0) == 0
    for bad in (0, -1.0, float("inf"), "2"):
        with pytest.raises(ValueError, match="capacity_factor"):
            expert_capacity(8, 4, 1, bad)
    with pytest.raises(ValueError, match="n_experts"):
        expert_capacity(8, 0, 1, 1.0)


# ---------------------------------------------------------------------------------------------- MoEMLP

def test_moe_mlp_shapes_and_aux():
    torch.manual_seed(0)
    layer = MoEMLP(config(expert_top_k=2))
    y, aux = layer(torch.randn(2, 5, 8))
    assert y.shape == (2, 5, 8)
    assert set(aux) >= {"balance", "router_z", "dropped_fraction", "expert_load"}
    assert aux["balance"].dim() == 0 and aux["router_z"].dim() == 0
    assert isinstance(aux["dropped_fraction"], float) and 0.0 <= aux["dropped_fraction"] <= 1.0
    assert aux["expert_load"].shape == (4,) and aux["expert_load"].sum().item() == 2 * 10
    assert aux["capacity"] == expert_capacity(10, 4, 2, 1.25)
    assert aux["kept_load"].max().item() <= aux["capacity"]
    assert aux["dropped_fraction"] == pytest.approx(1 - aux["kept_load"].sum().item() / 20)


def test_one_expert_with_ample_capacity_equals_the_dense_mlp():
    torch.manual_seed(0)
    layer = MoEMLP(config(n_experts=1, capacity_factor=1.0))
    dense = GPTMLP(GPTConfig(n_embd=8, n_head=1))
    dense.load_state_dict(layer.experts[0].state_dict())
    x = torch.randn(3, 4, 8)
    y, aux = layer(x)
    torch.testing.assert_close(y, dense(x))
    assert aux["dropped_fraction"] == 0.0 and aux["balance"].item() == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 2])
def test_moe_equals_gate_weighted_experts_per_token(k):
    torch.manual_seed(1)
    layer = MoEMLP(config(expert_top_k=k, capacity_factor=4 / k))  # E / k: nothing dropped
    x = torch.randn(2, 6, 8)
    y, aux = layer(x)
    assert aux["dropped_fraction"] == 0.0
    flat = x.reshape(-1, 8)
    experts, gates, _ = topk_router(layer.router(flat), k, flat.size(0))
    want = torch.stack([sum(gates[t, r] * layer.experts[int(experts[t, r])](flat[t]) for r in range(k))
                        for t in range(flat.size(0))])
    torch.testing.assert_close(y.reshape(-1, 8), want)


def test_dropped_tokens_get_zero_and_gradient_reaches_the_router():
    torch.manual_seed(2)
    layer = MoEMLP(config(capacity_factor=0.5))
    x = torch.randn(1, 12, 8)
    y, aux = layer(x)
    assert aux["dropped_fraction"] > 0
    flat = x.reshape(-1, 8)
    _, _, kept = topk_router(layer.router(flat), 1, aux["capacity"])
    dropped = ~kept[:, 0]
    assert dropped.any() and (y.reshape(-1, 8)[dropped] == 0).all()
    (y ** 2).sum().backward()  # the language-modelling path alone, no auxiliary loss
    assert layer.router.weight.grad.abs().sum() > 0


def test_moe_mlp_bad_config_and_active_parameters():
    with pytest.raises(ValueError, match="expert_top_k"):
        MoEMLP(config(expert_top_k=5))
    with pytest.raises(ValueError, match="capacity_factor"):
        MoEMLP(config(capacity_factor=0.0))
    with pytest.raises(ValueError, match="shape"):
        MoEMLP(config())(torch.zeros(4, 8))
    layer = MoEMLP(config(expert_top_k=1))
    per_expert = sum(p.numel() for p in GPTMLP(GPTConfig(n_embd=8, n_head=1)).parameters())
    assert sum(p.numel() for p in layer.parameters()) == 4 * per_expert + 8 * 4
    assert active_parameters(layer) == per_expert + 8 * 4


def test_llm_with_moe_layers_trains_its_router():
    from bigtrain_lab.llm.model import LLM, LLMConfig

    torch.manual_seed(0)
    cfg = LLMConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, n_experts=4, expert_top_k=2)
    model = LLM(cfg)
    moe_layers = [m for m in model.modules() if isinstance(m, MoEMLP)]
    assert len(moe_layers) == 2
    idx = torch.randint(0, 11, (3, 8))
    _, loss = model(idx, idx)
    loss.backward()
    assert all(m.router.weight.grad.abs().sum() > 0 for m in moe_layers)
    assert all(m.last_stats["expert_load"].sum().item() == 3 * 8 * 2 for m in moe_layers)
    dense = LLM(LLMConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
    assert active_parameters(dense) == sum(p.numel() for p in dense.parameters())
    per_expert = sum(p.numel() for p in moe_layers[0].experts[0].parameters())
    assert active_parameters(model) == sum(p.numel() for p in model.parameters()) - 2 * 2 * per_expert
