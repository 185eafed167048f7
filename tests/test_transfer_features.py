"""The feature projection (PCA of backbone features, 1-NN separation) and the FeatureProjection widget over it."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from bigtrain_lab.models import CNN
from bigtrain_lab.transfer import backbone_features, feature_projection
from bigtrain_lab.transfer.features import nearest_neighbour_accuracy
from bigtrain_lab.widgets.transfer import FeatureProjection


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(40, 1, 8, 8, generator=g)
    y = torch.arange(40) % 5
    X[:, 0, 0, 0] = y.float() * 3  # a class signal the features can carry
    torch.manual_seed(0)
    return CNN(5), CNN(5), X, y


def test_the_projection_is_sklearn_pca_of_the_features(data):
    model, _, X, y = data
    d = feature_projection(model, X, y, "fc")
    f = backbone_features(model, X, "fc")
    z = PCA(n_components=2, svd_solver="full").fit_transform(f)
    assert np.allclose(np.abs(d["x"]), np.abs(z[:, 0])) and np.allclose(np.abs(d["y"]), np.abs(z[:, 1]))
    assert d["label"] == y.tolist() and d["dim"] == 64 and 0 < sum(d["explained"]) <= 1
    assert backbone_features(model, X, "conv").shape == (40, 512)
    with pytest.raises(ValueError, match="layer must be"):
        backbone_features(model, X, "head")


def test_nearest_neighbour_accuracy_is_leave_one_out_1nn(data):
    model, _, X, y = data
    f = backbone_features(model, X, "conv")
    ref = cross_val_score(KNeighborsClassifier(1), f, y.numpy(), cv=LeaveOneOut()).mean()
    assert nearest_neighbour_accuracy(f, y.numpy()) == pytest.approx(ref)


def test_the_widget_draws_one_trace_per_class_and_redraws(data):
    a, b, X, y = data
    w = FeatureProjection({"random": a, "other": b}, X, y, class_names=list("56789"))
    assert [t.name for t in w.figure.data] == list("56789") and w.figure.layout.width <= 840
    d = feature_projection(a, X, y, "fc")
    assert list(w.figure.data[0].x) == pytest.approx([d["x"][i] for i in range(40) if d["label"][i] == 0])
    assert f"{d['knn']:.3f}" in w.readout.value
    w.layer.value = "conv"
    assert "conv features (512 numbers)" in w.readout.value
    w.backbone.value = "other"
    conv_other = feature_projection(b, X, y, "conv")
    assert list(w.figure.data[1].y) == pytest.approx([conv_other["y"][i] for i in range(40) if conv_other["label"][i] == 1])
