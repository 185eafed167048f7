"""Shapley values and LIME of bigtrain_lab.explain against the definitions and the shap / lime libraries."""

import math

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from bigtrain_lab.explain import (
    exact_shap,
    exact_shapley,
    lime_image_weights,
    lime_tabular_weights,
    local_linear_lime,
    permutation_shap,
    shapley_by_permutations,
    tree_shap,
)
from bigtrain_lab.explain.lime_shap import grid_segmentation, lime_kernel


def interaction(X):
    return X[:, 0] * X[:, 1] * X[:, 2] + np.sin(X[:, 3]) - 2 * X[:, 1]


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


def test_exact_shapley_matches_the_permutation_definition_and_shap(rng):
    for _ in range(3):
        x, b = rng.normal(size=4), rng.normal(size=4)
        phi = exact_shapley(interaction, x, b)
        assert np.allclose(phi, shapley_by_permutations(interaction, x, b))
        assert np.allclose(phi, exact_shap(interaction, x, b[None, :]))
        assert math.isclose(phi.sum(), interaction(x[None])[0] - interaction(b[None])[0], abs_tol=1e-12)


def test_exact_shapley_axioms(rng):
    x, b = rng.normal(size=5), rng.normal(size=5)
    f = lambda X: np.exp(X[:, 0]) * X[:, 2] + X[:, 4]  # noqa: E731 - ignores features 1 and 3
    phi = exact_shapley(f, x, b)
    assert phi[1] == 0 and phi[3] == 0  # dummy
    x_same = x.copy()
    x_same[4] = b[4]
    assert exact_shapley(f, x_same, b)[4] == 0  # a feature at its baseline value gets nothing
    sym = lambda X: X[:, 0] * X[:, 1]  # noqa: E731
    phi_sym = exact_shapley(sym, np.array([2.0, 2.0]), np.zeros(2))
    assert phi_sym[0] == phi_sym[1] == 2.0  # symmetry


def test_exact_shapley_on_a_linear_function_is_w_times_delta(rng):
    w = rng.normal(size=6)
    x, b = rng.normal(size=6), rng.normal(size=6)
    assert np.allclose(exact_shapley(lambda X: X @ w + 1.0, x, b), w * (x - b))


def test_exact_shapley_input_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        exact_shapley(interaction, np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="2\\*\\*d"):
        exact_shapley(lambda X: X.sum(1), np.zeros(21), np.zeros(21))
    with pytest.raises(ValueError, match="shape \\(n,\\)"):
        exact_shapley(lambda X: X, np.zeros(2), np.zeros(2))


def test_permutation_shap_is_close_to_exact_and_efficient(rng):
    x, b = rng.normal(size=4), rng.normal(size=4)
    approx = permutation_shap(interaction, x[None, :], b[None, :], max_evals=400, seed=0)[0]
    exact = exact_shapley(interaction, x, b)
    assert math.isclose(approx.sum(), exact.sum(), abs_tol=1e-9)  # antithetic orders keep efficiency
    assert np.allclose(approx, exact, atol=0.05 * np.abs(exact).max())


def test_tree_shap_is_additive():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    import shap

    values = tree_shap(forest, X[:10], class_index=1)
    expected = shap.TreeExplainer(forest).expected_value[1]
    assert values.shape == (10, 5)
    assert np.allclose(values.sum(1) + expected, forest.predict_proba(X[:10])[:, 1])
    with pytest.raises(ValueError, match="class_index"):
        tree_shap(forest, X[:2], class_index=None)


def test_local_linear_lime_recovers_a_linear_function(rng):
    w = rng.normal(size=5)
    x = rng.normal(size=5)
    coef, intercept = local_linear_lime(lambda X: 4.0 + X @ w, x, num_samples=3000, seed=3, return_intercept=True)
    assert np.allclose(coef, w, rtol=0.01, atol=0.01)
    assert math.isclose(intercept, 4.0 + x @ w, rel_tol=0.01)


def test_local_linear_lime_is_seeded_and_varies_across_seeds(rng):
    f = lambda X: np.sin(X).sum(1)  # noqa: E731
    x = rng.normal(size=3)
    a = local_linear_lime(f, x, num_samples=500, seed=1)
    assert np.array_equal(a, local_linear_lime(f, x, num_samples=500, seed=1))
    assert not np.array_equal(a, local_linear_lime(f, x, num_samples=500, seed=2))


def test_local_linear_lime_matches_the_closed_form_of_the_exercise(rng):
    # f = a.z + g |u|^2 (u.v), u = z - x: E[coef] = a + g (d + 2) s^2 v with 1/s^2 = 1 + 1/w^2
    d, g, width = 3, 0.5, 1.0
    a, v, x = rng.normal(size=d), rng.normal(size=d), rng.normal(size=d)
    f = lambda Z: Z @ a + g * np.sum((Z - x) ** 2, 1) * ((Z - x) @ v)  # noqa: E731
    expected = a + g * (d + 2) * v / (1 + 1 / width**2)
    coef = np.mean([local_linear_lime(f, x, num_samples=5000, kernel_width=width, seed=s) for s in range(4)], axis=0)
    assert np.allclose(coef, expected, atol=0.05)


def test_lime_library_agrees_with_the_closed_form_in_its_own_units(rng):
    # lime's regression explainer on unit-variance training data samples N(0, 1) around x like ours
    from lime.lime_tabular import LimeTabularExplainer

    d, g, width = 2, 0.5, 1.0
    a, v, x = rng.normal(size=d), rng.normal(size=d), rng.normal(size=d)
    f = lambda Z: Z @ a + g * np.sum((Z - x) ** 2, 1) * ((Z - x) @ v)  # noqa: E731
    data = rng.normal(size=(4000, d))
    data = (data - data.mean(0)) / data.std(0)
    explainer = LimeTabularExplainer(data, mode="regression", discretize_continuous=False, kernel_width=width,
                                     sample_around_instance=True, feature_selection="none", random_state=0)
    weights = dict(explainer.explain_instance(x, f, num_features=d, num_samples=5000).as_map()[1])
    theirs = np.array([weights[j] for j in range(d)])
    expected = a + g * (d + 2) * v / (1 + 1 / width**2)
    assert np.allclose(theirs, expected, atol=0.05)


def test_lime_kernel_is_lime_default():
    d = np.array([0.0, 0.5, 2.0])
    assert np.allclose(lime_kernel(d, 0.75), np.sqrt(np.exp(-(d**2) / 0.75**2)))


def test_local_linear_lime_input_errors():
    with pytest.raises(ValueError, match="num_samples"):
        local_linear_lime(lambda X: X.sum(1), np.zeros(3), num_samples=3)
    with pytest.raises(ValueError, match="kernel_width"):
        local_linear_lime(lambda X: X.sum(1), np.zeros(3), kernel_width=0.0)


def test_lime_tabular_weights_finds_the_informative_feature():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4))
    y = (X[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    for discretize in (False, True):
        weights = lime_tabular_weights(forest.predict_proba, X, X[0], num_samples=800, seed=0, discretize=discretize)
        assert weights.shape == (4,)
        assert int(np.argmax(np.abs(weights))) == 2
    with pytest.raises(ValueError, match="X_train"):
        lime_tabular_weights(forest.predict_proba, X[:, :3], X[0])


def test_lime_image_weights_on_a_pixel_rule():
    def predict(batch):  # class 1 iff pixel (2, 3) is bright
        p = 1 / (1 + np.exp(-10 * (batch[:, 2, 3, 0] - 0.5)))
        return np.c_[1 - p, p]

    image = np.zeros((8, 8))
    image[2, 3] = 1.0
    image[5, 5] = 1.0
    weights = lime_image_weights(predict, image, label=1, num_samples=300, seed=0)
    assert weights.shape == (8, 8)
    assert np.unravel_index(np.argmax(weights), weights.shape) == (2, 3)


def test_grid_segmentation():
    seg = grid_segmentation((4, 6), block=2)
    assert seg.shape == (4, 6) and seg.max() == 5 and seg[0, 0] == seg[1, 1] and seg[0, 0] != seg[0, 2]
