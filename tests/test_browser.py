"""The metrics lesson in a real JupyterLab, in headless Chromium: run it, move the threshold slider, see
the confusion matrix and the plot follow. A second test proves the check can fail: the same driver on a
short copy of the notebook (its data cells and the explorer) whose slider is no
longer observed must report that nothing followed the slider.

Skipped, with the reason, where Playwright's Python package or /usr/bin/chromium is absent. The driver
(server start / stop, page driving) is ``tests/jupyterlab_driver.py``; what worked here and its pitfalls:
``tests/BROWSER.md``. Screenshots land in the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.jupyterlab_driver import (
    JupyterLabServer,
    WidgetDidNotUpdate,
    code_cell_count,
    copy_notebook,
    launch_chromium,
    run_threshold_scenario,
    skip_reason,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_metrics.ipynb"
BROKEN = "01_metrics_broken_callback.ipynb"
THRESHOLD = 0.2  # far from the initial 0.5: on the imbalanced validation split the counts surely change

SKIP_REASON = skip_reason()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=f"browser test skipped: {SKIP_REASON}"),
]

# The injected bug: the explorer is built as usual, then its slider stops being observed.
BROKEN_CELL = """\
from ipywidgets import FloatSlider

from bigtrain_lab.widgets import threshold_explorer

explorer = threshold_explorer(imb.y_val, val_scores)
for child in explorer.children:  # injected bug (browser test): nothing listens to the slider any more
    if isinstance(child, FloatSlider):
        child.unobserve_all("value")
explorer
"""


#: What the explorer reads, as the lesson computes it (the lesson's other cells add run time, not coverage).
SCORES_CELL = """\
imb_model = make_pipeline(StandardScaler(), LogisticRegression()).fit(imb.X_train, imb.y_train)
val_scores = imb_model.predict_proba(imb.X_val)[:, 1]
"""
BROKEN_CODE_CELLS = 4


def write_broken_copy(source: Path, destination: Path) -> Path:
    """A short notebook from ``source``: its first two code cells (imports, the imbalanced data), the validation
    scores, and the explorer built by ``BROKEN_CELL`` instead of the lesson's ``threshold_explorer`` cell."""
    notebook = json.loads(source.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    explorer = [cell for cell in code if "threshold_explorer(imb.y_val, val_scores)" in "".join(cell["source"])]
    assert len(explorer) == 1, f"expected one threshold_explorer cell in {source}, found {len(explorer)}"
    assert "imb = load_dataset(" in "".join(code[1]["source"]), "the lesson's second code cell no longer loads imb"
    cells = [dict(cell, outputs=[], execution_count=None) for cell in code[:2]]
    for text in (SCORES_CELL, BROKEN_CELL):
        cells.append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": text.splitlines(keepends=True)})
    notebook["cells"] = cells
    assert len(cells) == BROKEN_CODE_CELLS
    destination.write_text(json.dumps(notebook, indent=1))
    return destination


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """One isolated JupyterLab for the module, serving copies of the lesson (JupyterLab autosaves)."""
    root = tmp_path_factory.mktemp("lab-root")
    copy_notebook(NOTEBOOK, root / NOTEBOOK.name)
    write_broken_copy(NOTEBOOK, root / BROKEN)
    with JupyterLabServer(root, tmp_path_factory.mktemp("lab-state")) as server:
        yield server


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def test_threshold_slider_updates_confusion_matrix_and_plot(lab_server, chromium, tmp_path):
    start = time.monotonic()
    result = run_threshold_scenario(chromium, lab_server, NOTEBOOK.name, code_cell_count(NOTEBOOK), tmp_path,
                                    threshold=THRESHOLD)
    print(f"\nscreenshots: {tmp_path} ({', '.join(path.name for path in result.screenshots)})")
    print(f"all cells ran in {result.run_seconds:.1f} s; whole scenario {time.monotonic() - start:.1f} s")
    print(f"before: {result.before.describe()}\nafter:  {result.after.describe()}")
    assert f"threshold {result.before.readout}" in result.before.scores  # the table shows the slider's value
    # Lowering the threshold flags more samples (true and false positives can only grow), raising it fewer.
    lowered = float(result.before.readout) > THRESHOLD
    for cell in ("tp", "fp"):
        grew = result.after.counts[cell] >= result.before.counts[cell]
        shrank = result.after.counts[cell] <= result.before.counts[cell]
        assert grew if lowered else shrank, (cell, result.before.counts, result.after.counts)
    assert result.after.counts != result.before.counts
    assert result.after.markers != result.before.markers
    for path in result.screenshots:
        assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_driver_reports_a_slider_nothing_listens_to(lab_server, chromium, tmp_path):
    """The same driver on a notebook whose slider callback is disconnected must fail, and say why."""
    with pytest.raises(WidgetDidNotUpdate, match="the confusion matrix did not change") as failure:
        run_threshold_scenario(chromium, lab_server, BROKEN, BROKEN_CODE_CELLS, tmp_path,
                               threshold=THRESHOLD, update_timeout=8, prefix="broken-")
    message = str(failure.value)
    assert "the plot's markers did not move" in message
    assert (tmp_path / "broken-failure.png").stat().st_size > 10_000
    print(f"\nas expected: {message.splitlines()[0]}\nscreenshots: {tmp_path}")
