"""Two labelled sparklines: rows/s and $/h over the run's life."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from tui import _format as fmt

__all__ = ["RateSparks"]


class RateSparks(Horizontal):
    """Rows/s and $/h sparklines side by side, each labelled with the run's figure now.

    The label says the same rows/s as the progress line (this session's rate), with the
    line's peak beside it, so the two never disagree.
    """

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

    def show(
        self,
        rows_per_s: Sequence[float],
        usd_per_hour: Sequence[float],
        *,
        rows_per_s_now: float = 0.0,
        usd_per_hour_now: float = 0.0,
    ) -> None:
        """Draw both series, labelled with the figures now and the series' peaks."""
        self.query_one("#rows-spark", Sparkline).data = list(rows_per_s)
        self.query_one("#usd-spark", Sparkline).data = list(usd_per_hour)
        self.query_one("#rows-label", Label).update(
            f"rows/s {fmt.rate(rows_per_s_now)} now "
            f"(line's peak {fmt.rate(max(rows_per_s, default=0.0))})"
        )
        self.query_one("#usd-label", Label).update(
            f"$/h {fmt.money(usd_per_hour_now)} now "
            f"(line's peak {fmt.money(max(usd_per_hour, default=0.0))})"
        )
