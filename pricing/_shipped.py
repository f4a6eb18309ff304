"""Reference tables shipped with skybatch, kept in step with an existing database.

A fresh database is seeded from ``pricing/data``; without this module an existing one would
keep the GPU specs and published throughput figures of the skybatch that created it, so an
upgrade's corrected or added rows would never reach its plans. Each reference table is
recorded in ``shipped_data`` with the digest of the file it was loaded from; when the
shipped file differs (a new version), the table is replaced in the transaction that
records the new digest. Rows of other kinds beside them (measured figures, run history)
are left alone. Offerings are deliberately not a reference table: ``pricing refresh`` owns
them, and the shipped snapshot must never overwrite prices fetched since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["Reference", "record_current", "register_reference", "resync", "stale"]


@dataclass(frozen=True)
class Reference:
    """A table loaded from one shipped file; ``replace`` swaps its shipped rows."""

    name: str
    data_file: str  # under the pricing package, e.g. "data/gpu_specs.csv"
    replace: Callable[[duckdb.DuckDBPyConnection], None]


_references: dict[str, Reference] = {}


def register_reference(ref: Reference) -> None:
    """Keep ``ref``'s table in step with its shipped file."""
    _references[ref.name] = ref
    _digest.cache_clear()


@cache
def _digest(data_file: str) -> str:
    data = resources.files("pricing").joinpath(data_file).read_bytes()
    return hashlib.sha256(data).hexdigest()


def stale(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The references whose rows in the file came from another version of their file."""
    import duckdb

    try:
        stored = dict(con.execute("SELECT name, digest FROM shipped_data").fetchall())
    except duckdb.CatalogException:
        return sorted(_references)  # a schema before the table existed
    return sorted(n for n, r in _references.items() if stored.get(n) != _digest(r.data_file))


def _record(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for name in names:
        con.execute("DELETE FROM shipped_data WHERE name = ?", [name])
        con.execute(
            "INSERT INTO shipped_data VALUES (?, ?, ?)",
            [name, _digest(_references[name].data_file), now],
        )


def record_current(con: duckdb.DuckDBPyConnection) -> None:
    """Note that every reference table holds its current file (just seeded)."""
    _record(con, sorted(_references))


def resync(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Replace every stale reference table with its shipped rows; the names replaced.

    Runs inside the caller's transaction, so a reader never sees a half-replaced table.
    """
    names = stale(con)
    for name in names:
        _references[name].replace(con)
    _record(con, names)
    return names
