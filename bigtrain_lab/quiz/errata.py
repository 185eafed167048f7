"""The errata index: every circulating wrong answer the kit knows, with the lesson section that runs it.

``errata.yaml`` (beside ``bank.yaml``) lists, per wrong answer: the seed question(s) it came from, the bank entry
whose pitfalls refute it, the wrong claim in one line, what is true, the lesson anchor that runs it
(``notebooks/NN_x.ipynb#anchor``) and, optionally, a piece of code that a code cell of that section contains.
``load_errata`` validates it (``ErrataError`` names every bad entry and field); ``errata_table`` renders it in a
notebook and ``format_errata`` in a terminal (``bigtrain-lab errata``). ``section_cells`` finds the cells behind an
anchor: ``tests/test_errata.py`` checks that each anchor exists and has a code cell behind it.

>>> cells = [{"cell_type": "markdown", "source": '<a id="x"></a>\\n## 1. X'},
...          {"cell_type": "code", "source": "print(1)"}, {"cell_type": "markdown", "source": "## 2. Y"}]
>>> [c["source"] for c in section_cells(cells, "x")]
['<a id="x"></a>\\n## 1. X', 'print(1)']
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bigtrain_lab.quiz.coverage import source_problem
from bigtrain_lab.quiz.entries import EntryProblems, is_mapping

ERRATA_PATH = Path(__file__).with_name("errata.yaml")
LESSON_RE = re.compile(r"notebooks/\d\d_[a-z0-9_]+\.ipynb#[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
REQUIRED = ("id", "source", "bank", "wrong", "right", "lesson")
OPTIONAL = ("runs", "todo")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)
ANCHOR_RE = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""")

#: libyaml's C loader where PyYAML was built with it (7x faster on the bank), else the pure-Python one
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ErrataError(ValueError):
    """``errata.yaml`` is malformed; the message names every bad entry (by id) and field."""


@dataclass(frozen=True)
class Erratum:
    """One circulating wrong answer: where it came from, what is true, and the lesson section that runs it.

    ``runs``: code that a code cell of that section contains (the wrong snippet or its run), when given.
    ``todo``: a note that the anchor is provisional (a section is being written); the tests fail while one is set.
    """

    id: str
    source: tuple[str, ...]
    bank: str
    wrong: str
    right: str
    lesson: str
    runs: str | None = None
    todo: str | None = None

    @property
    def notebook(self) -> str:
        """The lesson notebook, e.g. ``notebooks/01_metrics.ipynb``."""
        return self.lesson.split("#", 1)[0]

    @property
    def anchor(self) -> str:
        """The section anchor, e.g. ``common-mistakes``."""
        return self.lesson.split("#", 1)[1]

    @property
    def seeds(self) -> str:
        """The seed refs in short form: ``000 #19, 003 #task4``."""
        return ", ".join(s.removeprefix("seed:").replace("#", " #") for s in self.source)


def load_errata(path: str | Path | None = None, bank_ids: Sequence[str] | None = None) -> list[Erratum]:
    """Load and validate the errata index (the packaged ``errata.yaml`` unless ``path`` is given).

    ``bank_ids``: the ids an entry's ``bank`` may name (default: those of the packaged question bank).
    Raises ``ErrataError`` listing every problem, each naming the entry and the field.
    """
    p = Path(path) if path is not None else ERRATA_PATH
    try:
        stat = p.stat()
    except OSError as exc:
        raise ErrataError(f"{p}: cannot read the errata index ({exc})") from exc
    if bank_ids is None:
        from bigtrain_lab.quiz.bank import load_bank

        bank_ids = [q.id for q in load_bank()]
    return list(_load_cached(str(p.resolve()), stat.st_mtime_ns, stat.st_size, tuple(bank_ids)))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime_ns: int, _size: int, bank_ids: tuple[str, ...]) -> tuple[Erratum, ...]:
    name = Path(path).name
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ErrataError(f"{name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("errata"), list) or not data["errata"]:
        raise ErrataError(f"{name}: expected a mapping with a non-empty 'errata' list at the top level")
    errors: list[str] = []
    result: list[Erratum] = []
    known = set(bank_ids)
    for position, raw in enumerate(data["errata"]):
        erratum = _parse(raw, position, known, errors)
        if erratum is None:
            continue
        if any(e.id == erratum.id for e in result):
            errors.append(f"entry {erratum.id!r}: field 'id': duplicate id")
            continue
        result.append(erratum)
    if errors:
        raise ErrataError(f"{len(errors)} problem(s) in {name}:\n" + "\n".join(errors))
    return tuple(result)


def _parse(raw: Any, position: int, bank_ids: set[str], errors: list[str]) -> Erratum | None:
    if not is_mapping(raw, position, errors):
        return None
    eid = raw.get("id")
    err = EntryProblems(raw, position, errors)
    err.check_fields(raw, REQUIRED, OPTIONAL, missing=lambda value: value in (None, "", []))
    if eid is not None and (not isinstance(eid, str) or not SLUG_RE.fullmatch(eid)):
        err("id", f"must be a lower-case slug with dashes; got {eid!r}")
    for field in ("wrong", "right", "runs", "todo"):
        value = raw.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            err(field, f"must be a non-empty string; got {value!r}")
    for field in ("wrong", "right"):
        if isinstance(raw.get(field), str) and "\n" in raw[field].strip():
            err(field, "must be one line")
    source = raw.get("source")
    items = [source] if isinstance(source, str) else source
    if source is not None:
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            err("source", f"must be a seed ref or a list of them; got {source!r}")
        else:
            for s in items:
                why = "a circulating answer comes from a seed, not 'kit'" if s == "kit" else source_problem(s)
                if why:
                    err("source", f"{s!r}: {why}")
    bank = raw.get("bank")
    if bank is not None and bank not in bank_ids:
        err("bank", f"{bank!r} is not an entry of the question bank")
    lesson = raw.get("lesson")
    if lesson is not None and (not isinstance(lesson, str) or not LESSON_RE.fullmatch(lesson)):
        err("lesson", f"must look like 'notebooks/NN_topic.ipynb#section-anchor'; got {lesson!r}")
    if err.found:
        return None
    return Erratum(id=eid, source=tuple(items), bank=bank, wrong=raw["wrong"].strip(), right=raw["right"].strip(),
                   lesson=lesson, runs=raw.get("runs"), todo=raw.get("todo"))


# ---- the cells behind an anchor ----------------------------------------------------------------------------

def _text(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def heading_anchors(heading: str) -> set[str]:
    """The anchors a heading answers to: JupyterLab's (spaces as dashes) and a lower-case slug."""
    return {re.sub(r"\s+", "-", heading.strip()), re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")}


def section_cells(cells: Sequence[Mapping[str, Any]], anchor: str, *,
                  subsections: bool = False) -> list[Mapping[str, Any]]:
    """The cells of the section ``anchor`` names: from the markdown cell holding it (an ``<a id>`` or a heading)
    up to the next heading (``subsections=True``: the next heading of the same or a higher level). Empty when
    no cell holds the anchor."""
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        text = _text(cell)
        own = [m for m in HEADING_RE.finditer(text) if anchor in heading_anchors(m.group(2))]
        ids = [m for m in ANCHOR_RE.finditer(text) if m.group(1) == anchor]
        if not own and not ids:
            continue
        at = (own or ids)[0].end()
        following = [m for m in HEADING_RE.finditer(text) if m.start() >= at]
        level = len(own[0].group(1)) if own else None
        if level is None and following:  # <a id> just above its heading
            level = len(following[0].group(1))
            following = following[1:]
        if any(_ends(m, level, subsections) for m in following):
            return [cell]
        result = [cell]
        for later in cells[i + 1:]:
            if later.get("cell_type") == "markdown" and any(
                    _ends(m, level, subsections) for m in HEADING_RE.finditer(_text(later))):
                break
            result.append(later)
        return result
    return []


def _ends(heading: re.Match[str], level: int | None, subsections: bool) -> bool:
    return not subsections or level is None or len(heading.group(1)) <= level


def running_problem(erratum: Erratum, root: str | Path) -> str | None:
    """Why ``erratum``'s lesson anchor has nothing that runs behind it (None when it has): the notebook or the
    anchor is missing, the section has no code cell before the next heading, or no code cell there contains
    ``erratum.runs``."""
    import json

    path = Path(root) / erratum.notebook
    if not path.is_file():
        return f"{erratum.id}: {erratum.notebook} does not exist"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    section = section_cells(cells, erratum.anchor)
    if not section:
        return f"{erratum.id}: no section #{erratum.anchor} in {erratum.notebook}"
    code = [_text(c) for c in section if c.get("cell_type") == "code" and _text(c).strip()]
    if not code:
        return f"{erratum.id}: #{erratum.anchor} in {erratum.notebook} has no code cell before the next heading"
    if erratum.runs is not None and not any(erratum.runs in c for c in code):
        return f"{erratum.id}: no code cell of #{erratum.anchor} in {erratum.notebook} contains {erratum.runs!r}"
    return None


# ---- rendering ---------------------------------------------------------------------------------------------

def errata_rows(errata: Sequence[Erratum] | None = None) -> list[dict[str, Any]]:
    """The index as JSON-ready rows (``bigtrain-lab errata --json``)."""
    return [{**asdict(e), "source": list(e.source)} for e in (load_errata() if errata is None else errata)]


def format_errata(errata: Sequence[Erratum] | None = None, width: int = 120) -> str:
    """The index as a terminal listing: one block per wrong answer (seed, claim, truth, where it runs)."""
    import textwrap

    errata = load_errata() if errata is None else errata
    lines = [f"{len(errata)} circulating wrong answers, each run in a lesson section:", ""]
    for k, e in enumerate(errata, 1):
        lines.append(f"{k:>2}. [{e.seeds}] {e.id}  ({e.lesson}{', provisional' if e.todo else ''})")
        for label, text in (("wrong", e.wrong), ("right", e.right)):
            lines.extend(textwrap.wrap(text, width, initial_indent=f"    {label}: ", subsequent_indent=" " * 11))
    return "\n".join(lines)


class ErrataTable:
    """The index for a notebook cell: renders as an HTML table whose lesson links open the section."""

    def __init__(self, errata: Sequence[Erratum], prefix: str) -> None:
        self.errata, self.prefix = list(errata), prefix

    def _repr_html_(self) -> str:
        from bigtrain_lab.quiz.render import markup  # `code` spans as <code>, text escaped

        def row(e: Erratum) -> str:
            link = f'<a href="{html.escape(self.prefix + e.lesson.removeprefix("notebooks/"))}">' \
                   f"{html.escape(e.lesson.removeprefix('notebooks/'))}</a>"
            cells = [html.escape(e.seeds), markup(e.wrong), markup(e.right),
                     link + (" (provisional)" if e.todo else "")]
            return "<tr>" + "".join(f'<td style="text-align:left">{c}</td>' for c in cells) + "</tr>"

        head = "".join(f'<th style="text-align:left">{h}</th>' for h in ("seed", "wrong", "right", "runs in"))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(map(row, self.errata))}</tbody></table>"

    def __repr__(self) -> str:
        return format_errata(self.errata)


def errata_table(prefix: str = "") -> ErrataTable:
    """The errata index for a notebook cell (``prefix``: the path from the notebook to ``notebooks/``)."""
    return ErrataTable(load_errata(), prefix)
