"""Dead rows of a run: how many, the commonest reasons, and a few samples."""

from __future__ import annotations

import json

from rich.text import Text
from textual.widgets import Static

from tui._data import DeadRows

__all__ = ["DeadRowsPanel", "dead_text"]


def dead_text(dead: DeadRows, *, rows_done: int) -> Text:
    """The panel's text for ``dead``."""
    if not dead.count:
        return Text("✔ no dead rows", style="green")
    share = dead.count / rows_done * 100 if rows_done else 0.0
    text = Text(f"✘ {dead.count:,} dead rows ({share:.2f}% of committed)", style="bold red")
    if dead.reasons:
        text.append("\nreasons: ")
        text.append(", ".join(f"{reason} ×{n}" for reason, n in dead.reasons))
    for row in dead.sample:
        line = json.dumps(row, default=str, ensure_ascii=False)
        text.append("\n  " + (line if len(line) <= 110 else line[:109] + "…"), style="dim")
    return text


class DeadRowsPanel(Static):
    """Shows a :class:`DeadRows`."""

    DEFAULT_CSS = """
    DeadRowsPanel { height: auto; }
    """

    def show(self, dead: DeadRows, *, rows_done: int) -> None:
        """Draw ``dead``."""
        self.update(dead_text(dead, rows_done=rows_done))
