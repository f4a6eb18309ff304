"""The run-detail screen: progress and ETA, shard map, rates, workers, dead rows, events."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Label, Static

from tui._data import RunDetail
from tui.screens._refreshing import RefreshingScreen
from tui.widgets import (
    DeadRowsPanel,
    EventLog,
    ProgressPanel,
    RateSparks,
    ShardMap,
    WorkersTable,
)
from tui.widgets.runs_table import state_text

__all__ = ["RunDetailScreen"]


class RunDetailScreen(RefreshingScreen):
    """Everything about one run, refreshed live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel", "Cancel"),
        Binding("u", "resume", "Resume"),
        Binding("o", "results", "Results"),
        Binding("r", "refresh_now", "Refresh"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.detail: RunDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="detail"):
            yield Static(self.run_id, id="title")
            yield ProgressPanel()
            yield Label("shards", classes="section")
            yield ShardMap()
            yield RateSparks()
            yield Label("workers", classes="section")
            yield WorkersTable(id="workers")
            yield Label("dead rows", classes="section")
            yield DeadRowsPanel(id="dead")
            yield Label("events", classes="section")
            yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}"

    def load(self) -> RunDetail:
        return self.app.data.load_detail(self.run_id)  # type: ignore[attr-defined,no-any-return]

    def apply(self, data: RunDetail) -> None:
        self.detail = data
        s = data.status
        title = Text()
        title.append_text(state_text(s.state))
        title.append(f"  {s.run_id}", style="bold")
        title.append(f"  recipe {s.recipe_name} · backend {s.backend} · ")
        title.append(f"{s.shards_done:,}/{s.shards_total:,} shards · {len(s.workers)} workers")
        self.query_one("#title", Static).update(title)
        self.query_one(ProgressPanel).show(s, now=data.loaded_at)
        self.query_one(ShardMap).states = tuple(s.shard_states)
        self.query_one(RateSparks).show(
            data.rows_per_s_series,
            data.usd_per_hour_series,
            rows_per_s_now=s.rows_per_s,
            usd_per_hour_now=s.usd_per_hour,
        )
        self.query_one(WorkersTable).show(s.workers)
        self.query_one(DeadRowsPanel).show(data.dead, rows_done=s.rows_done)
        self.query_one(EventLog).show(data.events)

    def show_error(self, message: str) -> None:
        """A failed load shows in the title line (the loop keeps trying)."""
        self.query_one("#title", Static).update(Text(f"✘ {message}", style="bold red"))

    def action_cancel(self) -> None:
        """Cancel this run (asks first)."""
        self.app.confirm_cancel(self.run_id)  # type: ignore[attr-defined]

    def action_resume(self) -> None:
        """Resume this run."""
        self.app.resume_run(self.run_id)  # type: ignore[attr-defined]

    def action_results(self) -> None:
        """Open this run's results."""
        self.app.open_results(self.run_id)  # type: ignore[attr-defined]

    def action_refresh_now(self) -> None:
        """Reload now."""
        self.reload()
