"""Lints for what a learner sees: plotly figures and the layout of ipywidgets controls.

Each lint returns a list of problems (strings; empty = fine) and works on the figure's JSON, so it applies
to a ``go.Figure`` or a ``go.FigureWidget`` alike. What they catch, each seen in a lesson:

* ``title_problems``: a title, or a subplot title / annotation, wider than the space it has (cut off,
  or running into its neighbour); text width is estimated from the characters (Open Sans metrics,
  rounded up a little), so only a clear overflow fails.
* ``legend_problems``: a legend placed off the canvas; one name listed twice.
* ``colour_problems``: the same legend name (or legend group) drawn in different colours in different
  traces, e.g. one trace per subplot left to plotly's default colour cycle (lesson 09 "at initialisation":
  the second and third panels' colours did not match the legend).
* ``log_axis_problems``: an annotation on a log axis that is not in log10 coordinates. Plotly takes a
  shape's ``x0`` on a log axis as a data value but an annotation's ``x`` as log10 of it, so
  ``fig.add_vline(x=0.327, annotation_text=...)`` on a log x axis draws the line at 0.327 and its label
  at 10^0.327 = 2.1 (the lesson 09 LR range test).
* ``size_problems``: a figure whose plot area (or right-hand legend) is wider than a JupyterLab output
  area (its right part is clipped), fonts smaller than 8 px.
* ``text_problems``: a readout or figure title showing an unrounded float (``-69.99999999999999`` degrees
  in lesson 07's playground caption) or NaN / inf.
* ``control_layout_problems`` (widgets): a slider whose track is tiny once its description and readout
  are taken from its width, also after its row of controls is fitted into the output area (the browser
  shrinks the sliders: 40-pixel sliders in lesson 03's memory calculator), a description cut off by its
  label width.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

#: Width (px) of a notebook output area in JupyterLab 4.6 at a 1280 x 900 window, the file browser open
#: (tests/test_widget_browser.py prints what it measures): a figure or a row of controls wider than this
#: is clipped or squeezed on a laptop screen.
OUTPUT_WIDTH = 848
PLOTLY_DEFAULT_WIDTH = 700
PLOTLY_DEFAULT_MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}
DEFAULT_COLORWAY = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
                    "#FF97FF", "#FECB52")
MIN_FONT_PX = 8
#: ipywidgets 8 defaults (--jp-widgets-inline-width, --jp-widgets-inline-label-width)
WIDGET_WIDTH = 300
LABEL_WIDTH = 80
READOUT_WIDTH = 64
MIN_TRACK = 100

# Advance widths of Open Sans (plotly's default font) in em, rounded up; unknown characters count as "M"-ish.
_NARROW = set("ijlI.,:;|!'`()[] ")
_WIDE = set("mwMW@%")


def text_width(text: str, size: float) -> float:
    """Estimated width in px of ``text`` (HTML tags removed) at font ``size`` px."""
    plain = strip_tags(text)
    em = 0.0
    for char in plain:
        if char in _NARROW:
            em += 0.3
        elif char in _WIDE:
            em += 0.85
        elif char.isupper() or char.isdigit():
            em += 0.62
        else:
            em += 0.55
    return em * size


def strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text or "")


def _lines(text: str, size: float) -> list[tuple[str, float]]:
    """The lines of a plotly text (split at <br>) with their font size (<sub> / <sup> at 0.7)."""
    out = []
    for line in re.split(r"<br\s*/?>", text or "", flags=re.IGNORECASE):
        small = bool(re.fullmatch(r"\s*<su[bp]>.*</su[bp]>\s*", line, flags=re.DOTALL))
        out.append((line, size * (0.7 if small else 1.0)))
    return out


def plain_json(value: Any) -> Any:
    """``value`` with plotly's base64 typed arrays (``{"dtype", "bdata", "shape"}``, what numpy arrays
    become in plotly >= 6) decoded into nested lists, numpy scalars into Python numbers."""
    import base64

    import numpy as np

    if isinstance(value, dict):
        if set(value) in ({"dtype", "bdata"}, {"dtype", "bdata", "shape"}):
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            if "shape" in value:
                array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
            return array.tolist()
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_dict(fig: Any) -> dict:
    if isinstance(fig, dict):
        return plain_json(fig)
    return plain_json(fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig.to_dict())


def _layout_value(layout: dict, *path: str, default: Any = None) -> Any:
    """``layout[path]``, else the template's value, else ``default``."""
    for source in (layout, layout.get("template", {}).get("layout", {}) if isinstance(layout.get("template"), dict)
                   else {}):
        node: Any = source
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if node is not None:
            return node
    return default


def figure_geometry(fig: Any) -> tuple[float, float, dict[str, float]]:
    """(width, height, margins) in px, with plotly's defaults for what the figure leaves unset."""
    layout = _as_dict(fig).get("layout", {})
    width = layout.get("width") or PLOTLY_DEFAULT_WIDTH
    height = layout.get("height") or 450
    margin = {k: (layout.get("margin") or {}).get(k, v) for k, v in PLOTLY_DEFAULT_MARGIN.items()}
    return float(width), float(height), {k: float(v) for k, v in margin.items()}


# ---- titles and annotations ---------------------------------------------------------------------------


def title_problems(fig: Any) -> list[str]:
    """The figure title and every paper-anchored annotation (subplot titles) must fit the canvas, and
    annotations on one line must not overlap."""
    spec = _as_dict(fig)
    layout = spec.get("layout", {})
    width, _height, margin = figure_geometry(spec)
    problems = []
    title = layout.get("title") or {}
    title = {"text": title} if isinstance(title, str) else title
    text = title.get("text") or ""
    if text:
        size = (title.get("font") or {}).get("size") or _layout_value(layout, "title", "font", "size") or 17
        x = title.get("x", _layout_value(layout, "title", "x", default=0.5))
        xref = title.get("xref") or "container"
        xanchor = title.get("xanchor") or "auto"
        if xanchor == "auto":
            xanchor = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "center"
        left, right = (0.0, width) if xref == "container" else (margin["l"], width - margin["r"])
        pos = left + x * (right - left)
        room = {"left": width - pos, "right": pos, "center": 2 * min(pos, width - pos)}[xanchor]
        for line, line_size in _lines(text, size):
            need = text_width(line, line_size)
            if need > room * 1.02:
                problems.append(f"title line {strip_tags(line)!r} needs about {need:.0f} px, the figure gives it "
                                f"{room:.0f} px (width {width:.0f}): it is cut off")
    plot_width = width - margin["l"] - margin["r"]
    boxes = []
    for ann in layout.get("annotations") or []:
        if ann.get("xref", "x") != "paper" or not ann.get("text") or ann.get("visible") is False:
            continue
        size = (ann.get("font") or {}).get("size") or _layout_value(layout, "font", "size", default=12) or 12
        need = max(text_width(line, s) for line, s in _lines(ann["text"], size))
        x_px = margin["l"] + float(ann.get("x", 0.5)) * plot_width
        anchor = ann.get("xanchor", "auto")
        if anchor == "auto":
            anchor = "center"
        lo = {"left": x_px, "right": x_px - need, "center": x_px - need / 2}[anchor]
        hi = lo + need
        label = strip_tags(ann["text"])[:60]
        if lo < -2 or hi > width + 2:
            problems.append(f"annotation {label!r} spans {lo:.0f}..{hi:.0f} px of a {width:.0f} px figure: "
                            f"it is cut off")
        boxes.append((round(float(ann.get("y", 0)), 2), lo, hi, label))
    boxes.sort()
    for (y1, _lo1, hi1, a), (y2, lo2, _hi2, b) in zip(boxes, boxes[1:], strict=False):
        if y1 == y2 and lo2 < hi1 - 4:
            problems.append(f"annotations {a!r} and {b!r} overlap by about {hi1 - lo2:.0f} px")
    return problems


# ---- legend and colours -------------------------------------------------------------------------------


def _legend_shown(spec: dict) -> bool:
    layout = spec.get("layout", {})
    if layout.get("showlegend") is not None:
        return bool(layout["showlegend"])
    shown = [t for t in spec.get("data", []) if t.get("showlegend") is not False
             and t.get("type", "scatter") not in ("heatmap", "image", "contour", "surface")]
    return len(shown) >= 2 or any(t.get("showlegend") for t in spec.get("data", []))


def legend_problems(fig: Any) -> list[str]:
    """A shown legend lies on the canvas and lists each name once."""
    spec = _as_dict(fig)
    if not _legend_shown(spec):
        return []
    problems = []
    legend = spec.get("layout", {}).get("legend") or {}
    x, y = legend.get("x"), legend.get("y")
    if (x is not None and not -0.6 <= x <= 1.3) or (y is not None and not -0.6 <= y <= 1.5):
        problems.append(f"the legend sits at paper ({x}, {y}): off the canvas")
    if legend.get("x") is not None and legend.get("x") >= 1 and spec["layout"].get("margin", {}).get(
            "autoexpand") is False:
        problems.append("the legend is right of the plot with margin.autoexpand off: it is cut off")
    seen: dict[tuple, int] = {}
    for trace in spec.get("data", []):
        if trace.get("showlegend") is False or not trace.get("name") or trace.get("visible") is False:
            continue
        key = (trace["name"], trace.get("legendgroup"))
        seen[key] = seen.get(key, 0) + 1
    problems += [f"the legend lists {name!r} {n} times" for (name, _), n in seen.items() if n > 1]
    return problems


def effective_colour(trace: dict, index: int, colorway: Iterable[str]) -> str | None:
    """The colour plotly draws ``trace`` (the ``index``-th) in: its explicit line / marker colour, else the
    colorway's colour for its index; None for traces without a single colour (heatmaps, arrays)."""
    kind = trace.get("type", "scatter")
    if kind in ("heatmap", "image", "contour", "surface", "histogram2d", "table"):
        return None
    mode = trace.get("mode") or "lines"
    order = (("line", "color"), ("marker", "color")) if kind == "scatter" and "lines" in mode else \
        (("marker", "color"), ("line", "color"))
    for outer, inner in order:
        value = (trace.get(outer) or {}).get(inner)
        if isinstance(value, str):
            return value.lower()
        if value is not None:
            return None  # per-point colours
    colours = list(colorway)
    return colours[index % len(colours)].lower()


def colour_problems(fig: Any) -> list[str]:
    """Traces that share a legend name (or legend group) share a colour."""
    spec = _as_dict(fig)
    layout = spec.get("layout", {})
    colorway = layout.get("colorway") or _layout_value(layout, "colorway") or DEFAULT_COLORWAY
    groups: dict[str, dict[str, list[int]]] = {}
    for i, trace in enumerate(spec.get("data", [])):
        key = trace.get("legendgroup") or trace.get("name")
        colour = effective_colour(trace, i, colorway)
        if key and colour:
            groups.setdefault(key, {}).setdefault(colour, []).append(i)
    return [f"legend entry {key!r} is drawn in {len(colours)} colours ({', '.join(colours)}; traces "
            f"{sorted(i for idx in colours.values() for i in idx)}): give its traces one colour"
            for key, colours in groups.items() if len(colours) > 1]


# ---- log axes -----------------------------------------------------------------------------------------


def _axis(layout: dict, ref: str) -> dict | None:
    """The axis object for a reference like ``x``, ``y2`` or ``x domain`` (None for paper refs)."""
    parts = (ref or "").split()
    ref = parts[0] if parts else ""
    if not re.fullmatch(r"[xy]\d*", ref):
        return None
    name = f"{ref[0]}axis{ref[1:]}"
    return layout.get(name) or {}


def _numbers(values: Any) -> list[float]:
    out = []
    for v in values if isinstance(values, (list, tuple)) else list(values) if values is not None else []:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def log_axis_problems(fig: Any) -> list[str]:
    """On a log axis an annotation's coordinate is log10 of the data value (a shape's is the data value).
    Flags annotations placed at a shape's data coordinate and annotations outside the axis's data."""
    spec = _as_dict(fig)
    layout = spec.get("layout", {})
    problems = []
    for ann in layout.get("annotations") or []:
        for letter in ("x", "y"):
            ref = ann.get(f"{letter}ref") or letter  # plotly's default: the first axis
            axis = _axis(layout, ref)
            if axis is None or axis.get("type") != "log" or ann.get(letter) is None or "domain" in ref:
                continue
            pos = float(ann[letter])
            label = strip_tags(ann.get("text", ""))[:40]
            for shape in layout.get("shapes") or []:
                if (shape.get(f"{letter}ref") or letter) == ref and shape.get(f"{letter}0") == shape.get(
                        f"{letter}1") == ann[letter]:
                    problems.append(f"annotation {label!r} at {letter}={pos:g} on a log axis is drawn at "
                                    f"10^{pos:g} = {10 ** pos:.3g}, while the shape it labels is at {pos:g}: "
                                    f"put the annotation at log10({pos:g}) = "
                                    f"{math.log10(pos) if pos > 0 else float('nan'):.3g}")
                    break
            else:
                values = [v for t in spec.get("data", []) if (t.get(f"{letter}axis") or letter) == ref
                          for v in _numbers(t.get(letter)) if v > 0]
                if values:
                    lo, hi = math.log10(min(values)), math.log10(max(values))
                    pad = max(0.5, 0.25 * (hi - lo))
                    if not lo - pad <= pos <= hi + pad:
                        problems.append(f"annotation {label!r} at {letter}={pos:g} on a log axis lands at "
                                        f"{10 ** pos:.3g}, outside the data ({min(values):.3g}..{max(values):.3g})"
                                        f": annotations on log axes take log10 coordinates")
    return problems


# ---- sizes --------------------------------------------------------------------------------------------


def _font_sizes(node: Any, path: str = "") -> Iterable[tuple[str, float]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "template":
                continue
            if key == "size" and path.endswith("font") and isinstance(value, (int, float)):
                yield path, float(value)
            else:
                yield from _font_sizes(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _font_sizes(value, f"{path}[{i}]")


def size_problems(fig: Any, *, max_width: float = OUTPUT_WIDTH) -> list[str]:
    """A figure fits an output area; no font below ``MIN_FONT_PX``."""
    spec = _as_dict(fig)
    width, _height, margin = figure_geometry(spec)
    problems = []
    # (a legend at the right is drawn inside the width: plotly widens the right margin for it)
    if width - margin["r"] > max_width:
        problems.append(f"the figure is {width:.0f} px wide (right margin {margin['r']:.0f}); a JupyterLab output "
                        f"area is {max_width} px at a 1280 px window: its plot area is clipped (leave width unset, "
                        f"or at most {max_width})")
    for path, size in _font_sizes(spec):
        if size < MIN_FONT_PX:
            problems.append(f"font {path} is {size:g} px (< {MIN_FONT_PX})")
    return problems


def lint_figure(fig: Any, *, max_width: float = OUTPUT_WIDTH) -> list[str]:
    """Every figure lint."""
    return (title_problems(fig) + legend_problems(fig) + colour_problems(fig) + log_axis_problems(fig)
            + size_problems(fig, max_width=max_width) + figure_text_problems(fig))


# ---- texts --------------------------------------------------------------------------------------------

_UNROUNDED = re.compile(r"-?\d+\.\d*(?:0{6,}[1-9]|9{6,})\d*|-?\d+\.\d{10,}")
_NOT_A_NUMBER = re.compile(r"(?<![\w.])(?:nan|-?inf)(?![\w])", re.IGNORECASE)


def text_problems(text: str, where: str = "") -> list[str]:
    """Unrounded floats (``0.30000000000000004``, ``69.99999999999999``) and NaN / inf shown as text."""
    plain = strip_tags(text or "")
    problems = [f"{where}shows the unrounded number {m.group(0)!r}" for m in _UNROUNDED.finditer(plain)]
    problems += [f"{where}shows {m.group(0)!r}" for m in _NOT_A_NUMBER.finditer(plain)]
    return problems


def figure_text_problems(fig: Any) -> list[str]:
    """``text_problems`` of the title and annotations of a figure."""
    layout = _as_dict(fig).get("layout", {})
    title = layout.get("title") or {}
    texts = [title if isinstance(title, str) else title.get("text") or ""]
    texts += [ann.get("text") or "" for ann in layout.get("annotations") or []]
    return [p for text in texts for p in text_problems(text, "a title or annotation ")]


# ---- widget layout ------------------------------------------------------------------------------------


def _px(value: Any) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*px\s*", str(value)) if value else None
    return float(match.group(1)) if match else None


def _description_width(widget: Any) -> float:
    description = getattr(widget, "description", "") or ""
    if not description:
        return 0.0
    style = getattr(widget, "style", None)
    given = getattr(style, "description_width", "") if style is not None else ""
    if given == "initial":
        return text_width(description, 13) + 8
    return _px(given) or LABEL_WIDTH


def natural_width(widget: Any) -> float:
    """Estimated width (px) the browser gives ``widget`` when nothing squeezes it (ipywidgets 8 defaults)."""
    import ipywidgets as widgets

    given = _px(widget.layout.width) if hasattr(widget, "layout") else None
    if given is not None:
        return given
    if isinstance(widget, widgets.HBox):
        return sum(natural_width(child) for child in widget.children)
    if isinstance(widget, (widgets.VBox, widgets.Box)) and not isinstance(widget, widgets.GridBox):
        return max((natural_width(child) for child in widget.children), default=0.0)
    if isinstance(widget, widgets.GridBox):
        columns = _grid_columns(widget)
        return sum(columns) if columns else WIDGET_WIDTH
    if isinstance(widget, widgets.ToggleButtons):
        return _description_width(widget) + len(widget.options) * (WIDGET_WIDTH / 2)
    if hasattr(widget, "to_plotly_json"):  # a plotly FigureWidget
        return figure_geometry(widget)[0]
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath, widgets.Label, widgets.Output)):
        return 0.0  # text wraps
    return WIDGET_WIDTH


def _grid_columns(grid: Any) -> list[float]:
    template = grid.layout.grid_template_columns or ""
    match = re.fullmatch(r"\s*repeat\(\s*(\d+)\s*,\s*(\d+)px\s*\)\s*", template)
    if match:
        return [float(match.group(2))] * int(match.group(1))
    return [w for w in (_px(part) for part in template.split()) if w is not None]


def is_slider(widget: Any) -> bool:
    name = type(widget).__name__
    return name.endswith("Slider") or name.endswith("RangeSlider")


def _has_slider(widget: Any) -> bool:
    return is_slider(widget) or any(_has_slider(c) for c in getattr(widget, "children", ()))


def control_layout_problems(root: Any, *, max_width: float = OUTPUT_WIDTH) -> list[str]:
    """Sliders keep a usable track once their row is fitted into the output area (a row wider than it
    shrinks its sliders, the boxes holding sliders, by equal shares: the other controls keep their width);
    descriptions fit their label."""
    import ipywidgets as widgets

    problems = []

    def walk(widget: Any, available: float, row: str) -> None:
        if isinstance(widget, widgets.GridBox):
            columns = _grid_columns(widget)
            for child in widget.children:
                walk(child, min([available, *columns[:1]]), row)
            return
        if isinstance(widget, widgets.HBox):
            children = list(widget.children)
            natural = [natural_width(c) for c in children]
            deficit = sum(natural) - available
            shrinkable = [i for i, c in enumerate(children) if _has_slider(c)]
            names = ", ".join(repr(getattr(c, "description", "") or type(c).__name__) for c in children)
            for i, child in enumerate(children):
                share = deficit / len(shrinkable) if deficit > 0 and i in shrinkable else 0.0
                walk(child, natural[i] - share,
                     f" in a row ({names}) of about {sum(natural):.0f} px fitted into {available:.0f} px"
                     if deficit > 0 else row)
            return
        if is_slider(widget):
            width = min(_px(widget.layout.width) or WIDGET_WIDTH, available)
            track = width - _description_width(widget) - (READOUT_WIDTH if getattr(widget, "readout", True) else 0)
            if track < MIN_TRACK:
                problems.append(f"slider {widget.description!r}: about {max(track, 0):.0f} px of track left of its "
                                f"{width:.0f} px{row} (description and readout take the rest)")
        description = getattr(widget, "description", "") or ""
        if description and not isinstance(widget, (widgets.Checkbox, widgets.ToggleButton, widgets.Button,
                                                    widgets.HTML, widgets.Label)):
            room = _description_width(widget) - 8
            if text_width(description, 13) > room * 1.1:
                problems.append(f"description {description!r} needs about {text_width(description, 13):.0f} px; "
                                f"its label is {room + 8:.0f} px wide: it is cut off (style.description_width)")
        for child in getattr(widget, "children", ()):
            walk(child, min(natural_width(child) or available, available), row)

    walk(root, max_width, "")
    return problems
