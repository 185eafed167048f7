"""What a backbone's features look like: a 2-D PCA projection of them, and how well they separate the classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA

from bigtrain_lab.models import CNN

__all__ = ["FEATURE_LAYERS", "backbone_features", "feature_projection", "nearest_neighbour_accuracy"]

#: Where features are read: after the conv stack (32x4x4 = 512 numbers) or after the fc layer (64 numbers).
FEATURE_LAYERS = ("conv", "fc")


@torch.no_grad()
def backbone_features(model: CNN, X: torch.Tensor, layer: str = "fc") -> np.ndarray:
    """The backbone's features of images ``X`` at ``layer`` (``FEATURE_LAYERS``), eval mode, as float64."""
    if layer not in FEATURE_LAYERS:
        raise ValueError(f"layer must be one of {FEATURE_LAYERS}, got {layer!r}")
    was_training = model.training
    model.eval()
    try:
        h = model.features(X).flatten(1)
        if layer == "fc":
            h = model.head[2](model.head[1](h))  # Linear(512, 64) then ReLU: the input of the classifier
    finally:
        model.train(was_training)
    return h.double().numpy()


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy (Euclidean): how well the features separate the classes."""
    f = np.asarray(features, dtype=float)
    sq = (f * f).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * f @ f.T
    np.fill_diagonal(d, np.inf)
    labels = np.asarray(labels)
    return float((labels[d.argmin(1)] == labels).mean())


def feature_projection(model: CNN, X: torch.Tensor, y: torch.Tensor, layer: str = "fc") -> dict[str, Any]:
    """The figure data of the FeatureProjection widget: features at ``layer`` projected on their first two
    principal components (sklearn's PCA, centred, not scaled).

    Returns ``{"x", "y"}`` (coordinates, lists), ``"label"`` (class per point), ``"explained"`` (variance ratio of
    the two components), ``"knn"`` (leave-one-out 1-NN accuracy in the full feature space) and ``"dim"``."""
    f = backbone_features(model, X, layer)
    labels = np.asarray(y)
    pca = PCA(n_components=2, svd_solver="full")
    z = pca.fit_transform(f) if np.ptp(f, axis=0).max() > 0 else np.zeros((len(f), 2))
    explained = pca.explained_variance_ratio_.tolist() if hasattr(pca, "explained_variance_ratio_") else [0.0, 0.0]
    return {"x": z[:, 0].tolist(), "y": z[:, 1].tolist(), "label": labels.tolist(), "explained": explained,
            "knn": nearest_neighbour_accuracy(f, labels), "dim": int(f.shape[1])}
