"""bigtrain_lab.ensemble.fusion: soft voting vs VotingClassifier(voting="soft"), out-of-fold predictions vs
cross_val_predict (and no leak, with a memorising model), weight averaging vs torch's AveragedModel."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from torch import nn
from torch.optim.swa_utils import AveragedModel

from bigtrain_lab.ensemble import average_weights, out_of_fold_predictions, soft_vote


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("weights", [None, [1, 2, 3], [0.0, 0.5, 0.1]])
def test_soft_vote_matches_voting_classifier(wine, weights):
    X, y = wine
    members = [("lr", LogisticRegression(C=0.05, max_iter=500)), ("nb", GaussianNB()),
               ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))]
    vc = VotingClassifier(members, voting="soft", weights=weights).fit(X[::2], y[::2])
    probas = np.stack([m.predict_proba(X[1::2]) for m in vc.estimators_])
    avg, labels = soft_vote(probas, weights)
    np.testing.assert_allclose(avg, vc.predict_proba(X[1::2]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(labels, vc.predict(X[1::2]))  # y is 0..2, so indices are the labels
    assert avg.dtype == np.float64 and labels.dtype == np.int64


def test_soft_vote_normalises_weights_and_breaks_ties_low():
    probas = np.array([[[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]], [[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]]])
    avg, labels = soft_vote(probas)
    assert labels.tolist() == [0, 1]
    a, _ = soft_vote(probas[:, :1] * 0 + [[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], [2, 1])
    b, _ = soft_vote(probas[:, :1] * 0 + [[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], [0.4, 0.2])
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a.sum(1), 1.0)
    np.testing.assert_allclose(avg, probas[0])


@pytest.mark.parametrize("probas, weights", [
    (np.ones((2, 3)), None),  # 2-D
    ([np.ones((3, 2)), np.ones((3, 3))], None),  # members differ in shape
    (np.ones((2, 3, 2)), [1, -1]),  # negative
    (np.ones((2, 3, 2)), [0, 0]),  # all zero
    (np.ones((2, 3, 2)), [1, 1, 1]),  # one per member
    (np.ones((2, 3, 2)), [1, np.nan]),
])
def test_soft_vote_rejects(probas, weights):
    with pytest.raises(ValueError):
        soft_vote(probas, weights)


@pytest.mark.parametrize("make_model", [lambda: LogisticRegression(max_iter=500),
                                        lambda: DecisionTreeClassifier(max_depth=3, random_state=0)])
@pytest.mark.parametrize("seed", [0, 7])
def test_oof_matches_cross_val_predict(wine, make_model, seed):
    X, y = wine
    cv = StratifiedKFold(4, shuffle=True, random_state=seed)
    expected = cross_val_predict(make_model(), X, y, cv=cv, method="predict_proba")
    np.testing.assert_allclose(out_of_fold_predictions(make_model, X, y, n_splits=4, seed=seed), expected,
                               rtol=0, atol=1e-12)


def test_oof_string_labels_and_a_class_missing_from_a_fold():
    X, y = load_iris(return_X_y=True)
    X, y = X[::5], np.array(["setosa", "versicolor", "virginica"])[y[::5]]
    y[0] = "rare"  # one row: the fold that holds it trains without it
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "The least populated class in y has only 1 members"
        expected = cross_val_predict(GaussianNB(), X, y, cv=cv, method="predict_proba")
        got = out_of_fold_predictions(GaussianNB, X, y, n_splits=3, seed=1)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got[0, np.searchsorted(np.unique(y), "rare")] == 0.0


class Memoriser(ClassifierMixin, BaseEstimator):
    """Predicts the one-hot of the training label for a row it saw, uniform for a row it did not."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.seen_ = {row.tobytes(): np.searchsorted(self.classes_, label) for row, label in zip(X, y, strict=True)}
        return self

    def predict_proba(self, X):
        out = np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))
        for i, row in enumerate(X):
            if row.tobytes() in self.seen_:
                out[i] = np.eye(len(self.classes_))[self.seen_[row.tobytes()]]
        return out


def test_oof_never_predicts_a_row_with_a_model_that_saw_it(wine):
    X, y = wine
    oof = out_of_fold_predictions(Memoriser, X, y, n_splits=5, seed=0)
    np.testing.assert_allclose(oof, 1 / 3)  # a leak would show a one-hot row
    # and the 1-NN that knows its training rows: out-of-fold accuracy is honest, well below 100 %
    knn = out_of_fold_predictions(lambda: KNeighborsClassifier(1), X, y, n_splits=5, seed=0)
    assert 0.8 < (knn.argmax(1) == y).mean() < 1.0


def _bn_net(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    net.train()
    for _ in range(seed + 1):  # different running stats and num_batches_tracked per model
        net(torch.randn(8, 4))
    return net


def test_average_weights_matches_averaged_model():
    nets = [_bn_net(s) for s in range(3)]
    swa = AveragedModel(nets[0])
    for net in nets:
        swa.update_parameters(net)
    avg = average_weights([net.state_dict() for net in nets])
    for name, p in swa.module.named_parameters():
        torch.testing.assert_close(avg[name], p.detach(), rtol=0, atol=1e-6)
    sd = [net.state_dict() for net in nets]
    assert [s["1.num_batches_tracked"].item() for s in sd] == [1, 2, 3]
    assert avg["1.num_batches_tracked"].dtype == torch.int64 and avg["1.num_batches_tracked"].item() == 1
    torch.testing.assert_close(avg["1.running_mean"], sum(s["1.running_mean"] for s in sd) / 3)
    fresh = _bn_net(9)
    fresh.load_state_dict(avg)  # a model soup: loads as a model


def test_average_weights_weighted_and_keeps_dtypes():
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "n": torch.tensor(4), "b": torch.tensor([True])}
    b = {"w": torch.tensor([3.0, 6.0], dtype=torch.float16), "n": torch.tensor(10), "b": torch.tensor([False])}
    avg = average_weights([a, b], [1, 3])
    assert avg["w"].dtype == torch.float16 and avg["w"].tolist() == [2.5, 5.0]
    assert avg["n"].dtype == torch.int64 and avg["n"].item() == 4 and avg["b"].item() is True
    assert average_weights([a, b], [0.25, 0.75])["w"].tolist() == [2.5, 5.0]
    same = average_weights([a])
    assert same["w"] is not a["w"] and torch.equal(same["w"], a["w"])


@pytest.mark.parametrize("dicts, weights", [
    ([], None),
    ([{"w": torch.ones(2)}, {"v": torch.ones(2)}], None),
    ([{"w": torch.ones(2)}, {"w": torch.ones(3)}], None),
    ([{"w": torch.ones(2)}, {"w": torch.ones(2, dtype=torch.float64)}], None),
    ([{"w": torch.ones(2)}, {"w": torch.ones(2)}], [1, -1]),
    ([{"w": torch.ones(2)}, {"w": torch.ones(2)}], [0, 0]),
    ([{"w": torch.ones(2)}, {"w": torch.ones(2)}], [1]),
])
def test_average_weights_rejects(dicts, weights):
    with pytest.raises(ValueError):
        average_weights(dicts, weights)
