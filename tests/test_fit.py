"""bigtrain_lab.fit: the one batch provider, the one accuracy and the one small-model training entry point."""

import numpy as np
import pytest
import torch

from bigtrain_lab.fit import ArrayBatches, accuracy, fit_classifier
from bigtrain_lab.models import MLP
from bigtrain_lab.optim import make_optimizer
from bigtrain_lab.train import TrainConfig, train


def test_epoch_batches_cover_each_epoch_once():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    batches = ArrayBatches(X, y, 3, X_val=X[:3], y_val=y[:3], seed=0)
    assert batches.steps_per_epoch == 3
    seen = np.concatenate([batches("train", s)[1].numpy() for s in range(3)])
    assert len(set(seen)) == 9  # one sample dropped (incomplete batch)
    again = batches("train", 0)[1]
    assert torch.equal(again, batches("train", 0)[1])  # the same step twice (accumulation): same epoch
    assert not all(torch.equal(batches("train", 3 + s)[1], torch.as_tensor(seen[3 * s:3 * s + 3]))
                   for s in range(3))
    xv, yv = batches("val", 5)
    assert xv.shape == (3, 2) and xv.dtype == torch.float32 and yv.tolist() == [0, 1, 2]


def test_keeping_the_last_batch_and_a_custom_order():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    keep = ArrayBatches(X, y, 4, drop_last=False)
    assert keep.steps_per_epoch == 3
    assert sorted(np.concatenate([keep("train", s)[1].numpy() for s in range(3)]).tolist()) == list(range(10))
    reversed_order = ArrayBatches(X, y, 5, order=lambda g: torch.arange(9, -1, -1))
    assert reversed_order("train", 0)[1].tolist() == [9, 8, 7, 6, 5]


def test_random_sampling_draws_with_replacement_and_transform_sees_the_generator():
    X, y = np.zeros((4, 2)), np.array([0, 1, 2, 3])
    seen_generators = []

    def shift(x, target, g):
        seen_generators.append(g)
        return x + 1.0, target

    batches = ArrayBatches(X, y, 16, sampling="random", transform=shift, seed=3)
    xb, yb = batches("train", 0)
    assert len(yb) == 16 and len(set(yb.tolist())) <= 4 and torch.all(xb == 1.0)
    assert seen_generators == [batches.generator]
    assert torch.equal(ArrayBatches(X, y, 16, sampling="random", seed=3)("train", 0)[1], yb)  # seeded


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sampling": "shuffle"}, "sampling"),
    ({"batch_size": 11}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"X_val": np.zeros((2, 2))}, "X_val and y_val"),
])
def test_array_batches_reject_bad_arguments(kwargs, message):
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match=message):
        ArrayBatches(X, y, kwargs.pop("batch_size", 3), **kwargs)
    with pytest.raises(ValueError, match="validation"):
        ArrayBatches(X, y, 3)("val", 0)


def test_accuracy_restores_the_mode_and_accepts_functions():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert accuracy(model, X, torch.tensor([0, 1, 1, 1])) == 0.75
    assert model.training
    assert accuracy(lambda x: x, X.numpy(), np.array([0, 1, 0, 1])) == 1.0
    with pytest.raises(ValueError, match="equal length"):
        accuracy(model, X, torch.tensor([0, 1]))


def _blobs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def test_fit_classifier_runs_the_kit_loop_and_reports_validation():
    X, y = _blobs()
    torch.manual_seed(0)
    model = MLP(4, (8,), 2)
    opt = make_optimizer("momentum", model.parameters(), lr=0.1)
    result = fit_classifier(model, X[:150], y[:150], X_val=X[150:], y_val=y[150:], steps=60, batch_size=25,
                            optimizer=opt, eval_every=30, schedule=lambda step: 0.1)
    assert result.step == 60 and len(result.losses) == 60 and result.lrs == [0.1] * 60
    assert [e["step"] for e in result.evals] == [30, 60]
    last = result.evals[-1]
    assert last["val_accuracy"] == pytest.approx(accuracy(model, X[150:], y[150:]))
    assert last["val_accuracy"] > 0.8 and result.losses[-1] < result.losses[0]


def test_fit_classifier_is_train_with_array_batches():
    X, y = _blobs()
    torch.manual_seed(0)
    a = MLP(4, (8,), 2)
    b = MLP(4, (8,), 2)
    b.load_state_dict(a.state_dict())
    fit_classifier(a, X, y, epochs=2, batch_size=32, lr=1e-2, seed=5)
    steps = 2 * (200 // 32)
    train(b, ArrayBatches(X, y, 32, seed=5), TrainConfig(steps=steps, batch_size=32, lr=1e-2, weight_decay=0.0,
                                                        grad_clip=0.0, seed=5), progress=False)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_fit_classifier_length_and_frozen_layers():
    X, y = _blobs()
    model = MLP(4, (8,), 2)
    first = next(model.parameters())
    first.requires_grad_(False)
    before = first.detach().clone()
    assert fit_classifier(model, X, y, epochs=3, batch_size=50, drop_last=False).step == 12
    assert torch.equal(first, before)
    with pytest.raises(ValueError, match="exactly one"):
        fit_classifier(model, X, y)
    with pytest.raises(ValueError, match="exactly one"):
        fit_classifier(model, X, y, steps=3, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_classifier(model, X, y, epochs=1, sampling="random")
