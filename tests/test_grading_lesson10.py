"""Lesson 10's graded references: ``regularization.functional`` against torch, the ``EarlyStopping`` rules
(ties, NaN, patience 0, never stopping), ``freeze_for_feature_extraction``'s BatchNorm hold, and the
fine-tuning exercise's outcome grading (the held-out labels stay in the grader)."""

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.grading.exercises.transfer import HeldOut, Pretrained, Tuned, run_fine_tune
from bigtrain_lab.regularization.functional import (
    EarlyStopping,
    early_stopping,
    inverted_dropout,
    label_smoothing_cross_entropy,
)
from bigtrain_lab.transfer.freezing import freeze_for_feature_extraction, frozen_batchnorms

# ---- inverted dropout ---------------------------------------------------------------------------------


def test_dropout_matches_torch_in_distribution_and_scaling():
    x = torch.randn(200, 100) + 3.0
    y = inverted_dropout(x, 0.3, training=True, generator=torch.Generator().manual_seed(0))
    zeros = int((y == 0).sum())
    assert abs(zeros - 0.3 * x.numel()) < 6 * math.sqrt(x.numel() * 0.3 * 0.7)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    torch.manual_seed(0)
    ref = F.dropout(x, 0.3, training=True)
    assert abs(int((ref == 0).sum()) - zeros) < 6 * math.sqrt(x.numel() * 0.3 * 0.7) * 2


def test_dropout_generator_eval_and_validation():
    x = torch.randn(1000)
    a = inverted_dropout(x, 0.5, training=True, generator=torch.Generator().manual_seed(1))
    b = inverted_dropout(x, 0.5, training=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(inverted_dropout(x, 0.5, training=True, generator=g),
                           inverted_dropout(x, 0.5, training=True, generator=g))
    assert inverted_dropout(x, 0.5, training=False) is x
    assert inverted_dropout(x, 0.0, training=True) is x
    for p in (1.0, -0.1, 1.5, True):
        with pytest.raises(ValueError):
            inverted_dropout(x, p, training=False)


# ---- label smoothing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_equals_torch(shape, smoothing, weighted):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    target.view(-1)[::3] = -100
    weight = torch.rand(shape[1], generator=g, dtype=torch.float64) + 0.1 if weighted else None
    got = label_smoothing_cross_entropy(logits, target, smoothing=smoothing, weight=weight)
    want = F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    torch.testing.assert_close(got, want)


def test_label_smoothing_all_ignored_is_nan_and_validation():
    logits, target = torch.randn(3, 4), torch.full((3,), -100)
    assert torch.isnan(label_smoothing_cross_entropy(logits, target, smoothing=0.1))
    assert torch.isnan(F.cross_entropy(logits, target, label_smoothing=0.1))
    for s in (-0.1, 1.1):
        with pytest.raises(ValueError):
            label_smoothing_cross_entropy(logits, torch.zeros(3, dtype=torch.long), smoothing=s)


# ---- early stopping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("losses", "patience", "min_delta", "expected"), [
    ([1.0, 0.5, 0.5, 0.5, 0.4], 2, 0.0, (3, 1)),  # ties are no improvement
    ([1.0, 0.75, 0.5], 1, 0.25, (1, 0)),  # a gain of exactly min_delta is no improvement
    ([1.0, 0.9, 0.95, 0.8], 0, 0.0, (2, 1)),  # patience 0 stops at the first bad epoch, like 1
    ([1.0, 0.9, 0.95, 0.8], 1, 0.0, (2, 1)),
    ([1.0, math.nan, 0.9, math.nan, math.nan], 2, 0.0, (4, 2)),  # NaN never improves, does not poison
    ([math.nan, math.nan], 3, 0.0, (None, None)),
    ([3.0, 2.0, 1.0], 1, 0.0, (None, 2)),  # never stops
    ([], 1, 0.0, (None, None)),
])
def test_early_stopping_rules(losses, patience, min_delta, expected):
    assert early_stopping(losses, patience=patience, min_delta=min_delta) == expected


def test_early_stopping_callback_is_sticky_and_validates():
    cb = EarlyStopping(patience=1)
    assert [cb.step(v) for v in (1.0, 1.0, 0.1)] == [False, True, True]
    assert (cb.stopped_epoch, cb.best_epoch, cb.best_loss) == (1, 0, 1.0)
    assert cb.step(torch.tensor(0.5)) is True
    for bad in ({"patience": -1}, {"patience": 1, "min_delta": -0.1}, {"patience": 1.5}):
        with pytest.raises(ValueError):
            EarlyStopping(**bad)


# ---- freezing -----------------------------------------------------------------------------------------------


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 4),
                         nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_freeze_holds_frozen_batchnorm_through_train_and_deepcopy():
    net = _net()
    groups = freeze_for_feature_extraction(net, ["5", "6"])
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in (*net[5].parameters(), *net[6].parameters())]
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["5.weight", "5.bias", "6.weight", "6.bias"]
    for model in (net, copy.deepcopy(net)):
        model.train()
        frozen = {k: v.clone() for k, v in model[1].state_dict().items()}
        trained = model[5].running_mean.clone()
        x = torch.randn(8, 1, 8, 8)
        out = model(x)
        assert all(torch.equal(frozen[k], v) for k, v in model[1].state_dict().items())
        assert not torch.equal(trained, model[5].running_mean)  # a trainable BatchNorm still learns
        model[1].train()  # even set back to train mode directly, it normalizes with its running stats
        torch.testing.assert_close(model[1](model[0](x)), F.batch_norm(
            model[0](x), model[1].running_mean, model[1].running_var, model[1].weight, model[1].bias, False))
        assert out.shape == (8, 2)
    assert frozen_batchnorms(net) == ["1"]


def test_refreezing_releases_and_names_are_checked():
    net = _net()
    freeze_for_feature_extraction(net, "6")
    assert frozen_batchnorms(net) == ["1", "5"]
    freeze_for_feature_extraction(net, ["1", "5", "6"])
    assert frozen_batchnorms(net) == []
    assert all(p.requires_grad for n, p in net.named_parameters() if not n.startswith(("0.", "4.")))
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze_for_feature_extraction(net, "7")
    with pytest.raises(ValueError):
        freeze_for_feature_extraction(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), "1.w")  # not a prefix


# ---- fine-tuning graded by outcome ----------------------------------------------------------------------------


def test_fine_tune_runner_scores_held_out_labels_it_never_hands_over():
    seen = {}

    def candidate(pretrained, X, y, *, num_classes, seed):
        seen.update(args=(X, y), kwargs={"num_classes": num_classes, "seed": seed})
        model = pretrained()
        model.head[-1] = nn.Linear(64, num_classes)
        return model

    X_test = torch.rand(30, 1, 8, 8)
    y_test = torch.arange(30) % 5
    outcome = run_fine_tune(candidate, Pretrained(), torch.rand(50, 1, 8, 8), torch.arange(50) % 5,
                            num_classes=5, seed=0, held_out=HeldOut(X_test, y_test))
    assert isinstance(outcome, Tuned) and outcome.cosine > 0.99 and outcome.bar == 0.78
    assert not any(t is y_test for t in seen["args"])
