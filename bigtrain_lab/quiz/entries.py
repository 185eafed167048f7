"""Validating the entries of the kit's YAML data files (``bank.yaml``, ``errata.yaml``): every problem of
every entry is collected as one line, so that a file with several mistakes is reported in one go."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def is_mapping(raw: Any, position: int, errors: list[str]) -> bool:
    """True for a mapping; otherwise record that entry ``position`` is not one."""
    if isinstance(raw, dict):
        return True
    errors.append(f"entry #{position}: expected a mapping, got {type(raw).__name__}")
    return False


class EntryProblems:
    """Collects one entry's problems into ``errors`` as ``entry 'id': field 'name': what`` lines; called as
    ``problems(field, message)``.

    >>> errors = []
    >>> problems = EntryProblems({"id": "x", "colour": 1}, 0, errors)
    >>> problems.check_fields({"id": "x", "colour": 1}, required=("id", "name"), optional=())
    >>> problems.found, errors
    (True, ["entry 'x': field 'name': missing", "entry 'x': field 'colour': unknown field (allowed: id, name)"])
    """

    def __init__(self, raw: Mapping[str, Any], position: int, errors: list[str]) -> None:
        eid = raw.get("id")
        self.where = f"entry {eid!r}" if isinstance(eid, str) and eid else f"entry #{position}"
        self.errors = errors
        self._start = len(errors)

    def __call__(self, field: str, message: str) -> None:
        self.errors.append(f"{self.where}: field {field!r}: {message}")

    def check_fields(self, raw: Mapping[str, Any], required: Sequence[str], optional: Sequence[str], *,
                     missing: Callable[[Any], bool] = lambda value: value is None) -> None:
        """Each required field present (``missing(value)`` false), no field outside required + optional."""
        for field in required:
            if missing(raw.get(field)):
                self(field, "missing")
        allowed = (*required, *optional)
        for field in raw:
            if field not in allowed:
                self(str(field), f"unknown field (allowed: {', '.join(allowed)})")

    @property
    def found(self) -> bool:
        """Whether this entry has any problem."""
        return len(self.errors) > self._start
