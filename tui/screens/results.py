"""The results screen: a DuckDB query over the run's committed outputs (view ``results``)."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from scheduler.errors import SkybatchError
from tui._data import QueryResult
from tui.widgets._keyed_table import VimTable

__all__ = ["DEFAULT_SQL", "ResultsScreen"]

DEFAULT_SQL = "select * from results limit 100"


class ResultsScreen(Screen[None]):
    """Type SQL, press enter, see the first rows; errors show as one line."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_id: str, *, sql: str = DEFAULT_SQL) -> None:
        super().__init__()
        self.run_id = run_id
        self.sql = sql
        self.queries = 0
        """Finished queries, successful or not (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(self.sql, id="sql")
        yield Static("", id="result-line")
        yield VimTable(id="result", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"results of {self.run_id} (SQL over view `results`)"
        self.query_one("#sql", Input).focus()
        self.run_query(self.sql)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.run_query(event.value)

    @work(thread=True, exclusive=True, group="query", exit_on_error=False)
    def run_query(self, sql: str) -> None:
        """Query in a thread; the newest query replaces one still running."""
        try:
            result = self.app.data.query_results(self.run_id, sql)  # type: ignore[attr-defined]
        except SkybatchError as e:
            self.app.call_from_thread(self._show_error, str(e))
            return
        except Exception as e:  # a store or DuckDB failure: say it, never stay silent
            self.app.call_from_thread(self._show_error, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._show, result)

    def _show(self, result: QueryResult) -> None:
        table = self.query_one("#result", DataTable)
        table.clear(columns=True)
        table.add_columns(*result.columns)
        for row in result.rows:
            table.add_row(*(_cell(v) for v in row))
        more = " (first rows only)" if result.truncated else ""
        self.query_one("#result-line", Static).update(
            f"{len(result.rows)} rows{more} · run {self.run_id}"
        )
        self.queries += 1

    def _show_error(self, message: str) -> None:
        self.query_one("#result-line", Static).update(f"✘ {message}")
        self.queries += 1


def _cell(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"
