"""The run's event log (preemptions, restarts, deadline-guard decisions), append-only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

__all__ = ["EventLog", "event_text"]

_KIND_STYLE = {"preempted": "yellow", "error": "red", "failed": "red", "cancel": "magenta"}


def event_text(event: dict[str, Any]) -> Text:
    """``12:03:04 kind  message`` for one event."""
    ts = str(event.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    kind = str(event.get("kind", "?"))
    text = Text(f"{clock} ", style="dim")
    text.append(f"{kind:<17} ", style=_KIND_STYLE.get(kind, "bold"))
    text.append(str(event.get("message", "")))
    return text


class EventLog(RichLog):
    """Shows a run's events; on refresh only the events not yet shown are written.

    Events are append-only in the store, so the log keys them by their position and
    timestamp: a refresh never redraws (or scrolls) lines already on screen.
    """

    DEFAULT_CSS = """
    EventLog { height: auto; max-height: 12; min-height: 3; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=False, markup=False, auto_scroll=True)
        self._shown: list[tuple[str, str]] = []

    def show(self, events: Sequence[dict[str, Any]]) -> None:
        """Write the events that are new since the last call."""
        keys = [(str(e.get("ts", "")), str(e.get("kind", ""))) for e in events]
        # The store may return only the newest N: find where what we showed ends.
        start = 0
        if self._shown:
            last = self._shown[-1]
            start = len(keys)
            for i in range(len(keys) - 1, -1, -1):
                if keys[i] == last:
                    start = i + 1
                    break
            else:
                start = 0
        if not events:
            if not self._shown:
                self.write(Text("no events yet", style="dim"))
                self._shown.append(("", ""))
            return
        if self._shown == [("", "")]:  # the placeholder goes when the first event comes
            self.clear()
            self._shown, start = [], 0
        for key, event in zip(keys[start:], events[start:], strict=True):
            self.write(event_text(event))
            self._shown.append(key)
