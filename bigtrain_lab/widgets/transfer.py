"""What the frozen features look like: pick a backbone and a layer, see the target-task test images' features
projected on their first two principal components, coloured by class.

``bigtrain_lab.transfer.features.feature_projection`` is the plain function the unit tests call;
``FeatureProjection`` only draws it: a Dropdown "backbone" (the models handed in, e.g. random, pretrained
digits 0-4, rotation, fine-tuned), a ToggleButtons "layer" (conv / fc), an HTML readout (1-NN accuracy of the
full features, variance explained) and a plotly FigureWidget (one scatter trace per class).
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from bigtrain_lab.models import CNN
from bigtrain_lab.transfer.features import FEATURE_LAYERS, feature_projection

__all__ = ["FeatureProjection"]


class FeatureProjection(widgets.VBox):
    """PCA scatter of the features of ``X`` under the chosen backbone (``backbones``: name -> CNN)."""

    def __init__(self, backbones: Mapping[str, CNN], X: torch.Tensor, y: torch.Tensor, *,
                 class_names: list[str] | None = None, backbone: str | None = None, layer: str = "fc") -> None:
        self.backbones, self.X, self.y = dict(backbones), X, y
        self.class_names = class_names or [str(c) for c in sorted(set(y.tolist()))]
        names = list(self.backbones)
        self.backbone = widgets.Dropdown(description="backbone", options=names, value=backbone or names[0])
        self.layer = widgets.ToggleButtons(description="layer", options=list(FEATURE_LAYERS), value=layer)
        self.readout = widgets.HTML()
        self.figure = go.FigureWidget()
        self.figure.update_layout(width=640, height=460, margin={"l": 50, "r": 20, "t": 50, "b": 50},
                                  xaxis_title="principal component 1", yaxis_title="principal component 2")
        self._cache: dict[tuple[str, str], dict] = {}
        super().__init__(children=[widgets.HBox([self.backbone, self.layer]), self.readout, self.figure])
        self._show()
        self.backbone.observe(lambda _change: self._show(), names="value")
        self.layer.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict:
        key = (self.backbone.value, self.layer.value)
        if key not in self._cache:
            self._cache[key] = feature_projection(self.backbones[key[0]], self.X, self.y, key[1])
        return self._cache[key]

    def _show(self) -> None:
        d = self.data()
        self.readout.value = (f"{self.backbone.value}, {self.layer.value} features ({d['dim']} numbers): "
                              f"1-NN accuracy {d['knn']:.3f}; the two components explain "
                              f"{sum(d['explained']):.0%} of the variance")
        traces = []
        for c, name in enumerate(self.class_names):
            idx = [i for i, lab in enumerate(d["label"]) if lab == c]
            traces.append(go.Scatter(x=[d["x"][i] for i in idx], y=[d["y"][i] for i in idx], mode="markers",
                                     name=name, marker={"size": 5}))
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.title = f"features of the test images: {self.backbone.value}, {self.layer.value}"
