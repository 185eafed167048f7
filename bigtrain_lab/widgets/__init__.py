"""One interactive widget per topic (ipywidgets + plotly), each a thin view over a plain function."""

from bigtrain_lab.widgets.metrics import threshold_explorer, threshold_view

__all__ = ["threshold_explorer", "threshold_view"]
