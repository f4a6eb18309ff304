"""Two labelled sparklines: rows/s and $/h over the run's life."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from tui import _format as fmt

__all__ = ["RateSparks"]


class RateSparks(Horizontal):
    """Rows/s and $/h sparklines side by side, each with its peak as a label."""

    DEFAULT_CSS = """
    RateSparks { height: 4; }
    RateSparks > Vertical { width: 1fr; padding: 0 1; }
    RateSparks Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("rows/s", id="rows-label")
            yield Sparkline([], id="rows-spark")
        with Vertical():
            yield Label("$/h", id="usd-label")
            yield Sparkline([], id="usd-spark")

    def show(self, rows_per_s: Sequence[float], usd_per_hour: Sequence[float]) -> None:
        """Draw both series."""
        self.query_one("#rows-spark", Sparkline).data = list(rows_per_s)
        self.query_one("#usd-spark", Sparkline).data = list(usd_per_hour)
        self.query_one("#rows-label", Label).update(
            f"rows/s (peak {fmt.rate(max(rows_per_s, default=0.0))})"
        )
        self.query_one("#usd-label", Label).update(
            f"$/h (peak {fmt.money(max(usd_per_hour, default=0.0))})"
        )
