"""bigtrain_lab.federated.simulate: a simulated round is fedavg_round, FedSGD ignores the split, the
mistake variants (uniform mean, no re-sync) differ, and the viewer's plain function."""

import numpy as np
import pytest
import torch

from bigtrain_lab.federated.fedavg import fedavg_round, fedsgd_round, init_softmax_params
from bigtrain_lab.federated.simulate import (
    accuracy,
    client_seed,
    federated_digits,
    param_distance,
    simulate,
    viewer_data,
)


@pytest.fixture(scope="module")
def skewed():
    return federated_digits(4, 0.1, seed=0)


def test_the_split_keeps_every_training_example_once(skewed):
    iid = federated_digits(4, None, seed=0)
    assert sum(skewed.sizes) == sum(iid.sizes) == 1257
    assert max(iid.sizes) - min(iid.sizes) <= 1
    hist = skewed.label_histogram()
    assert hist.shape == (4, 10) and hist.sum() == 1257
    assert (hist > 0).sum(axis=1).min() < 10  # some client lacks some class


def test_two_simulated_rounds_are_two_fedavg_rounds(skewed):
    run = simulate(skewed, rounds=2, local_steps=3, lr=0.5, batch_size=16, seed=4)
    params = init_softmax_params(64, 10, seed=4)
    for r in range(2):
        params = fedavg_round(params, skewed.clients, local_steps=3, lr=0.5, batch_size=16,
                              seed=client_seed(4, r, 0, 4))
    for key in params:
        torch.testing.assert_close(run.params[key], params[key])
    assert len(run.global_accuracy) == 2 and len(run.client_accuracy[0]) == 4 and len(run.client_drift[1]) == 4
    assert run.global_accuracy[-1] == pytest.approx(accuracy(params, skewed.x_test, skewed.y_test))


def test_fedsgd_is_the_same_whatever_the_split(skewed):
    iid = federated_digits(4, None, seed=0)
    a = simulate(skewed, rounds=3, algorithm="fedsgd", lr=0.5)
    b = simulate(iid, rounds=3, algorithm="fedsgd", lr=0.5)
    params = init_softmax_params(64, 10, seed=0)
    for _ in range(3):
        params = fedsgd_round(params, iid.clients, lr=0.5)
    for key in params:
        torch.testing.assert_close(a.params[key], b.params[key], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(a.params[key], params[key], atol=1e-6, rtol=1e-5)


def test_the_mistake_variants_change_the_result(skewed):
    right = simulate(skewed, rounds=3, local_steps=5, seed=0)
    uniform = simulate(skewed, rounds=3, local_steps=5, seed=0, weighting="uniform")
    stale = simulate(skewed, rounds=3, local_steps=5, seed=0, resync=False)
    assert param_distance(right.params, uniform.params) > 1e-3
    assert param_distance(right.params, stale.params) > 1e-3
    # without re-sync, the clients' drift from the global model grows round after round
    assert np.mean(stale.client_drift[-1]) > np.mean(right.client_drift[-1])


def test_rounds_to_and_progress(skewed):
    seen = []
    run = simulate(skewed, rounds=4, local_steps=5, progress=seen.append)
    assert seen == [1, 2, 3, 4]
    assert run.rounds_to(0.0) == 1 and run.rounds_to(1.01) is None


@pytest.mark.parametrize("kwargs,match", [({"algorithm": "fedprox"}, "algorithm"), ({"weighting": "n"}, "weighting"),
                                          ({"rounds": 0}, "rounds")])
def test_bad_settings(skewed, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(skewed, **{"rounds": 1, **kwargs})


def test_param_distance():
    a = {"w": torch.zeros(2), "b": torch.zeros(1)}
    b = {"w": torch.tensor([3.0, 0.0]), "b": torch.tensor([4.0])}
    assert param_distance(a, b) == pytest.approx(5.0)


def test_viewer_data_compares_fedavg_with_fedsgd_and_lists_each_client():
    d = viewer_data(0.1, 5, n_clients=3, rounds=4)
    assert d["rounds"] == [1, 2, 3, 4] and len(d["clients"]) == 3 and all(len(c) == 4 for c in d["clients"])
    assert len(d["global"]) == len(d["fedsgd"]) == len(d["drift"]) == 4
    assert np.array(d["histogram"]).shape == (3, 10) and sum(d["sizes"]) == 1257
    assert "alpha 0.1, 5 local steps" in d["summary"] and "FedSGD" in d["summary"]
    iid = viewer_data(100.0, 5, n_clients=3, rounds=4)
    assert iid["fedsgd"] == d["fedsgd"] and iid["global"] != d["global"]
    with pytest.raises(ValueError, match="alpha"):
        viewer_data(0.0, 5)
