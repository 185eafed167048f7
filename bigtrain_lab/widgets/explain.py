"""Explanation explorers of the explainability lesson: pick a test example, see why the model decided.

Plain functions (what the unit tests call): ``tabular_explanation_view`` (prediction, LIME and SHAP
weights of one row, their agreement) and ``image_attribution_view`` (prediction and the pixel maps of
several methods for one image). The widgets ``TabularExplorer`` and ``ImageExplorer`` only draw what
those return: a slider "example", an HTML summary and a plotly FigureWidget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from bigtrain_lab.explain import (
    grad_cam,
    integrated_gradients,
    lime_image_weights,
    lime_tabular_weights,
    rank_agreement,
    saliency,
)
from bigtrain_lab.explain.sanity import Agreement

__all__ = ["IMAGE_METHODS", "ImageAttributionView", "ImageExplorer", "TabularExplanationView", "TabularExplorer",
           "image_attribution_view", "tabular_explanation_view"]


# ---- tabular ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularExplanationView:
    """One row's prediction and explanations. ``lime`` and ``shap`` have one value per feature;
    ``shown`` lists the ``top`` features by |SHAP|, in decreasing order."""

    index: int
    label: int
    prediction: int
    probability: float
    lime: np.ndarray
    shap: np.ndarray
    shown: list[int]
    agreement: Agreement


def tabular_explanation_view(predict_proba: Callable[[np.ndarray], np.ndarray], X_train: np.ndarray,
                             X_test: np.ndarray, y_test: np.ndarray, shap_values: np.ndarray, index: int, *,
                             class_index: int = 1, top: int = 8, num_samples: int = 500, seed: int = 0
                             ) -> TabularExplanationView:
    """LIME (computed now, ``num_samples`` perturbations) and SHAP (``shap_values[index]``, precomputed
    for every test row, e.g. by ``tree_shap``) for test row ``index``, explaining class ``class_index``."""
    if not 0 <= index < len(X_test):
        raise ValueError(f"index must be in [0, {len(X_test)}), got {index}")
    if shap_values.shape != X_test.shape:
        raise ValueError(f"shap_values must have X_test's shape {X_test.shape}, got {shap_values.shape}")
    proba = np.asarray(predict_proba(X_test[index:index + 1]))[0]
    lime = lime_tabular_weights(predict_proba, X_train, X_test[index], class_index=class_index,
                                num_samples=num_samples, seed=seed, discretize=True)
    shap = np.asarray(shap_values[index], dtype=np.float64)
    shown = [int(j) for j in np.argsort(-np.abs(shap), kind="stable")[:top]]
    return TabularExplanationView(index, int(y_test[index]), int(np.argmax(proba)), float(proba[class_index]),
                                  lime, shap, shown, rank_agreement(lime, shap, k=min(5, len(shap))))


class TabularExplorer(widgets.VBox):
    """Slider over the test rows; LIME and SHAP bars side by side for the top features by |SHAP|."""

    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray], X_train: np.ndarray, X_test: np.ndarray,
                 y_test: np.ndarray, shap_values: np.ndarray, *, feature_names: Sequence[str],
                 class_names: Sequence[str], class_index: int = 1, top: int = 8, num_samples: int = 500,
                 index: int = 0) -> None:
        self._args = (predict_proba, X_train, X_test, y_test, shap_values)
        self._kwargs = {"class_index": class_index, "top": top, "num_samples": num_samples}
        self.feature_names, self.class_names, self.class_index = list(feature_names), list(class_names), class_index
        self.slider = widgets.IntSlider(description="example", min=0, max=len(X_test) - 1, value=index,
                                        continuous_update=False)
        self.summary = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, subplot_titles=("LIME weight (discretised)", "SHAP value (TreeSHAP)"),
                            horizontal_spacing=0.25)
        fig.add_bar(x=[], y=[], orientation="h", name="LIME", row=1, col=1)
        fig.add_bar(x=[], y=[], orientation="h", name="SHAP", row=1, col=2)
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(height=380, width=840, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 30})
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[self.slider, self.summary, self.figure])
        self._show(index)
        self.slider.observe(lambda change: self._show(change["new"]), names="value")

    def view(self, index: int) -> TabularExplanationView:
        return tabular_explanation_view(*self._args, index, **self._kwargs)

    def _show(self, index: int) -> None:
        v = self.view(index)
        names = [self.feature_names[j] for j in v.shown]
        self.summary.value = (
            f"<b>row {v.index}</b>: true class <b>{self.class_names[v.label]}</b>, predicted "
            f"<b>{self.class_names[v.prediction]}</b>, P({self.class_names[self.class_index]}) = "
            f"{v.probability:.3f} · LIME vs SHAP: Spearman {v.agreement.spearman:.2f}, "
            f"top-{v.agreement.k} overlap {v.agreement.top_k:.0%}")
        with self.figure.batch_update():
            self.figure.data[0].x, self.figure.data[0].y = v.lime[v.shown], names
            self.figure.data[1].x, self.figure.data[1].y = v.shap[v.shown], names


# ---- images -----------------------------------------------------------------------------------------

IMAGE_METHODS = ("saliency", "integrated gradients", "Grad-CAM", "LIME")


@dataclass(frozen=True)
class ImageAttributionView:
    """One image's prediction and an (H, W) map per method."""

    index: int
    label: int
    prediction: int
    probability: float
    image: np.ndarray
    maps: dict[str, np.ndarray]


def image_attribution_view(model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, index: int, *,
                           methods: Sequence[str] = IMAGE_METHODS, steps: int = 32, lime_samples: int = 300,
                           seed: int = 0) -> ImageAttributionView:
    """Attribution maps of image ``index`` of ``images`` (N, 1, H, W) for the class the model predicts."""
    if not 0 <= index < len(images):
        raise ValueError(f"index must be in [0, {len(images)}), got {index}")
    unknown = set(methods) - set(IMAGE_METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {IMAGE_METHODS}")
    model.eval()
    x = images[index:index + 1]
    with torch.no_grad():
        proba = torch.softmax(model(x), dim=1)[0]
    predicted = int(proba.argmax())

    def predict_rgb(batch: np.ndarray) -> np.ndarray:
        gray = torch.tensor(batch[..., 0], dtype=images.dtype).unsqueeze(1)
        with torch.no_grad():
            return torch.softmax(model(gray), dim=1).numpy()

    maps: dict[str, np.ndarray] = {}
    for method in methods:
        if method == "saliency":
            maps[method] = saliency(model, x, predicted)[0, 0].numpy()
        elif method == "integrated gradients":
            maps[method] = integrated_gradients(model, x, None, target=predicted, steps=steps)[0, 0].numpy()
        elif method == "Grad-CAM":
            maps[method] = grad_cam(model, x, predicted)[0].numpy()
        else:
            maps[method] = lime_image_weights(predict_rgb, x[0, 0].numpy(), label=predicted,
                                              num_samples=lime_samples, seed=seed)
    return ImageAttributionView(index, int(labels[index]), predicted, float(proba[predicted]),
                                x[0, 0].numpy(), maps)


class ImageExplorer(widgets.VBox):
    """Slider over images; the image and one heat map per method (red: for the predicted class)."""

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, *,
                 methods: Sequence[str] = IMAGE_METHODS, index: int = 0, **view_kwargs) -> None:
        self.model, self.images, self.labels = model, images, np.asarray(labels)
        self.methods, self.view_kwargs = tuple(methods), view_kwargs
        self.slider = widgets.IntSlider(description="example", min=0, max=len(images) - 1, value=index,
                                        continuous_update=False)
        self.summary = widgets.HTML()
        titles = ("input", *self.methods)
        fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.02)
        for col, name in enumerate(titles, start=1):
            scale = "gray" if name == "input" else "RdBu_r"
            fig.add_heatmap(z=np.zeros((8, 8)), colorscale=scale, showscale=False, name=name,
                            zmid=None if name == "input" else 0.0, row=1, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor="x")
        fig.update_xaxes(showticklabels=False)
        fig.update_layout(height=260, width=min(840, 190 * len(titles)), margin={"l": 10, "r": 10, "t": 40, "b": 10})
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[self.slider, self.summary, self.figure])
        self._show(index)
        self.slider.observe(lambda change: self._show(change["new"]), names="value")

    def view(self, index: int) -> ImageAttributionView:
        return image_attribution_view(self.model, self.images, self.labels, index, methods=self.methods,
                                      **self.view_kwargs)

    def _show(self, index: int) -> None:
        v = self.view(index)
        self.summary.value = (f"<b>image {v.index}</b>: true digit <b>{v.label}</b>, predicted "
                              f"<b>{v.prediction}</b> (p = {v.probability:.3f})")
        with self.figure.batch_update():
            self.figure.data[0].z = v.image
            for trace, method in zip(self.figure.data[1:], self.methods, strict=True):
                m = v.maps[method]
                top = float(np.abs(m).max()) or 1.0
                trace.z, trace.zmin, trace.zmax = m, -top, top
