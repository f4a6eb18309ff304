"""Reading one field of a run document: typed, with the file and field named on failure.

Every document type (:mod:`scheduler.store._documents`, :mod:`scheduler.store._option`)
parses through these, so a bad value raises the same
:class:`~scheduler.errors.StoreError` wherever it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scheduler.errors import StoreError

__all__ = ["parse_time"]


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO-8601 string (None if neither)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _obj(doc: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise StoreError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _num(doc: Mapping[str, Any], key: str, where: str, default: float = 0.0) -> float:
    value = doc.get(key)
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise StoreError(f"{where}: field {key!r} is not a number ({value!r})") from e


def _int(doc: Mapping[str, Any], key: str, where: str, default: int = 0) -> int:
    return int(_num(doc, key, where, float(default)))


def _opt_num(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if doc.get(key) is None else _num(doc, key, where)


def _opt_str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return None if value is None else str(value)
