"""Every lesson's widgets in ONE JupyterLab session, in headless Chromium: a scratch notebook builds each
widget of ``tests/widget_cases.py`` with its small data (one cell each), then the test drives one control of
each the way a learner does (types into a slider's readout, picks a dropdown option) and checks that the
visible DOM follows: the control shows the new value, and the widget's readouts or plots change. Where a
widget shows the same number twice (lesson 06: the value slider and the readout's "knob = value"), both
must agree. A second test per widget measures what the learner sees of its layout: slider tracks, labels
cut off, plots wider than the output area.

Skipped, with the reason, where Playwright's Python package or /usr/bin/chromium is absent (like
tests/test_browser.py). The driver is ``tests/jupyterlab_driver.py``; pitfalls: ``tests/BROWSER.md``.
Failures come with a screenshot in the test's ``tmp_path``. Widgets that fail today are marked
``xfail(strict=True)`` in ``KNOWN_FAILURES`` with the reason.
"""

from __future__ import annotations

import contextlib
import math
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.jupyterlab_driver import (
    READ_WIDGET_JS,
    WIDGET_LAYOUT_JS,
    JupyterLabServer,
    NotebookPage,
    launch_chromium,
    select_dropdown,
    skip_reason,
    step_slider,
    type_into_slider,
    widget_output,
    write_scratch_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "widgets.ipynb"
SKIP_REASON = skip_reason()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=f"browser test skipped: {SKIP_REASON}"),
]
MIN_TRACK_PX = 100
MIN_FONT_PX = 8


@dataclass(frozen=True)
class Drive:
    """What to do to a widget: ``kind`` "slider" (type ``value`` into the readout of the slider described
    ``control``), "step" (arrow keys on a SelectionSlider until its readout shows ``value``) or "dropdown"
    (pick the option labelled ``value``); ``agree``: pairs (slider description,
    regex on the widget's text whose group 1 must equal the slider's readout)."""

    case: str
    kind: str
    control: str
    value: str
    agree: tuple[tuple[str, str], ...] = ()


#: one widget per lesson, its main one (tests/test_widget_conformance.py checks every widget in Python)
DRIVES = {d.case: d for d in (
    Drive("threshold_explorer", "slider", "threshold", "0.20", (("threshold", r"threshold (\S+):"),)),
    Drive("optimizer_explorer", "slider", "steps", "60"),
    Drive("memory_calculator", "slider", "micro-batch", "32"),
    Drive("attention_explorer", "slider", "position", "3"),
    Drive("ring_stepper", "slider", "step", "2"),
    Drive("tradeoff_explorer", "dropdown", "knob", "SVD rank", (("value", r"SVD rank = (\S+)"),)),
    Drive("augment_playground", "slider", "rotate", "90.00"),
    Drive("tabular_explorer", "slider", "example", "3", (("example", r"row (\d+)"),)),
    Drive("layer_stats_explorer", "slider", "checkpoint", "2"),
    Drive("hpo_race", "slider", "budget", "3"),
    Drive("regularization_explorer", "step", "weight decay", "1"),
    Drive("epsilon_dial", "step", "epsilon", "8"),
    Drive("batching_explorer", "step", "arrival rate (req/s)", "800", (("arrival rate (req/s)", r"at (\d+) req/s"),)),
    Drive("kv_cache_calculator", "step", "context (tokens)", "32768", (("context (tokens)", r"at (\d+) tokens"),)),
    Drive("pipeline_timeline", "slider", "micro-batches m", "16", (("micro-batches m", r"m = (\d+) micro-batches"),)),
)}

#: broken widgets of tests/test_widget_conformance.py, in the same session: the checks must reject them
BROKEN_DRIVES = {d.case: d for d in (
    # lesson 06's bug: after the knob changes, the slider shows the first value, the readout the middle one
    Drive("UnobserveAll", "dropdown", "knob", "rank", (("value", r"rank = (\S+)"),)),
    Drive("Unwired", "slider", "n", "7"),  # a slider nothing observes
)}
BROKEN_MESSAGES = {"UnobserveAll": "the 'value' control shows '4', the readout says 'rank = 16'",
                   "Unwired": "no readout and no plot changed"}

#: (case, "drive" or "layout") -> why it fails today (xfail, strict)
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def dom_class(case: str) -> str:
    return "bt-case-" + re.sub(r"[^A-Za-z0-9_-]", "-", case)


def notebook_sources() -> list[str]:
    setup = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport torch\ntorch.set_num_threads(1)\n"
             "from tests.widget_cases import CASES")
    cells = [f"w = CASES[{case!r}].build()\nw.add_class({dom_class(case)!r})\nw" for case in DRIVES]
    broken = [f"from tests.test_widget_conformance import {name}\nw = {name}()\nw.add_class({dom_class(name)!r})\nw"
              for name in BROKEN_DRIVES]
    return [setup, *cells, *broken]


@dataclass
class Session:
    server: JupyterLabServer
    lab: NotebookPage
    out_dir: Path
    run_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    start, cpu = time.monotonic(), _cpu_seconds()
    root = tmp_path_factory.mktemp("widget-lab-root")
    out_dir = tmp_path_factory.mktemp("widget-lab-shots")
    write_scratch_notebook(root / NOTEBOOK, notebook_sources())
    with JupyterLabServer(root, tmp_path_factory.mktemp("widget-lab-state")) as server, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        lab = NotebookPage(context.new_page(), server)
        state = Session(server, lab, out_dir)
        try:
            lab.open(NOTEBOOK)
            state.run_seconds = lab.run_all(len(notebook_sources()), timeout=240)
            lab.check_no_widget_errors()
        except BaseException:
            with contextlib.suppress(Exception):
                lab.screenshot(out_dir / "run-failure.png")
            browser.close()
            raise
        state.seconds["start and run all"] = time.monotonic() - start
        yield state
        browser.close()
    # CPU of this process and of everything it started and reaped: server, kernel, Chromium, Playwright's
    # driver (on an idle 2-core machine the session takes about this long: little of it runs in parallel)
    print(f"\nwidget browser session: {time.monotonic() - start:.1f} s wall, {_cpu_seconds() - cpu:.1f} s CPU "
          f"(run all {state.run_seconds:.1f} s); s per step: "
          + ", ".join(f"{k} {v:.1f}" for k, v in state.seconds.items()))


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _marks(case: str, what: str) -> list[Any]:
    reason = KNOWN_FAILURES.get((case, what))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def _same_number(shown: str | None, typed: str) -> bool:
    try:
        return math.isclose(float(shown), float(typed), rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
        return (shown or "").strip() == typed.strip()


def _drive_problems(before: dict, after: dict, drive: Drive) -> list[str]:
    problems = []
    shown = after["controls"].get(drive.control)
    if not _same_number(shown, drive.value):
        problems.append(f"{drive.control!r} shows {shown!r}, not {drive.value!r}")
    if after["texts"] == before["texts"] and after["plots"] == before["plots"]:
        problems.append("no readout and no plot changed")
    text = " ".join(after["texts"])
    for control, pattern in drive.agree:
        match = re.search(pattern, text)
        readout = after["controls"].get(control)
        if match is None:
            problems.append(f"the widget's text has no {pattern!r}: {text[:200]!r}")
        elif not _same_number(readout, match.group(1)):
            problems.append(f"the {control!r} control shows {readout!r}, the readout says {match.group(0)!r}")
    return problems


def drive_and_check(session: Session, drive: Drive, *, min_plots: int, settle: float | None = None) -> None:
    """Drive ``drive``'s control; raise AssertionError (with a screenshot) unless the widget follows within
    30 s. ``settle``: give up once the widget has shown the same wrong state that long after changing (for
    the broken widgets, whose wrong state is final; then 3 s for one that never changes)."""
    lab, page = session.lab, session.lab.page
    start = time.monotonic()
    widget = widget_output(page, dom_class(drive.case), min_plots=min_plots)
    before = widget.evaluate(READ_WIDGET_JS)
    if _same_number(before["controls"].get(drive.control), drive.value):
        raise AssertionError(f"{drive.control!r} already shows {drive.value}: drive it to another value")
    if drive.kind == "slider":
        type_into_slider(page, widget, drive.control, drive.value)
    elif drive.kind == "step":
        step_slider(page, widget, drive.control, drive.value)
    else:
        select_dropdown(page, widget, drive.control, drive.value)
    deadline = time.monotonic() + (30 if settle is None else 3)
    problems: list[str] = []
    after, changed_at = before, None
    while time.monotonic() < deadline:
        now = widget.evaluate(READ_WIDGET_JS)
        if now != after:
            after, changed_at = now, time.monotonic()
        problems = _drive_problems(before, after, drive)
        if not problems or (settle is not None and changed_at is not None
                            and time.monotonic() - changed_at > settle):
            break
        time.sleep(0.1)
    session.seconds[drive.case] = time.monotonic() - start
    if problems or lab.page_errors:
        shot = lab.screenshot(session.out_dir / f"{dom_class(drive.case)}-failure.png", widget)
        raise AssertionError(f"{drive.case}: after setting {drive.control!r} to {drive.value!r}: "
                             + "; ".join(problems) + f"\nJavaScript errors: {lab.page_errors}\nbefore: {before}\n"
                             f"after: {after}\nscreenshot: {shot}")


@pytest.mark.parametrize("case", [pytest.param(c, marks=_marks(c, "drive")) for c in DRIVES])
def test_driving_a_control_updates_what_the_widget_shows(session, case):
    drive_and_check(session, DRIVES[case], min_plots=1)


@pytest.mark.parametrize("case", list(BROKEN_DRIVES))
def test_the_browser_check_rejects_a_broken_widget(session, case):
    with pytest.raises(AssertionError) as failure:
        drive_and_check(session, BROKEN_DRIVES[case], min_plots=0, settle=1.5)
    assert BROKEN_MESSAGES[case] in str(failure.value), str(failure.value)


@pytest.mark.parametrize("case", [pytest.param(c, marks=_marks(c, "layout")) for c in DRIVES])
def test_widget_layout_in_the_browser(session, case):
    widget = widget_output(session.lab.page, dom_class(case), min_plots=1)
    seen = widget.evaluate(WIDGET_LAYOUT_JS)
    problems = [f"slider {t['label']!r} has a {t['track']} px track" for t in seen["tracks"]
                if t["track"] is not None and t["track"] < MIN_TRACK_PX]
    problems += [f"label {label!r} is cut off" for label in seen["cutLabels"]]
    for i, plot in enumerate(seen["plots"]):
        if plot["outside"]:
            problems.append(f"plot {i} ({plot['width']} px in a {seen['outputWidth']} px output area) draws "
                            f"outside what is visible: {plot['outside'][:6]}")
        if plot["overlaps"]:
            problems.append(f"plot {i}: labels overlap: {plot['overlaps'][:4]}")
        if plot["minFont"] is not None and plot["minFont"] < MIN_FONT_PX:
            problems.append(f"plot {i} draws text at {plot['minFont']:g} px")
    print(f"\n{case}: {seen}")
    if problems:
        shot = session.lab.screenshot(session.out_dir / f"{dom_class(case)}-layout.png", widget)
        raise AssertionError(f"{case}: " + "; ".join(problems) + f"\nscreenshot: {shot}")
