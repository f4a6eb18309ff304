"""The status line under the runs table: runs active, current $/h, last refresh, refresh mode."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from tui import _format as fmt

__all__ = ["StatusLine"]


class StatusLine(Static):
    """A one-line summary that redraws when one of its reactive figures changes."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; }
    """

    runs_total: reactive[int] = reactive(0)
    """Runs shown."""
    runs_active: reactive[int] = reactive(0)
    """Runs with at least one live worker."""
    usd_per_hour: reactive[float] = reactive(0.0)
    """What the live workers of all runs cost per hour."""
    last_refresh: reactive[float | None] = reactive(None)
    """When the data was last loaded (by the app's clock)."""
    refresh_s: reactive[float] = reactive(2.0)
    """The refresh interval in seconds."""
    paused: reactive[bool] = reactive(False)
    """True while automatic refresh is paused."""
    message: reactive[str] = reactive("")
    """A one-line note (the last error or action result)."""

    def render(self) -> str:
        last = "never" if self.last_refresh is None else fmt.clock_text(self.last_refresh)
        mode = "⏸ paused" if self.paused else f"⟳ every {self.refresh_s:g}s"
        text = (
            f"{self.runs_active} active / {self.runs_total} runs · "
            f"{fmt.money(self.usd_per_hour)}/h · last refresh {last} · {mode}"
        )
        return f"{text} · {self.message}" if self.message else text
