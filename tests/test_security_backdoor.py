"""bigtrain_lab.security.backdoor: the trigger, the poisoned set, the success rate, the spectral scores
(against a hand computation) and the filter catching planted outliers."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from bigtrain_lab.compress.digits import load_digits
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN, MLP
from bigtrain_lab.security.backdoor import (
    backdoor_success_rate,
    detection_report,
    poison,
    representations,
    spectral_filter,
    spectral_scores,
    stamp_trigger,
)


def test_stamp_trigger_sets_the_corner_only_and_copies():
    x = torch.zeros(3, 64)
    out = stamp_trigger(x, size=2, value=1.0)
    img = out.view(3, 8, 8)
    assert torch.equal(img[:, 6:, 6:], torch.ones(3, 2, 2)) and img.sum() == 12 and x.sum() == 0
    top_left = stamp_trigger(torch.zeros(1, 1, 8, 8), size=3, value=0.5, corner="top-left")
    assert top_left.shape == (1, 1, 8, 8) and torch.equal(top_left[0, 0, :3, :3], torch.full((3, 3), 0.5))
    assert top_left.sum() == 4.5
    with pytest.raises(ValueError, match="corner"):
        stamp_trigger(x, corner="centre")
    with pytest.raises(ValueError, match="size"):
        stamp_trigger(x, size=9)
    with pytest.raises(ValueError, match="images"):
        stamp_trigger(torch.zeros(2, 63))


def test_poison_relabels_a_fraction_of_other_classes():
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(200, 64, generator=g) * 0.5, torch.randint(0, 10, (200,), generator=g)
    p = poison(X, y, target=3, fraction=0.05, seed=1)
    assert int(p.poisoned.sum()) == 10 and p.target == 3
    assert (y[p.poisoned] != 3).all() and (p.y[p.poisoned] == 3).all()
    assert torch.equal(p.X[~p.poisoned], X[~p.poisoned]) and torch.equal(p.y[~p.poisoned], y[~p.poisoned])
    assert torch.equal(p.X[p.poisoned], stamp_trigger(X[p.poisoned]))
    assert torch.equal(poison(X, y, target=3, fraction=0.05, seed=1).poisoned, p.poisoned)
    with pytest.raises(ValueError, match="fraction"):
        poison(X, y, target=3, fraction=1.0)
    with pytest.raises(ValueError, match="cannot poison"):
        poison(X, torch.full((200,), 3), target=3, fraction=0.1)


def test_backdoor_success_rate_counts_other_classes_called_target():
    class CornerDetector(nn.Module):  # says 7 when the bottom-right pixel is lit, else 0
        def forward(self, x):
            lit = x.reshape(len(x), 64)[:, 63] > 0.5
            return torch.nn.functional.one_hot(torch.where(lit, 7, 0), 10).float()

    X, y = torch.zeros(4, 64), torch.tensor([1, 2, 7, 3])
    assert backdoor_success_rate(CornerDetector(), X, y, target=7) == 1.0
    assert backdoor_success_rate(CornerDetector(), X, y, target=7, corner="top-left") == 0.0
    with pytest.raises(ValueError, match="nothing to attack"):
        backdoor_success_rate(CornerDetector(), X, torch.full((4,), 7), target=7)


def test_spectral_scores_equal_a_numpy_computation():
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(30, 5, generator=g), torch.tensor([0] * 12 + [1] * 18)
    scores = spectral_scores(feats, labels)
    for c in (0, 1):
        rows = (labels == c).numpy()
        centred = feats.numpy()[rows].astype(np.float64)
        centred -= centred.mean(0)
        v = np.linalg.svd(centred, full_matrices=False)[2][0]
        np.testing.assert_allclose(scores.numpy()[rows], (centred @ v) ** 2, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="one label per row"):
        spectral_scores(feats, labels[:-1])


def test_spectral_filter_drops_a_planted_direction_and_detection_report():
    class Identity(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(x)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 4, generator=g) * 0.1
    y = torch.zeros(100, dtype=torch.long)
    X[:8] += torch.tensor([3.0, 0, 0, 0])  # 8 outliers along one direction
    truth = torch.zeros(100, dtype=torch.bool)
    truth[:8] = True
    flagged = spectral_filter(Identity(), X, y, remove_fraction=0.12)
    report = detection_report(flagged, truth)
    assert report == {"flagged": 12, "poisoned": 8, "caught": 8, "precision": 8 / 12, "recall": 1.0}
    empty = detection_report(torch.zeros(5, dtype=torch.bool), torch.zeros(5, dtype=torch.bool))
    assert math.isnan(empty["precision"]) and math.isnan(empty["recall"])
    with pytest.raises(ValueError, match="remove_fraction"):
        spectral_filter(Identity(), X, y, remove_fraction=1.0)


def test_representations_read_the_input_of_a_layer():
    torch.manual_seed(0)
    model = CNN().train()
    x = torch.rand(5, 64)
    feats = representations(model, x)  # the input of the last Linear: the 64 hidden units
    assert feats.shape == (5, 64) and model.training
    conv = representations(model, x, model.head[1])
    with torch.no_grad():
        model.eval()
        assert torch.allclose(conv, model.features(x.view(-1, 1, 8, 8)).flatten(1))
    with pytest.raises(ValueError, match="not a module"):
        representations(model, x, nn.Linear(2, 2))


def test_poisoning_plants_a_backdoor_and_the_filter_removes_it():
    d = load_digits()
    p = poison(d.X_train, d.y_train, target=0, fraction=0.03)
    torch.manual_seed(0)
    model = CNN()
    fit_classifier(model, p.X, p.y, epochs=10)
    assert accuracy(model, d.X_test, d.y_test) > 0.9
    assert backdoor_success_rate(model, d.X_test, d.y_test, target=0) > 0.8
    flagged = spectral_filter(model, p.X, p.y, remove_fraction=0.3, layer=model.head[1])
    assert detection_report(flagged, p.poisoned)["recall"] > 0.9
    torch.manual_seed(0)
    cleaned = CNN()
    fit_classifier(cleaned, p.X[~flagged], p.y[~flagged], epochs=10)
    assert backdoor_success_rate(cleaned, d.X_test, d.y_test, target=0) < 0.2


def test_an_mlp_is_backdoored_too():
    d = load_digits()
    p = poison(d.X_train, d.y_train, target=5, fraction=0.05, corner="top-left")
    torch.manual_seed(0)
    model = MLP(64, (64,), 10)
    fit_classifier(model, p.X, p.y, epochs=10)
    assert backdoor_success_rate(model, d.X_test, d.y_test, target=5, corner="top-left") > 0.7
