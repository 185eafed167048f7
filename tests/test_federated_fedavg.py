"""bigtrain_lab.federated.fedavg: FedAvg's round against clients trained by torch.optim.SGD on nn.Linear / an
MLP, the weighted average, FedSGD as one full-batch gradient step on the union of the data, bad inputs."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.federated.fedavg import (
    client_gradient,
    fedavg_round,
    fedsgd_round,
    init_softmax_params,
    local_sgd,
    module_forward,
    softmax_regression,
    weighted_average,
)


def make_clients(sizes=(7, 20, 3), d=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g)) for n in sizes]


def reference_fedavg(params, clients, *, local_steps, lr, batch_size, seed):
    """FedAvg written with nn.Linear and torch.optim.SGD, averaged with explicit weights."""
    c, d = params["weight"].shape
    trained, sizes = [], []
    for k, (x, y) in enumerate(clients):
        model = nn.Linear(d, c)
        with torch.no_grad():
            model.weight.copy_(params["weight"])
            model.bias.copy_(params["bias"])
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed + k)
        for _ in range(local_steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        trained.append({"weight": model.weight.detach().clone(), "bias": model.bias.detach().clone()})
        sizes.append(len(x))
    n = sum(sizes)
    return {key: sum(s / n * t[key] for s, t in zip(sizes, trained, strict=True)) for key in ("weight", "bias")}


@pytest.mark.parametrize("local_steps,batch_size,seed", [(1, 4, 0), (5, 2, 3), (12, 16, 11)])
def test_fedavg_round_matches_torch_sgd_clients(local_steps, batch_size, seed):
    params = init_softmax_params(5, 4, seed=seed, scale=0.3)
    clients = make_clients(seed=seed)
    got = fedavg_round(params, clients, local_steps=local_steps, lr=0.3, batch_size=batch_size, seed=seed)
    want = reference_fedavg(params, clients, local_steps=local_steps, lr=0.3, batch_size=batch_size, seed=seed)
    assert set(got) == {"weight", "bias"}
    for key in want:
        assert got[key].dtype == torch.float32 and not got[key].requires_grad
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-5)


def test_the_seed_matters_and_inputs_are_untouched():
    params = init_softmax_params(5, 4, seed=1, scale=0.3)
    before = {k: v.clone() for k, v in params.items()}
    clients = make_clients()
    copies = [(x.clone(), y.clone()) for x, y in clients]
    a = fedavg_round(params, clients, local_steps=3, lr=0.5, batch_size=4, seed=0)
    b = fedavg_round(params, clients, local_steps=3, lr=0.5, batch_size=4, seed=1)
    assert not torch.equal(a["weight"], b["weight"])
    assert all(torch.equal(params[k], before[k]) for k in params)
    assert all(torch.equal(x, x0) and torch.equal(y, y0) for (x, y), (x0, y0) in zip(clients, copies, strict=True))
    assert a["weight"] is not params["weight"]


def test_the_average_is_weighted_by_client_sizes_not_uniform():
    params = init_softmax_params(5, 4, seed=2, scale=0.3)
    clients = make_clients(sizes=(2, 50))
    got = fedavg_round(params, clients, local_steps=4, lr=0.5, batch_size=8, seed=0)
    local = [local_sgd(params, softmax_regression, x, y, local_steps=4, lr=0.5, batch_size=8,
                       generator=torch.Generator().manual_seed(k)) for k, (x, y) in enumerate(clients)]
    torch.testing.assert_close(got["weight"], (2 * local[0]["weight"] + 50 * local[1]["weight"]) / 52)
    uniform = weighted_average(local, [1, 1])
    assert (uniform["weight"] - got["weight"]).abs().max() > 1e-3


def test_weighted_average_and_its_errors():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    torch.testing.assert_close(weighted_average([a, b], [1, 3])["w"], torch.tensor([2.5, 5.0]))
    for dicts, weights, match in [([], [], "empty"), ([a, b], [1], "weights"), ([a, b], [1, -1], ">= 0"),
                                  ([a, b], [0, 0], "positive sum"), ([a, {"v": b["w"]}], [1, 1], "keys"),
                                  ([a, {"w": torch.zeros(3)}], [1, 1], "shape")]:
        with pytest.raises(ValueError, match=match):
            weighted_average(dicts, weights)


def test_fedsgd_is_one_full_batch_gradient_step_on_the_union():
    params = init_softmax_params(5, 4, seed=3, scale=0.3)
    clients = make_clients(sizes=(9, 31, 4))
    got = fedsgd_round(params, clients, lr=0.7)
    model = nn.Linear(5, 4)
    with torch.no_grad():
        model.weight.copy_(params["weight"])
        model.bias.copy_(params["bias"])
    opt = torch.optim.SGD(model.parameters(), lr=0.7)
    x = torch.cat([c[0] for c in clients])
    y = torch.cat([c[1] for c in clients])
    F.cross_entropy(model(x), y).backward()  # the mean over ALL examples: weights n_k / n
    opt.step()
    torch.testing.assert_close(got["weight"], model.weight.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got["bias"], model.bias.detach(), atol=1e-6, rtol=1e-5)
    # FedAvg with one full-batch local step is the same round
    local = [local_sgd(params, softmax_regression, x_k, y_k, local_steps=1, lr=0.7, batch_size=None)
             for x_k, y_k in clients]
    avg = weighted_average(local, [len(x_k) for x_k, _ in clients])
    torch.testing.assert_close(avg["weight"], got["weight"], atol=1e-6, rtol=1e-5)


def test_an_mlp_through_functional_call_trains_like_the_module():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    params = {k: v.detach().clone() for k, v in mlp.named_parameters()}
    x, y = make_clients(sizes=(40,))[0]
    got = local_sgd(params, module_forward(mlp), x, y, local_steps=6, lr=0.2, batch_size=8,
                    generator=torch.Generator().manual_seed(5))
    opt = torch.optim.SGD(mlp.parameters(), lr=0.2)
    g = torch.Generator().manual_seed(5)
    for _ in range(6):
        idx = torch.randint(0, 40, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(mlp(x[idx]), y[idx]).backward()
        opt.step()
    for name, p in mlp.named_parameters():
        torch.testing.assert_close(got[name], p.detach(), atol=1e-6, rtol=1e-5)
    assert not torch.equal(got["0.weight"], params["0.weight"])  # it trained
    avg = fedavg_round(params, [(x[:10], y[:10]), (x[10:], y[10:])], local_steps=2, lr=0.1, batch_size=4, seed=0,
                       forward=module_forward(mlp))
    assert set(avg) == set(params)


def test_client_gradient_is_autograd_of_the_mean_loss():
    params = init_softmax_params(5, 4, seed=4, scale=0.3)
    x, y = make_clients(sizes=(13,))[0]
    grad = client_gradient(params, softmax_regression, x, y)
    w = params["weight"].clone().requires_grad_(True)
    F.cross_entropy(F.linear(x, w, params["bias"]), y).backward()
    torch.testing.assert_close(grad["weight"], w.grad)


@pytest.mark.parametrize("change,match", [
    ({"client_data": []}, "no clients"),
    ({"client_data": [(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))]}, "0 examples"),
    ({"client_data": [(torch.zeros(3, 5), torch.zeros(2, dtype=torch.long))]}, "3 rows but y has 2"),
    ({"local_steps": 0}, "local_steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"global_params": {"weight": torch.zeros(4, 5)}}, "bias"),
])
def test_bad_inputs_are_refused(change, match):
    kwargs = {"global_params": init_softmax_params(5, 4), "client_data": make_clients(), "local_steps": 2, "lr": 0.1,
              "batch_size": 4, "seed": 0, **change}
    with pytest.raises(ValueError, match=match):
        fedavg_round(**kwargs)


def test_local_sgd_refuses_a_mini_batch_without_a_generator_and_fedsgd_a_bad_lr():
    x, y = make_clients(sizes=(5,))[0]
    with pytest.raises(ValueError, match="Generator"):
        local_sgd(init_softmax_params(5, 4), softmax_regression, x, y, local_steps=1, lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="lr"):
        fedsgd_round(init_softmax_params(5, 4), [(x, y)], lr=0)
    with pytest.raises(ValueError, match="n_classes"):
        init_softmax_params(5, 1)
