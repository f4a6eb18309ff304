"""Runs recorded in the run history (the pricing DuckDB file), for the runs table.

The connection is read-only and short-lived (opened and closed inside each call, from a
thread), so the TUI never holds the database's write lock and CLI commands keep writing
while it is open. Until the pricing package records runs, the provider returns nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["history_provider"]


def history_provider() -> Callable[[], Iterable[tuple[str, str]]] | None:
    """A callable listing ``(store_url, run_id)`` of recorded runs, or None without history."""
    return None
