"""Plausible WRONG implementations of the ``federated.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import torch
import torch.nn.functional as F


def _validate(global_params, client_data, local_steps, batch_size):
    if not client_data or local_steps < 1 or batch_size < 1 or any(len(x) == 0 for x, _ in client_data):
        raise ValueError("bad round")


def _local(global_params, x, y, *, local_steps, lr, batch_size, generator, start=None):
    w, b = ((start or global_params)[k].detach().clone().requires_grad_(True) for k in ("weight", "bias"))
    for _ in range(local_steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=generator)
        loss = F.cross_entropy(F.linear(x[idx], w, b), y[idx])
        dw, db = torch.autograd.grad(loss, (w, b))
        w, b = (w - lr * dw).detach().requires_grad_(True), (b - lr * db).detach().requires_grad_(True)
    return {"weight": w.detach(), "bias": b.detach()}


def _clients(global_params, client_data, local_steps, lr, batch_size, seed):
    return [_local(global_params, x, y, local_steps=local_steps, lr=lr, batch_size=batch_size,
                   generator=torch.Generator().manual_seed(seed + k)) for k, (x, y) in enumerate(client_data)]


def fedavg_right(global_params, client_data, *, local_steps, lr, batch_size, seed):
    _validate(global_params, client_data, local_steps, batch_size)
    locals_ = _clients(global_params, client_data, local_steps, lr, batch_size, seed)
    n = sum(len(x) for x, _ in client_data)
    return {k: sum(len(x) / n * p[k] for (x, _), p in zip(client_data, locals_)) for k in ("weight", "bias")}


def fedavg_right_modules(global_params, client_data, *, local_steps, lr, batch_size, seed):
    # the same round with an nn.Linear per client and torch.optim.SGD, averaged by stacking
    _validate(global_params, client_data, local_steps, batch_size)
    states, sizes = [], []
    for k, (x, y) in enumerate(client_data):
        model = torch.nn.Linear(global_params["weight"].shape[1], global_params["weight"].shape[0])
        model.load_state_dict({k2: v.clone() for k2, v in global_params.items()})
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed + k)
        for _ in range(local_steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        states.append(model.state_dict())
        sizes.append(len(x))
    weights = torch.tensor(sizes, dtype=torch.float32) / sum(sizes)
    return {k: torch.einsum("c,c...->...", weights, torch.stack([s[k] for s in states])) for k in ("weight", "bias")}


def fedavg_unweighted(global_params, client_data, *, local_steps, lr, batch_size, seed):
    # a plain mean: a client with 10 examples counts as much as one with 140
    _validate(global_params, client_data, local_steps, batch_size)
    locals_ = _clients(global_params, client_data, local_steps, lr, batch_size, seed)
    return {k: torch.stack([p[k] for p in locals_]).mean(0) for k in ("weight", "bias")}


def fedavg_copies_last_client(global_params, client_data, *, local_steps, lr, batch_size, seed):
    # the circulating answer: global_model.load_state_dict(client_model.state_dict()) -- the last client wins
    _validate(global_params, client_data, local_steps, batch_size)
    return _clients(global_params, client_data, local_steps, lr, batch_size, seed)[-1]


def fedsgd_as_fedavg(global_params, client_data, *, local_steps, lr, batch_size, seed):
    # one gradient per client at the global point, averaged, one step: FedSGD, whatever local_steps says
    _validate(global_params, client_data, local_steps, batch_size)
    locals_ = _clients(global_params, client_data, 1, lr, batch_size, seed)
    n = sum(len(x) for x, _ in client_data)
    return {k: sum(len(x) / n * p[k] for (x, _), p in zip(client_data, locals_)) for k in ("weight", "bias")}


def fedavg_sequential(global_params, client_data, *, local_steps, lr, batch_size, seed):
    # each client starts from the previous client's model instead of the global one
    _validate(global_params, client_data, local_steps, batch_size)
    current, locals_ = global_params, []
    for k, (x, y) in enumerate(client_data):
        current = _local(global_params, x, y, local_steps=local_steps, lr=lr, batch_size=batch_size,
                         generator=torch.Generator().manual_seed(seed + k), start=current)
        locals_.append(current)
    n = sum(len(x) for x, _ in client_data)
    return {k: sum(len(x) / n * p[k] for (x, _), p in zip(client_data, locals_)) for k in ("weight", "bias")}


WRONG = {
    "federated.fedavg_round": [fedavg_unweighted, fedavg_copies_last_client, fedsgd_as_fedavg, fedavg_sequential],
}
RIGHT = {
    "federated.fedavg_round": [fedavg_right, fedavg_right_modules],
}
