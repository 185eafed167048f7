"""The explanation explorers: the plain views against the explain functions, and the widgets' wiring."""

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier

from bigtrain_lab.explain import (
    grad_cam,
    integrated_gradients,
    lime_tabular_weights,
    rank_agreement,
    saliency,
    tree_shap,
)
from bigtrain_lab.models import CNN
from bigtrain_lab.widgets.explain import (
    IMAGE_METHODS,
    ImageExplorer,
    TabularExplorer,
    image_attribution_view,
    tabular_explanation_view,
)


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 1] - X[:, 3] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X[:200], y[:200])
    X_test, y_test = X[200:220], y[200:220]
    return forest, X[:200], X_test, y_test, tree_shap(forest, X_test, class_index=1)


def test_tabular_view(tabular):
    forest, X_train, X_test, y_test, shap_values = tabular
    view = tabular_explanation_view(forest.predict_proba, X_train, X_test, y_test, shap_values, 3, top=3,
                                    num_samples=300)
    proba = forest.predict_proba(X_test[3:4])[0]
    assert view.label == y_test[3] and view.prediction == int(np.argmax(proba))
    assert view.probability == pytest.approx(proba[1])
    assert np.array_equal(view.shap, shap_values[3])
    assert np.allclose(view.lime, lime_tabular_weights(forest.predict_proba, X_train, X_test[3], num_samples=300,
                                                       seed=0, discretize=True))
    assert view.shown == list(np.argsort(-np.abs(shap_values[3]))[:3])
    assert view.agreement == rank_agreement(view.lime, view.shap, k=5)
    with pytest.raises(ValueError, match="index"):
        tabular_explanation_view(forest.predict_proba, X_train, X_test, y_test, shap_values, 99)
    with pytest.raises(ValueError, match="shap_values"):
        tabular_explanation_view(forest.predict_proba, X_train, X_test, y_test, shap_values[:, :2], 0)


def test_tabular_explorer_wiring(tabular):
    forest, X_train, X_test, y_test, shap_values = tabular
    names = [f"f{j}" for j in range(5)]
    explorer = TabularExplorer(forest.predict_proba, X_train, X_test, y_test, shap_values, feature_names=names,
                               class_names=["neg", "pos"], top=4, num_samples=200)
    explorer.slider.value = 5
    view = explorer.view(5)
    assert list(explorer.figure.data[1].x) == pytest.approx(view.shap[view.shown])
    assert list(explorer.figure.data[0].y) == [names[j] for j in view.shown]
    assert "row 5" in explorer.summary.value


@pytest.fixture(scope="module")
def digits_model():
    torch.manual_seed(0)
    return CNN().eval(), torch.rand(5, 1, 8, 8), np.array([0, 1, 2, 3, 4])


def test_image_view(digits_model):
    cnn, images, labels = digits_model
    view = image_attribution_view(cnn, images, labels, 2, steps=8, lime_samples=100)
    predicted = int(cnn(images[2:3]).argmax())
    assert view.prediction == predicted and view.label == 2
    assert set(view.maps) == set(IMAGE_METHODS) and all(m.shape == (8, 8) for m in view.maps.values())
    x = images[2:3]
    assert np.allclose(view.maps["saliency"], saliency(cnn, x, predicted)[0, 0].numpy())
    assert np.allclose(view.maps["integrated gradients"],
                       integrated_gradients(cnn, x, None, target=predicted, steps=8)[0, 0].numpy())
    assert np.allclose(view.maps["Grad-CAM"], grad_cam(cnn, x, predicted)[0].numpy())
    with pytest.raises(ValueError, match="unknown methods"):
        image_attribution_view(cnn, images, labels, 0, methods=["occlusion"])
    with pytest.raises(ValueError, match="index"):
        image_attribution_view(cnn, images, labels, 5)


def test_image_explorer_wiring(digits_model):
    cnn, images, labels = digits_model
    explorer = ImageExplorer(cnn, images, labels, methods=("saliency", "Grad-CAM"), steps=4)
    explorer.slider.value = 4
    assert np.allclose(np.array(explorer.figure.data[0].z), images[4, 0].numpy())
    assert np.allclose(np.array(explorer.figure.data[1].z), explorer.view(4).maps["saliency"])
    assert "image 4" in explorer.summary.value
