"""Finished runs from the run history (the pricing DuckDB file), for the runs table.

The TUI opens the file itself, **read-only**, for one query, and closes it at once; it
never goes through ``pricing.connect``, whose first use in a process opens the file
read-write to migrate it. So the TUI never holds the write lock, and a CLI command that
writes the file (``skybatch run`` recording its run, ``pricing refresh``) only ever waits
for a read of a few milliseconds. When a writer holds the file at that moment, the read
is skipped and the previous history stays on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HistoryBusy", "HistoryRun", "history_provider", "read_history"]

#: The newest this many recorded runs are shown.
HISTORY_LIMIT = 200


class HistoryBusy(Exception):
    """The history could not be read right now (a writer holds the file)."""


@dataclass(frozen=True)
class HistoryRun:
    """One finished run as the run history recorded it."""

    run_id: str
    recipe: str
    backend: str
    rows: int
    rows_per_s: float
    hours: float
    cost_usd: float
    finished_at: float


def read_history(path: Path, *, limit: int = HISTORY_LIMIT) -> list[HistoryRun]:
    """The newest recorded runs in the DuckDB file at ``path`` (blocking: call from a thread)."""
    if not path.exists():
        return []
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:  # locked by a writer, or opened read-write in this process
        raise HistoryBusy(str(e)) from e
    try:
        rows = con.execute(
            "SELECT run_id, arg_max(recipe, finished_at), arg_max(cloud, finished_at), "
            "arg_max(rows, finished_at), arg_max(actual_rows_per_s, finished_at), "
            "arg_max(actual_hours, finished_at), arg_max(actual_cost_usd, finished_at), "
            "epoch(max(finished_at)) "
            "FROM run_history GROUP BY run_id ORDER BY max(finished_at) DESC LIMIT ?",
            [limit],
        ).fetchall()
    except duckdb.Error as e:  # an old file without the table: no history yet
        raise HistoryBusy(str(e)) from e
    finally:
        con.close()
    return [
        HistoryRun(
            run_id=str(r[0]),
            recipe=str(r[1] or "?"),
            backend=str(r[2] or "local"),
            rows=int(r[3] or 0),
            rows_per_s=float(r[4] or 0.0),
            hours=float(r[5] or 0.0),
            cost_usd=float(r[6] or 0.0),
            finished_at=float(r[7] or 0.0),
        )
        for r in rows
    ]


def history_provider() -> Callable[[], list[HistoryRun]] | None:
    """A callable reading the user's run history, or None when pricing is not installed."""
    try:
        import pricing
    except ImportError:
        return None
    path = pricing.db_path()
    return lambda: read_history(path)
