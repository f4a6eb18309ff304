"""Dead rows summed up: the commonest reasons, with counts, and where the files are.

A dead row records why it failed (``error`` or ``reason``); ``status`` and the dashboard
group them by a short reason (the exception name, or the message when it has none) so a
run with 3,000 dead rows reads as two or three causes, not a wall of rows.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from scheduler.store._store import RunStore

__all__ = ["dead_reason", "read_dead_reasons"]


def dead_reason(row: dict[str, Any]) -> str:
    """The short reason of a dead row: the exception name, or the message's first words."""
    text = str(row.get("error") or row.get("reason") or "unknown").strip()
    head = text.split(":", 1)[0].strip()
    return (head if head and " " not in head else text)[:60]


def read_dead_reasons(store: RunStore, *, top: int = 5) -> list[tuple[str, int]]:
    """The ``top`` commonest dead-row reasons of the committed shards, with their counts."""
    reasons: Counter[str] = Counter()
    for marker in store.markers().values():
        if not marker.rows_dead or not marker.dead_file:
            continue
        try:
            reasons.update(dead_reason(r) for r in store.read_dead(marker))
        except (OSError, ValueError):  # an unreadable file still counts its rows
            reasons["(dead-row file unreadable)"] += marker.rows_dead
    return reasons.most_common(top)
