"""Conformance of every widget of ``bigtrain_lab.widgets``, as scikit-learn's ``check_estimator`` runs over
every estimator: each widget (a case of ``tests/widget_cases.py``; a widget without one fails
``test_every_widget_has_a_case``) is built with small data, its controls are found by walking the widget
tree, each is set to several valid values, alternately from Python (``control.value = v``) and the way
the browser does it (a comm ``update`` message carrying the synced state, e.g. a selection's ``index``),
and after every change:

* ``values`` (a): the control holds the value set, and every control's browser-visible state agrees with
  its Python value (a selection's ``options[index]`` is its value: lesson 06's ``unobserve_all("value")``
  removed ipywidgets' own value -> index handler, so the slider showed 2 while readout and marker said 5);
* ``errors`` (b): no observer raised, logged a warning or an error, or wrote an error into an Output widget;
* ``fresh`` (c): the readouts (HTML / Label values) and figures (plotly JSON minus uids) equal those of a
  twin widget brought straight to the same state, after each control's sweep, and of a freshly built widget
  set to the final state at the end;
* ``wired`` (d): changing the control changed at least one readout or figure (unless the case says why
  not, or the control is disabled);
* ``readouts``: no readout shows an unrounded float or NaN (lesson 07: ``-69.99999999999999`` degrees);
* ``figures``: every figure shown passes the lints of ``tests/figure_lint.py`` (titles and legends fit,
  one colour per legend name, log-axis annotations in log10 coordinates, fits an output area);
* ``layout``: sliders keep a usable track, rows of controls fit an output area, descriptions fit.

The broken widgets at the end of this file (``unobserve_all``, a slider nothing observes, an observer that
raises or logs, a readout that keeps history, a log-axis annotation, ...) show that each check fails
when it should. A widget that fails a check today is marked ``xfail(strict=True)`` in ``KNOWN_FAILURES``
with the reason: fixing it turns the test into an XPASS failure, and the mark is then removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import logging
import math
import pkgutil
import types
import typing
import warnings
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.basedatatypes import BaseFigure
from plotly.subplots import make_subplots

from tests import figure_lint
from tests.widget_cases import CASES, FIGURE_CASES, WidgetCase

CHECKS = ("values", "errors", "fresh", "wired", "readouts", "figures", "layout")
READOUT_TYPES = (widgets.HTML, widgets.HTMLMath, widgets.Label)
SELECTION_TYPES = (widgets.widget_selection._Selection, widgets.widget_selection._MultipleSelection)

#: (case id, check) -> why it fails today (xfail, strict: a fix makes it XPASS and fail until removed)
KNOWN_FAILURES: dict[tuple[str, str], str] = {}
#: exported figure function -> why its figure fails a lint today (xfail, strict)
FIGURE_KNOWN_FAILURES: dict[str, str] = {}


# ---- what exists ----------------------------------------------------------------------------------------


def widget_modules() -> list[types.ModuleType]:
    import bigtrain_lab.widgets as package

    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]


def exported_widgets(modules: list[types.ModuleType]) -> dict[str, type]:
    """``"module:Class"`` -> class, for every class of a module's ``__all__`` that is not a dataclass (the
    views are dataclasses; everything else a module exports is something a lesson displays)."""
    out = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                out[f"{module.__name__}:{name}"] = obj
    return out


def exported_figure_functions(modules: list[types.ModuleType]) -> dict[str, Any]:
    """``"module:function"`` -> function, for every function of ``__all__`` annotated to return a figure."""
    out = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                returned = typing.get_type_hints(obj).get("return")
                if inspect.isclass(returned) and issubclass(returned, BaseFigure):
                    out[f"{module.__name__}:{name}"] = obj
    return out


def missing_cases(modules: list[types.ModuleType], cases: dict[str, WidgetCase],
                  figure_cases: dict[str, Any]) -> list[str]:
    """Exported widgets and figure functions that no case builds."""
    covered = {case.widget for case in cases.values()}
    return sorted(set(exported_widgets(modules)) - covered) + sorted(
        set(exported_figure_functions(modules)) - set(figure_cases))


# ---- the widget tree ------------------------------------------------------------------------------------


def descendants(root: Any) -> Iterator[Any]:
    """``root`` and every widget below it, depth first in display order."""
    if isinstance(root, widgets.Widget):
        yield root
    for child in getattr(root, "children", ()) if isinstance(root, widgets.Widget) else ():
        yield from descendants(child)


def _names(root: Any) -> dict[int, str]:
    """id(widget) -> the attribute of ``root`` holding it (``slider``, ``sliders[gamma]``)."""
    names: dict[int, str] = {}
    for attr, value in vars(root).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, (widgets.Widget, BaseFigure)):
            names.setdefault(id(value), attr)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, widgets.Widget):
                    names.setdefault(id(item), f"{attr}[{key}]")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, widgets.Widget):
                    names.setdefault(id(item), f"{attr}[{i}]")
    return names


def is_control(widget: Any) -> bool:
    return (isinstance(widget, widgets.ValueWidget) and not isinstance(widget, READOUT_TYPES)
            and not isinstance(widget, BaseFigure))


def find_controls(root: Any, case: WidgetCase | None = None) -> dict[str, Any]:
    """Name -> control, in sweep order: ``case.first``, then tree order, then ``case.last``."""
    names = _names(root)
    found: dict[str, Any] = {}
    for i, widget in enumerate(descendants(root)):
        if is_control(widget):
            name = names.get(id(widget)) or f"{type(widget).__name__}[{widget.description or i}]"
            found[name] = widget
    if case is None:
        return found
    first = [n for n in case.first if n in found]
    last = [n for n in case.last if n in found]
    middle = [n for n in found if n not in first and n not in last]
    return {n: found[n] for n in first + middle + last}


def find_readouts(root: Any) -> dict[str, Any]:
    names = _names(root)
    return {names.get(id(w)) or f"{type(w).__name__}[{i}]": w for i, w in enumerate(descendants(root))
            if isinstance(w, (*READOUT_TYPES, widgets.Output))}


def find_figures(root: Any) -> dict[str, BaseFigure]:
    names = _names(root)
    found = {names.get(id(w)) or f"figure[{i}]": w for i, w in enumerate(descendants(root))
             if isinstance(w, BaseFigure)}
    if not isinstance(root, widgets.Widget) and isinstance(getattr(root, "figure", None), BaseFigure):
        found.setdefault("figure", root.figure)
    return found


# ---- values, routes, state ------------------------------------------------------------------------------


def _options(widget: Any) -> list[tuple[str, Any]]:
    return list(widget._options_full)


def default_values(widget: Any) -> list[Any]:
    """Several valid values for ``widget``, the far ends first."""
    if isinstance(widget, widgets.widget_selection._MultipleSelection):
        values = [v for _, v in _options(widget)]
        return [(values[0],), tuple(values[: min(3, len(values))]), (values[0], values[-1])]
    if isinstance(widget, widgets.widget_selection._Selection):
        values = [v for _, v in _options(widget)]
        picks = [values[-1], values[0], values[len(values) // 2]]
        return [v for i, v in enumerate(picks) if v not in picks[:i]]
    if isinstance(widget, widgets.FloatLogSlider):
        step = widget.step or 0.1
        mid = widget.min + round((widget.max - widget.min) / 2 / step) * step
        return [widget.base ** e for e in (widget.max, widget.min, mid)]
    if isinstance(widget, (widgets.IntSlider, widgets.FloatSlider, widgets.BoundedIntText,
                           widgets.BoundedFloatText)):
        step = getattr(widget, "step", 1) or 1
        mid = widget.min + round((widget.max - widget.min) / 2 / step) * step
        return [widget.max, widget.min, type(widget.value)(mid)]
    if isinstance(widget, (widgets.Checkbox, widgets.ToggleButton)):
        return [not widget.value, widget.value]
    if isinstance(widget, (widgets.IntText, widgets.FloatText)):
        return [widget.value + 1, widget.value + 3]
    raise NotImplementedError(f"no default values for a {type(widget).__name__}: give them in the case")


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def browser_state(widget: Any, value: Any) -> dict[str, Any]:
    """The state a browser sends when the learner picks ``value``: a selection's index, else the value."""
    if isinstance(widget, SELECTION_TYPES):
        values = [v for _, v in _options(widget)]
        if isinstance(widget, widgets.widget_selection._MultipleSelection):
            return {"index": [values.index(v) for v in value]}
        return {"index": values.index(value)}
    return {"value": value}


def set_value(widget: Any, value: Any, route: str) -> None:
    if route == "python":
        widget.value = value
    else:  # what the kernel does with a comm message from the browser (ipywidgets' Widget._handle_msg)
        widget._handle_msg({"content": {"data": {"method": "update", "state": browser_state(widget, value),
                                                 "buffer_paths": []}}, "buffers": []})


def shown_problems(name: str, widget: Any) -> list[str]:
    """Where the browser would show something else than the Python value (for selections: the synced
    ``index`` must point at the value's label)."""
    state = widget.get_state()
    if isinstance(widget, SELECTION_TYPES):
        labels, values = list(state["_options_labels"]), [v for _, v in _options(widget)]
        index = state["index"]
        if isinstance(widget, widgets.widget_selection._MultipleSelection):
            shown = tuple(values[i] for i in index)
            if not same(shown, tuple(widget.value)):
                return [f"{name}: Python value {widget.value!r}, the browser shows {shown!r} (index {index})"]
            return []
        if index is None:
            return [] if widget.value is None else [f"{name}: value {widget.value!r} but no index is synced"]
        if not same(values[index], widget.value) or labels[index] != widget.label:
            return [f"{name}: Python value {widget.value!r} (label {widget.label!r}), the browser shows "
                    f"{labels[index]!r} (index {index}): the value -> index link is broken"]
        return []
    problems = []
    if "value" in state and not same(state["value"], widget.value):
        problems.append(f"{name}: synced value {state['value']!r} != Python value {widget.value!r}")
    low, high = getattr(widget, "min", None), getattr(widget, "max", None)
    if isinstance(widget, widgets.FloatLogSlider):
        low, high = widget.base ** widget.min, widget.base ** widget.max
    if low is not None and high is not None and not low - 1e-12 <= widget.value <= high + 1e-12:
        problems.append(f"{name}: value {widget.value!r} outside its range [{low}, {high}]")
    return problems


def _plain(value: Any) -> Any:
    """Figure JSON with typed arrays decoded (so numbers compare with a tolerance) and uids dropped."""
    value = figure_lint.plain_json(value)

    def drop_uids(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: drop_uids(v) for k, v in node.items() if k != "uid"}
        if isinstance(node, list):
            return [drop_uids(v) for v in node]
        return node

    return drop_uids(value)


def snapshot(root: Any) -> dict[str, Any]:
    """What the learner sees besides the controls: readout texts and figures' data and layout."""
    readouts = {}
    for name, widget in find_readouts(root).items():
        readouts[name] = list(widget.outputs) if isinstance(widget, widgets.Output) else widget.value
    figures = {name: _plain(fig.to_plotly_json()) for name, fig in find_figures(root).items()}
    return {"readouts": readouts, "figures": figures}


def differences(a: Any, b: Any, path: str = "", limit: int = 6) -> list[str]:
    """Where ``a`` and ``b`` differ (numbers to 1e-6 relative), at most ``limit`` places."""
    out: list[str] = []

    def walk(x: Any, y: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y), key=str):
                if key not in x or key not in y:
                    out.append(f"{where}.{key}: only in {'the first' if key in x else 'the second'}")
                else:
                    walk(x[key], y[key], f"{where}.{key}")
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                out.append(f"{where}: {len(x)} vs {len(y)} items")
            for i, (p, q) in enumerate(zip(x, y, strict=False)):
                walk(p, q, f"{where}[{i}]")
        elif isinstance(x, float) or isinstance(y, float):
            # 1e-6 relative: float32 maths redone in another order may differ in the last bits; a stale
            # or path-dependent state differs by far more
            if not (isinstance(x, (int, float)) and isinstance(y, (int, float))
                    and (math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(x) and math.isnan(y)))):
                out.append(f"{where}: {x!r} vs {y!r}")
        elif x != y:
            out.append(f"{where}: {str(x)[:120]!r} vs {str(y)[:120]!r}")

    walk(a, b, path)
    return out


# ---- errors ---------------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_errors(problems: list[str], what: str) -> Iterator[None]:
    """Record what an observer raises, logs (warning and above; ipywidgets logs the exceptions of a
    browser-driven change as a warning) or warns (RuntimeWarning, or any warning from bigtrain_lab)."""
    handler = _Records()
    loggers = [logging.getLogger(), logging.getLogger("traitlets")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            except Exception as error:  # noqa: BLE001 - an observer's exception is the finding
                problems.append(f"{what}: raised {type(error).__name__}: {error}")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    for record in handler.records:
        detail = f" ({record.exc_info[1]!r})" if record.exc_info else ""
        problems.append(f"{what}: logged {record.levelname} {record.getMessage()[:200]}{detail}")
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning) or "bigtrain_lab" in str(warning.filename):
            problems.append(f"{what}: warned {warning.category.__name__}: {warning.message} "
                            f"({warning.filename}:{warning.lineno})")


def output_errors(root: Any) -> list[str]:
    """Error / stderr outputs that an observer wrote into an Output widget."""
    problems = []
    for name, widget in find_readouts(root).items():
        if isinstance(widget, widgets.Output):
            for output in widget.outputs:
                if output.get("output_type") == "error" or output.get("name") == "stderr":
                    problems.append(f"{name} shows an error: {str(output)[:200]}")
    return problems


# ---- the harness ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """Problems found by each check, and which controls were exercised while enabled."""

    problems: dict[str, list[str]] = dataclasses.field(default_factory=lambda: {c: [] for c in CHECKS})
    exercised: set[str] = dataclasses.field(default_factory=set)
    controls: list[str] = dataclasses.field(default_factory=list)
    n_changes: int = 0

    def add(self, check: str, items: list[str]) -> None:
        for item in items:
            if item not in self.problems[check]:
                self.problems[check].append(item)


def bring_to(widget: Any, controls: dict[str, Any], case: WidgetCase, report: Report, what: str) -> None:
    """Set ``widget``'s controls to ``controls``' values (only those that differ), in sweep order."""
    mine = find_controls(widget, case)
    for name, control in mine.items():
        target = controls[name].value
        if not same(control.value, target):
            with capture_errors(report.problems["errors"], f"{what}: setting {name}"):
                control.value = target


def lint(root: Any, report: Report, shown: dict[str, Any]) -> None:
    """The figure and text lints on ``shown`` (a ``snapshot``), the control layout lints on ``root``."""
    for name, text in shown["readouts"].items():
        if isinstance(text, str):
            report.add("readouts", figure_lint.text_problems(text, f"{name} "))
    for name, fig in shown["figures"].items():
        report.add("figures", [f"{name}: {p}" for p in figure_lint.lint_figure(fig)])
    if isinstance(root, widgets.Widget):
        report.add("layout", figure_lint.control_layout_problems(root))


def run_case(case: WidgetCase) -> Report:
    """Drive every control of ``case``'s widget through its values; the problems each check finds."""
    report = Report()
    errors = report.problems["errors"]
    with capture_errors(errors, "building the widget"):
        root = case.build()
        twin = case.build()
    controls = find_controls(root, case)
    report.controls = list(controls)
    if case.controls and not controls:
        report.add("values", ["no controls found in the widget tree (say controls=False in its case)"])
    if not case.controls and controls:
        report.add("values", [f"the case says no controls, the widget has {list(controls)}"])
    shown = snapshot(root)
    lint(root, report, shown)
    for name, control in controls.items():
        if case.only and name not in case.only:
            continue
        values = list(case.values.get(name, ())) or default_values(control)
        changed_output = False
        tried = 0
        for k, value in enumerate(values):
            if same(control.value, value):
                continue
            route = "python" if k % 2 == 0 else "browser"
            before = shown
            enabled = not getattr(control, "disabled", False)
            with capture_errors(errors, f"{name} = {value!r} ({route})"):
                set_value(control, value, route)
            report.n_changes += 1
            tried += 1
            if not same(control.value, value):
                report.add("values", [f"{name}: set to {value!r} ({route}), it holds {control.value!r}"])
            for other_name, other in controls.items():
                report.add("values", [f"after {name} = {value!r}: {p}" for p in shown_problems(other_name, other)])
            report.add("errors", output_errors(root))
            shown = snapshot(root)
            if shown != before:
                changed_output = True
            if enabled:
                report.exercised.add(name)
            lint(root, report, shown)
        enabled_now = not getattr(control, "disabled", False)
        if tried and not changed_output and name not in case.inert and enabled_now:
            report.add("wired", [f"{name}: {tried} changes ({values}) changed no readout or figure"])
        bring_to(twin, controls, case, report, "twin")
        diff = differences(shown, snapshot(twin))
        if diff:
            report.add("fresh", [f"after sweeping {name}, the widget differs from a twin set straight to the "
                                 f"same controls: " + "; ".join(diff)])
    if controls:
        fresh = case.build()
        bring_to(fresh, controls, case, report, "fresh")
        diff = differences(snapshot(root), snapshot(fresh))
        if diff:
            report.add("fresh", ["at the end, the widget differs from a fresh one set to the same controls: "
                                 + "; ".join(diff)])
        report.add("values", [f"fresh widget: {p}" for n, c in find_controls(fresh, case).items()
                              for p in shown_problems(n, c)])
    return report


_REPORTS: dict[str, Report] = {}


def report_for(case_id: str) -> Report:
    if case_id not in _REPORTS:
        _REPORTS[case_id] = run_case(CASES[case_id])
    return _REPORTS[case_id]


def _params() -> list[Any]:
    params = []
    for case_id in CASES:
        for check in CHECKS:
            reason = KNOWN_FAILURES.get((case_id, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(case_id, check, id=f"{case_id}-{check}", marks=marks))
    return params


# ---- the tests over the real widgets ---------------------------------------------------------------------


def test_every_widget_has_a_case():
    modules = widget_modules()
    missing = missing_cases(modules, CASES, FIGURE_CASES)
    assert not missing, (f"widgets / figure functions without a case in tests/widget_cases.py: {missing}; "
                         f"add one (how to build it with small data)")
    unknown = {case.widget for case in CASES.values()} - set(exported_widgets(modules))
    assert not unknown, f"cases for widgets that no module exports: {unknown}"
    assert set(FIGURE_CASES) <= set(exported_figure_functions(modules))


def test_every_manifest_widget_has_a_case():
    from bigtrain_lab.curriculum import LESSONS

    covered = {case.widget for case in CASES.values()}
    for lesson in LESSONS:
        for topic in lesson.topics:
            module = importlib.import_module(topic.widget_module) if topic.widgets else None
            for name in topic.widgets:
                obj = getattr(module, name)
                cls = obj if inspect.isclass(obj) else typing.get_type_hints(obj)["return"]
                assert f"{module.__name__}:{cls.__name__}" in covered, f"{name} (lesson {lesson.number}) has no case"


@pytest.mark.parametrize(("case_id", "check"), _params())
def test_widget_conformance(case_id: str, check: str):
    report = report_for(case_id)
    problems = report.problems[check]
    assert not problems, f"{case_id} fails {check!r}:\n- " + "\n- ".join(problems[:12])


def test_every_control_is_exercised_enabled():
    """Each control of each widget class was changed while enabled in at least one case (a schedule's
    unused settings are greyed out: its cases together must cover them)."""
    by_widget: dict[str, tuple[set[str], set[str]]] = {}
    for case_id, case in CASES.items():
        report = report_for(case_id)
        seen, all_names = by_widget.setdefault(case.widget, (set(), set()))
        seen |= report.exercised
        all_names |= set(report.controls)
    for widget, (seen, all_names) in by_widget.items():
        assert all_names <= seen, f"{widget}: never changed while enabled: {sorted(all_names - seen)}"


@pytest.mark.parametrize("name", [pytest.param(
    name, marks=[pytest.mark.xfail(strict=True, reason=FIGURE_KNOWN_FAILURES[name])]
    if name in FIGURE_KNOWN_FAILURES else []) for name in sorted(FIGURE_CASES)])
def test_exported_figure_functions_pass_the_lints(name):
    problems = figure_lint.lint_figure(FIGURE_CASES[name]())
    assert not problems, f"{name}: " + "; ".join(problems)


# ---- broken widgets: each check must reject one -----------------------------------------------------------


class UnobserveAll(widgets.VBox):
    """Lesson 06's bug: the knob handler calls ``unobserve_all("value")`` on the value slider, which also
    drops ipywidgets' own value -> index handler."""

    def __init__(self) -> None:
        self.values = {"bits": [8, 6, 4, 2], "rank": [4, 8, 16, 32]}
        self.knob = widgets.Dropdown(options=list(self.values), value="bits", description="knob")
        self.value = widgets.SelectionSlider(options=self.values["bits"], description="value")
        self.readout = widgets.HTML()
        super().__init__([self.knob, self.value, self.readout])
        self._show()
        self.knob.observe(self._on_knob, names="value")
        self.value.observe(lambda _: self._show(), names="value")

    def _on_knob(self, change: dict) -> None:
        options = self.values[change["new"]]
        self.value.unobserve_all("value")
        self.value.options = options
        self.value.value = options[len(options) // 2]
        self.value.observe(lambda _: self._show(), names="value")
        self._show()

    def _show(self) -> None:
        self.readout.value = f"{self.knob.value} = {self.value.value}"


class Unwired(widgets.VBox):
    """A slider nothing observes."""

    def __init__(self) -> None:
        self.slider = widgets.IntSlider(value=3, min=0, max=10, description="n")
        self.readout = widgets.HTML(value="n = 3")
        super().__init__([self.slider, self.readout])


class Raises(widgets.VBox):
    """An observer that raises for some values (the browser's change is logged by ipywidgets)."""

    def __init__(self) -> None:
        self.slider = widgets.IntSlider(value=5, min=0, max=10, description="n")
        self.readout = widgets.HTML()
        super().__init__([self.slider, self.readout])
        self.slider.observe(self._show, names="value")

    def _show(self, change: dict) -> None:
        self.readout.value = f"1/n = {1 / change['new']:.3f}"


class LogsAnError(widgets.VBox):
    """An observer that swallows its exception into a log line, and one that writes it into an Output."""

    def __init__(self) -> None:
        self.slider = widgets.IntSlider(value=5, min=0, max=10, description="n")
        self.readout = widgets.HTML()
        self.out = widgets.Output()
        super().__init__([self.slider, self.readout, self.out])
        self.slider.observe(self._show, names="value")

    def _show(self, change: dict) -> None:
        self.readout.value = f"n = {change['new']}"
        if change["new"] == 0:
            logging.getLogger("bigtrain_lab.demo").error("could not draw n = 0")
            self.out.outputs = ({"output_type": "error", "ename": "ValueError", "evalue": "n = 0",
                                 "traceback": []},)


class KeepsHistory(widgets.VBox):
    """A figure that appends a point per change instead of showing the state (path-dependent)."""

    def __init__(self) -> None:
        self.slider = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.1, description="x")
        self.figure = go.FigureWidget(go.Scatter(x=[0.5], y=[0.25], name="x^2"))
        self.figure.update_layout(width=500, height=300, title="x squared")
        super().__init__([self.slider, self.figure])
        self.slider.observe(self._show, names="value")

    def _show(self, change: dict) -> None:
        trace = self.figure.data[0]
        trace.x, trace.y = [*trace.x, change["new"]], [*trace.y, change["new"] ** 2]


class Unrounded(widgets.VBox):
    """A readout that prints a float as Python computes it (0.1 added ten times: 0.9999999999999999)."""

    def __init__(self) -> None:
        self.slider = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.1, description="x")
        self.readout = widgets.HTML("0.5 units")
        super().__init__([self.slider, self.readout])
        self.slider.observe(lambda change: setattr(self.readout, "value",
                                                   f"{sum([0.1] * round(change['new'] * 10))} units"), names="value")


class LogAnnotation(widgets.VBox):
    """Lesson 09's LR range test: ``add_vline(annotation_text=...)`` on a log axis."""

    def __init__(self) -> None:
        self.slider = widgets.FloatLogSlider(value=0.327, base=10, min=-4, max=0, step=0.1, description="lr")
        self.figure = go.FigureWidget()
        super().__init__([self.slider, self.figure])
        self._show()
        self.slider.observe(lambda _: self._show(), names="value")

    def _show(self) -> None:
        lrs = np.logspace(-5, 0, 30)
        fig = go.Figure(go.Scatter(x=lrs, y=np.abs(np.log10(lrs / self.slider.value)), name="loss"))
        fig.add_vline(x=self.slider.value, line_dash="dash", annotation_text="suggestion")
        fig.update_xaxes(type="log")
        fig.update_layout(width=600, height=300, title="LR range test")
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(list(fig.data))
            self.figure.layout = fig.layout


class MismatchedColours(widgets.VBox):
    """Lesson 09's "at initialisation": one trace per scheme and panel, colours left to plotly's cycle,
    and a title longer than the figure, a legend pushed off the canvas."""

    def __init__(self) -> None:
        self.dropdown = widgets.Dropdown(options=["one layer", "two layers"], description="depth")
        self.figure = go.FigureWidget(make_subplots(rows=1, cols=2))
        super().__init__([self.dropdown, self.figure])
        self._show()
        self.dropdown.observe(lambda _: self._show(), names="value")

    def _show(self) -> None:
        n = 1 + self.dropdown.index
        with self.figure.batch_update():
            self.figure.data = ()
            for scheme in ("kaiming", "default", "zeros"):
                self.figure.add_scatter(x=[1, 2], y=[n, 2 * n], name=scheme, legendgroup=scheme, row=1, col=1)
                self.figure.add_scatter(x=[1, 2], y=[n, 3 * n], name=scheme, legendgroup=scheme, showlegend=False,
                                        row=1, col=2)
            self.figure.update_layout(width=500, height=300, legend={"x": 1.6},
                                      title="at initialisation, per hidden layer: activation std and the "
                                            "gradient norm of every scheme")


class CrampedControls(widgets.VBox):
    """Lesson 03's memory calculator: four controls in one row (sliders squeezed), a 150 px slider."""

    def __init__(self) -> None:
        self.model = widgets.Dropdown(options=["small", "large"], description="model")
        self.precision = widgets.ToggleButtons(options=["fp32", "mixed"], description="precision")
        self.batch = widgets.IntSlider(value=8, min=1, max=64, description="micro-batch")
        self.seq = widgets.FloatSlider(value=1, min=0.1, max=1, description="seq / block",
                                       layout=widgets.Layout(width="150px"))
        self.readout = widgets.HTML()
        super().__init__([widgets.HBox([self.model, self.precision, self.batch, self.seq]), self.readout])
        self._show()
        for control in (self.model, self.precision, self.batch, self.seq):
            control.observe(lambda _: self._show(), names="value")

    def _show(self) -> None:
        self.readout.value = f"{self.model.value} {self.precision.value} {self.batch.value} {self.seq.value:.2f}"


BROKEN = {
    "unobserve_all": (UnobserveAll, "values", "the value -> index link is broken"),
    "unwired slider": (Unwired, "wired", "changed no readout or figure"),
    "observer raises": (Raises, "errors", "ZeroDivisionError"),
    "observer logs": (LogsAnError, "errors", "could not draw n = 0"),
    "error in an Output": (LogsAnError, "errors", "shows an error"),
    "keeps history": (KeepsHistory, "fresh", "differs from a twin"),
    "unrounded readout": (Unrounded, "readouts", "unrounded number '0.9999999999999999'"),
    "log-axis annotation": (LogAnnotation, "figures", "drawn at 10^"),
    "colours across subplots": (MismatchedColours, "figures", "is drawn in 2 colours"),
    "title cut off": (MismatchedColours, "figures", "it is cut off"),
    "legend off canvas": (MismatchedColours, "figures", "off the canvas"),
    "squeezed row": (CrampedControls, "layout", "fitted into"),
    "tiny slider": (CrampedControls, "layout", "px of track left"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_check_rejects_a_broken_widget(name):
    cls, check, message = BROKEN[name]
    report = run_case(WidgetCase(f"{__name__}:{cls.__name__}", cls))
    found = report.problems[check]
    assert any(message in p for p in found), f"{name}: {check!r} did not report {message!r}; it found {found}"


def test_a_correct_widget_passes_every_check():
    """The harness does not complain about a widget that is right (the broken ones differ from it by
    their bug only)."""

    class Correct(widgets.VBox):
        def __init__(self) -> None:
            self.values = {"bits": [8, 6, 4, 2], "rank": [4, 8, 16, 32]}
            self.knob = widgets.Dropdown(options=list(self.values), value="bits", description="knob")
            self.value = widgets.SelectionSlider(options=self.values["bits"], description="value")
            self.log_lr = widgets.FloatLogSlider(value=0.01, base=10, min=-4, max=0, step=0.1, description="lr")
            self.readout = widgets.HTML()
            self.figure = go.FigureWidget()
            super().__init__([widgets.HBox([self.knob, self.log_lr]), self.value, self.readout, self.figure])
            self._quiet = False
            self._show()
            self.knob.observe(self._on_knob, names="value")
            self.value.observe(lambda _: self._show(), names="value")
            self.log_lr.observe(lambda _: self._show(), names="value")

        def _on_knob(self, change: dict) -> None:
            options = self.values[change["new"]]
            self._quiet = True
            try:
                self.value.options = options
                self.value.value = options[len(options) // 2]
            finally:
                self._quiet = False
            self._show()

        def _show(self) -> None:
            if self._quiet:
                return
            self.readout.value = f"{self.knob.value} = {self.value.value}"
            lrs = np.logspace(-5, 0, 20)
            fig = go.Figure(go.Scatter(x=lrs, y=np.abs(np.log10(lrs / self.log_lr.value)), name="loss"))
            fig.add_vline(x=self.log_lr.value, line_dash="dash")
            fig.add_annotation(x=math.log10(self.log_lr.value), y=1, yref="paper", text="suggestion",
                               showarrow=False)
            fig.update_xaxes(type="log")
            fig.update_layout(width=600, height=300, title=f"{self.knob.value} = {self.value.value}")
            with self.figure.batch_update():
                self.figure.data = ()
                self.figure.add_traces(list(fig.data))
                self.figure.layout = fig.layout

    report = run_case(WidgetCase(f"{__name__}:Correct", Correct))
    assert not any(report.problems.values()), report.problems
    assert report.exercised == {"knob", "value", "log_lr"} and report.n_changes >= 6


def test_a_widget_without_a_case_is_reported():
    module = types.ModuleType("bigtrain_lab.widgets.fake")

    class NewExplorer(widgets.VBox):
        pass

    def new_figure() -> go.Figure:
        return go.Figure()

    NewExplorer.__module__ = new_figure.__module__ = module.__name__
    module.NewExplorer, module.new_figure, module.__all__ = NewExplorer, new_figure, ["NewExplorer", "new_figure"]
    assert missing_cases([module], CASES, FIGURE_CASES) == ["bigtrain_lab.widgets.fake:NewExplorer",
                                                            "bigtrain_lab.widgets.fake:new_figure"]


def _subplot_titles_figure() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("activation std of every hidden layer (log scale)",
                                                        "gradient norm of every weight matrix (log scale)"))
    return fig.update_layout(width=600, height=300)


def _log_annotation_only() -> go.Figure:
    fig = go.Figure(go.Scatter(x=np.logspace(-5, 0, 20), y=np.arange(20.0)))
    fig.add_annotation(x=2.0, y=5, text="steepest", showarrow=False)  # 10^2: far right of the data
    return fig.update_xaxes(type="log").update_layout(width=600)


FIGURE_LINT_CASES = {
    "wide figure": (lambda: go.Figure(go.Bar(y=[1, 2])).update_layout(width=1000, margin={"r": 20}),
                    "its plot area is clipped"),
    "tiny font": (lambda: go.Figure(go.Heatmap(z=[[1, 2]], texttemplate="%{z}", textfont={"size": 6})),
                  "is 6 px"),
    "subplot titles": (_subplot_titles_figure, "overlap"),
    "log annotation": (_log_annotation_only, "outside the data"),
    "duplicate legend": (lambda: go.Figure([go.Scatter(y=[1], name="a"), go.Scatter(y=[2], name="a")]),
                         "lists 'a' 2 times"),
}


@pytest.mark.parametrize("name", sorted(FIGURE_LINT_CASES))
def test_each_figure_lint_rejects_a_broken_figure(name):
    build, message = FIGURE_LINT_CASES[name]
    problems = figure_lint.lint_figure(build())
    assert any(message in p for p in problems), problems


def test_figure_lints_pass_a_plain_figure_and_controls():
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for col, colour in ((1, "#1f77b4"), (2, "#1f77b4")):
        fig.add_scatter(y=[1, 0.5], name="train", legendgroup="train", line={"color": colour}, showlegend=col == 1,
                        row=1, col=col)
    fig.update_layout(title="training curves", height=300)  # width unset: fills the output area
    assert figure_lint.lint_figure(fig) == []
    box = widgets.VBox([widgets.HBox([widgets.Dropdown(options=["a"], description="model"),
                                      widgets.IntSlider(description="batch")])])
    assert figure_lint.control_layout_problems(box) == []
    cut = widgets.IntSlider(description="gradient accumulation steps")
    assert any("is cut off" in p for p in figure_lint.control_layout_problems(cut))
