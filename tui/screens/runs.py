"""The runs screen: every run with its progress, rate, ETA vs deadline and spend vs budget."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input

from tui._data import RunsSnapshot
from tui.screens._refreshing import RefreshingScreen
from tui.widgets import RunsTable, StatusLine

__all__ = ["RunsScreen"]

#: Narrower than this, the runs table drops its recipe and backend columns.
COMPACT_BELOW_COLUMNS = 130


class RunsScreen(RefreshingScreen):
    """The home screen. ``enter`` opens a run, ``/`` filters, ``n`` plans a new run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("n", "app.plan", "New run"),
        Binding("c", "cancel", "Cancel"),
        Binding("u", "resume", "Resume"),
        Binding("o", "results", "Results"),
        Binding("r", "refresh_now", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: RunsSnapshot | None = None
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(placeholder="filter: words in run id, recipe, backend or state", id="filter")
        yield RunsTable(id="runs")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"runs in {self.app.store_name}"  # type: ignore[attr-defined]
        self.query_one("#filter", Input).display = False
        status = self.query_one(StatusLine)
        status.refresh_s = self.app.refresh_s  # type: ignore[attr-defined]
        status.paused = self.app.paused  # type: ignore[attr-defined]
        self.query_one(RunsTable).focus()

    # -- data
    def load(self) -> RunsSnapshot:
        return self.app.data.load_runs()  # type: ignore[attr-defined,no-any-return]

    def apply(self, data: RunsSnapshot) -> None:
        self.snapshot = data
        self._draw()
        status = self.query_one(StatusLine)
        status.runs_total = len(data.runs) + len(data.history)
        status.runs_active = len(data.active)
        status.usd_per_hour = data.usd_per_hour
        status.last_refresh = data.loaded_at
        if data.errors:
            run_id, error = next(iter(data.errors.items()))
            status.message = f"✘ {run_id}: {error}" if run_id else f"✘ {error}"
        elif not data.runs and not data.history:
            status.message = "no runs here yet: press n to plan and launch one"
        else:
            status.message = ""

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.snapshot is not None:
            table = self.query_one(RunsTable)
            table.set_compact(self.size.width < COMPACT_BELOW_COLUMNS)
            table.show(
                self.snapshot.runs,
                now=self.snapshot.loaded_at,
                query=self.query_text,
                history=self.snapshot.history,
            )

    def show_error(self, message: str) -> None:
        self.query_one(StatusLine).message = f"✘ {message}"

    # -- filter
    def action_filter(self) -> None:
        """Show the filter box and focus it."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.query_text = event.value
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one(RunsTable).focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter box."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_text = ""
        self._draw()
        self.query_one(RunsTable).focus()

    # -- actions on the selected run
    @property
    def selected_run(self) -> str | None:
        """The run under the cursor, when it is in this store (not history only)."""
        run_id = self.query_one(RunsTable).current_key
        return None if run_id is None or self._history_only(run_id) else run_id

    def _history_only(self, run_id: str) -> bool:
        return bool(self.snapshot) and any(
            h.run_id == run_id
            for h in self.snapshot.history  # type: ignore[union-attr]
        )

    def _selected_or_explain(self) -> str | None:
        """:attr:`selected_run`, or say why a history-only row cannot be acted on."""
        run_id = self.selected_run
        current = self.query_one(RunsTable).current_key
        if run_id is None and current is not None:
            self.notify(
                f"{current} is known from the run history only: its store is not "
                f"{self.app.store_name}; open it with `skybatch tui --store URL`",  # type: ignore[attr-defined]
                severity="warning",
            )
        return run_id

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value and (run_id := self._selected_or_explain()):
            self.app.open_run(run_id)  # type: ignore[attr-defined]

    def action_cancel(self) -> None:
        """Cancel the selected run (asks first)."""
        if run_id := self._selected_or_explain():
            self.app.confirm_cancel(run_id)  # type: ignore[attr-defined]

    def action_resume(self) -> None:
        """Resume the selected run."""
        if run_id := self._selected_or_explain():
            self.app.resume_run(run_id)  # type: ignore[attr-defined]

    def action_results(self) -> None:
        """Open the results of the selected run."""
        if run_id := self._selected_or_explain():
            self.app.open_results(run_id)  # type: ignore[attr-defined]

    def action_refresh_now(self) -> None:
        """Reload now."""
        self.reload()
