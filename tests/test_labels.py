"""bigtrain_lab.labels: majority vote vs scipy.stats.mode, Dawid-Skene, self-training vs scikit-learn,
active learning, label issues, duplicates."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import SelfTrainingClassifier

from bigtrain_lab import labels


def test_majority_vote_matches_scipy_mode():
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 4, (300, 5))
    votes[rng.random(votes.shape) < 0.4] = -1
    votes[0] = -1
    as_float = np.where(votes == -1, np.nan, votes.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the all-missing row: scipy warns and returns NaN
        mode = stats.mode(as_float, axis=1, nan_policy="omit", keepdims=False).mode
    expected = np.where(np.isnan(mode), -1, mode).astype(int)
    np.testing.assert_array_equal(labels.majority_vote(votes), expected)
    np.testing.assert_array_equal(labels.majority_vote(np.array([[2, 1], [-1, -1]])), [1, -1])
    with pytest.raises(ValueError):
        labels.majority_vote(np.array([1, 2, 3]))


def test_dawid_skene_beats_majority_vote_and_recovers_annotators():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 800)
    crowd = labels.simulate_annotators(truth, [0.9, 0.8, 0.6, 0.35, 0.35], 3, label_rate=0.8, seed=1)
    ds = labels.dawid_skene(crowd, 3)
    assert np.mean(ds.labels == truth) > np.mean(labels.majority_vote(crowd) == truth) + 0.05
    acc = ds.confusion.diagonal(axis1=1, axis2=2).mean(1)
    np.testing.assert_allclose(acc, [0.9, 0.8, 0.6, 0.35, 0.35], atol=0.06)
    np.testing.assert_allclose(ds.posterior.sum(1), 1.0)


def test_simulated_annotators_have_the_requested_accuracy():
    truth = np.random.default_rng(0).integers(0, 4, 5000)
    crowd = labels.simulate_annotators(truth, [0.7], 4, label_rate=0.5, seed=2)
    given = crowd[:, 0] != -1
    assert abs(given.mean() - 0.5) < 0.03 and abs(np.mean(crowd[given, 0] == truth[given]) - 0.7) < 0.03


def test_label_noise_flips_exactly_the_rate_to_other_classes():
    y = np.arange(1000) % 10
    noisy, flipped = labels.add_label_noise(y, 0.2, 10, seed=0)
    assert flipped.sum() == 200 and np.all(noisy[flipped] != y[flipped]) and np.all(noisy[~flipped] == y[~flipped])


def test_self_training_matches_sklearn():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    lab, unl = order[:15], order[15:]
    model, pseudo = labels.self_training(LogisticRegression(max_iter=1000), X[lab], y[lab], X[unl],
                                         threshold=0.8, max_iter=10)
    y_sk = np.full(len(y), -1)
    y_sk[lab] = y[lab]
    sk = SelfTrainingClassifier(LogisticRegression(max_iter=1000), threshold=0.8, max_iter=10).fit(X, y_sk)
    np.testing.assert_array_equal(pseudo, sk.transduction_[unl])
    np.testing.assert_array_equal(model.predict(X), sk.predict(X))


def test_uncertainty_scores():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.8, 0.2]])
    np.testing.assert_allclose(labels.uncertainty(p, "least_confident"), [0, 0.5, 0.2])
    np.testing.assert_allclose(labels.uncertainty(p, "margin"), [0, 1, 0.4])
    assert np.argmax(labels.uncertainty(p, "entropy")) == 1
    with pytest.raises(ValueError):
        labels.uncertainty(p, "variance")


def test_active_learning_curve_shape():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    n, acc = labels.active_learning_curve(lambda: LogisticRegression(max_iter=500), X, y, X, y, n_initial=10,
                                          batch=5, rounds=3, strategy="margin", seed=0)
    assert n == [10, 15, 20, 25] and len(acc) == 4


def test_label_issues_find_flipped_labels():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    noisy, flipped = labels.add_label_noise(y, 0.05, 10, seed=0)
    proba = labels.out_of_fold_proba(LogisticRegression(max_iter=2000), X / 16, noisy, folds=3, seed=0)
    np.testing.assert_allclose(proba.sum(1), 1)
    issues = labels.find_label_issues(noisy, proba)
    assert flipped[issues].mean() > 0.5 and flipped[issues].sum() > 0.5 * flipped.sum()
    given = proba[issues, noisy[issues]]
    assert np.all(np.diff(given) >= 0)  # most suspicious first


def test_exact_duplicates():
    X = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [1, 2]])
    groups = sorted(g.tolist() for g in labels.exact_duplicates(X))
    assert groups == [[0, 2, 5], [1, 4]]
    assert labels.exact_duplicates(np.eye(3)) == []
