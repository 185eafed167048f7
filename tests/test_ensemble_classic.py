"""Classic ensembles: the bias-variance split, ensemble-size curves, staged errors, voting, stacking features and
the ensemble builder's report, each against scikit-learn where it has the same thing."""

import numpy as np
import pytest
from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier, RandomForestClassifier, StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from bigtrain_lab.ensemble import (
    accuracy_by_ensemble_size,
    bias_variance_01,
    bootstrap_predictions,
    disagreement_matrix,
    ensemble_report,
    hard_vote,
    soft_vote,
    stacking_features,
    staged_errors,
)


def _blobs(n=240, classes=3, seed=0, features=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(0, 1.0, (classes, features))[y] + rng.normal(size=(n, features))
    return X, y



def test_bias_variance_by_hand():
    preds = np.array([[0, 1, 2, 2], [0, 1, 1, 2], [1, 1, 1, 0]])
    y = np.array([0, 1, 2, 0])
    r = bias_variance_01(preds, y)
    assert r.main.tolist() == [0, 1, 1, 2]  # column 3: 2, 2, 0 -> 2; column 2: a 2-1 majority for 1
    assert r.bias == pytest.approx(2 / 4)
    assert r.variance == pytest.approx(3 / 12)
    assert r.error == pytest.approx(np.mean(preds != y))
    with pytest.raises(ValueError):
        bias_variance_01(preds, y[:3])


def test_bias_variance_string_labels_and_ties_to_the_smallest():
    r = bias_variance_01(np.array([["b", "a"], ["a", "b"]]), np.array(["a", "a"]))
    assert r.main.tolist() == ["a", "a"] and r.bias == 0.0 and r.variance == 0.5


def test_bootstrap_predictions_and_bagging_lowers_variance():
    X, y = _blobs(300)
    X_test, y_test = _blobs(200, seed=1)
    tree = bootstrap_predictions(lambda: DecisionTreeClassifier(random_state=0), X, y, X_test, n_replicas=6, seed=0)
    assert tree.shape == (6, 200)
    again = bootstrap_predictions(lambda: DecisionTreeClassifier(random_state=0), X, y, X_test, n_replicas=6, seed=0)
    assert np.array_equal(tree, again)  # seeded
    forest = bootstrap_predictions(lambda: RandomForestClassifier(10, random_state=0), X, y, X_test, n_replicas=6,
                                   seed=0)
    assert bias_variance_01(forest, y_test).variance < bias_variance_01(tree, y_test).variance
    with pytest.raises(ValueError):
        bootstrap_predictions(DecisionTreeClassifier, X, y, X_test, n_replicas=0)


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(12, random_state=0),
    lambda: BaggingClassifier(estimator=DecisionTreeClassifier(), n_estimators=12, max_features=0.7, random_state=0),
    lambda: BaggingClassifier(estimator=DecisionTreeClassifier(), n_estimators=12, max_samples=0.1, random_state=0),
])
def test_accuracy_by_size_ends_at_the_ensembles_accuracy(make):
    X, y = _blobs(200, classes=4)
    X_test, y_test = _blobs(150, classes=4, seed=1)
    labels = np.array(["a", "b", "c", "d"])[y]  # string classes: mapped back through classes_
    model = make().fit(X, labels)
    acc = accuracy_by_ensemble_size(model, X_test, np.array(["a", "b", "c", "d"])[y_test], [1, 6, 12])
    assert acc[-1] == pytest.approx(np.mean(model.predict(X_test) == np.array(["a", "b", "c", "d"])[y_test]))
    first = model.estimators_[0]
    cols = model.estimators_features_[0] if hasattr(model, "estimators_features_") else slice(None)
    one = model.classes_[first.classes_.astype(int)][first.predict_proba(X_test[:, cols]).argmax(1)]
    assert acc[0] == pytest.approx(np.mean(one == np.array(["a", "b", "c", "d"])[y_test]))
    with pytest.raises(ValueError):
        accuracy_by_ensemble_size(model, X_test, y_test, [13])


def test_staged_errors_is_staged_predict():
    X, y = _blobs(200, classes=2)
    ada = AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=15, random_state=0).fit(X, y)
    errors = staged_errors(ada, X, y)
    assert len(errors) == 15
    assert errors[-1] == pytest.approx(np.mean(ada.predict(X) != y))
    stump = DecisionTreeClassifier(max_depth=1).fit(X, y)
    assert errors[0] == pytest.approx(np.mean(stump.predict(X) != y))


def test_hard_vote_is_voting_classifiers_rule():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 4, (5, 50))
        weights = rng.integers(0, 4, 5).astype(float) + (rng.random(5) < 0.5)
        if weights.sum() == 0:
            continue
        # VotingClassifier(voting="hard").predict: argmax of np.bincount(votes, weights) per sample
        expected = [np.argmax(np.bincount(col, weights=weights, minlength=4)) for col in labels.T]
        assert hard_vote(labels, weights, n_classes=4).tolist() == expected
        assert hard_vote(labels).tolist() == [np.argmax(np.bincount(col, minlength=4)) for col in labels.T]


def test_hard_vote_rejects_bad_input():
    with pytest.raises(ValueError):
        hard_vote(np.array([[0, 1]]), weights=[-1])
    with pytest.raises(ValueError):
        hard_vote(np.array([[0, 1]]), weights=[1, 1])
    with pytest.raises(ValueError):
        hard_vote(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError):
        hard_vote(np.array([0, 1]))


def test_disagreement_matrix():
    labels = np.array([[0, 1, 2, 2], [0, 1, 1, 2], [1, 1, 1, 0]])
    m = disagreement_matrix(labels)
    assert m.shape == (3, 3) and np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    assert m[0, 1] == pytest.approx(0.25) and m[0, 2] == pytest.approx(0.75)


def _members(X, y, X_test):
    models = {"logreg": LogisticRegression(max_iter=500), "kNN": KNeighborsClassifier(5), "NB": GaussianNB(),
              "tree": DecisionTreeClassifier(max_depth=3, random_state=0)}
    return {name: m.fit(X, y).predict_proba(X_test) for name, m in models.items()}


def test_ensemble_report_against_the_votes():
    X, y = _blobs(240)
    X_test, y_test = _blobs(120, seed=1)
    probas = _members(X, y, X_test)
    report = ensemble_report(probas, y_test, ["logreg", "NB", "tree"])
    stack = np.stack([probas[n] for n in ("logreg", "NB", "tree")])
    assert report["selected"] == ["logreg", "NB", "tree"]
    assert report["soft"] == pytest.approx(np.mean(soft_vote(stack)[1] == y_test))
    assert report["hard"] == pytest.approx(np.mean(hard_vote(stack.argmax(-1), n_classes=3) == y_test))
    assert report["members"]["NB"] == pytest.approx(np.mean(probas["NB"].argmax(1) == y_test))
    assert report["oracle"] >= max(report["members"].values())
    assert report["disagreement"].shape == (3, 3)
    assert report["mean_disagreement"] == pytest.approx(report["disagreement"][np.triu_indices(3, 1)].mean())
    single = ensemble_report(probas, y_test, ["kNN"])
    assert single["hard"] == single["soft"] == single["members"]["kNN"] and single["mean_disagreement"] == 0.0
    for bad in ([], ["SVM"]):
        with pytest.raises(ValueError):
            ensemble_report(probas, y_test, bad)
    with pytest.raises(ValueError):
        ensemble_report(probas, y_test[:10], ["kNN"])


@pytest.mark.parametrize("classes", [2, 3])
def test_stacking_features_out_of_fold_agree_with_stacking_classifier(classes):
    X, y = _blobs(180, classes=classes)
    X_test, _ = _blobs(60, classes=classes, seed=1)
    makers = {"1-NN": lambda: KNeighborsClassifier(1), "logreg": lambda: LogisticRegression(max_iter=500)}
    train, test = stacking_features(makers, X, y, X_test, n_splits=4, seed=3)
    width = (1 if classes == 2 else classes) * 2
    assert train.shape == (180, width) and test.shape == (60, width)
    meta = LogisticRegression(max_iter=500).fit(train, y)
    reference = StackingClassifier([(n, m()) for n, m in makers.items()],
                                   final_estimator=LogisticRegression(max_iter=500), stack_method="predict_proba",
                                   cv=StratifiedKFold(4, shuffle=True, random_state=3)).fit(X, y)
    assert np.allclose(meta.predict_proba(test), reference.predict_proba(X_test))
    # in-fold: the 1-NN member predicts the rows it memorised, all right; out of fold it does not
    leaky, _ = stacking_features(makers, X, y, X_test, n_splits=4, seed=3, in_fold=True)
    k = 1 if classes == 2 else classes
    nn_in, nn_out = leaky[:, :k], train[:, :k]
    recovered_in = nn_in.argmax(1) if classes > 2 else (nn_in[:, 0] > 0.5).astype(int)
    recovered_out = nn_out.argmax(1) if classes > 2 else (nn_out[:, 0] > 0.5).astype(int)
    assert np.mean(recovered_in == y) == 1.0 > np.mean(recovered_out == y)
