"""The runs table: one row per run, keyed by run id, updated by diff."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from scheduler.store import RunState, RunStatus
from tui import _format as fmt
from tui._history import HistoryRun
from tui.widgets._keyed_table import Cell, KeyedTable

__all__ = ["RunsTable", "history_cells", "run_cells", "state_text"]

_STATE_STYLE = {
    RunState.PENDING: "dim",
    RunState.RUNNING: "bold cyan",
    RunState.STOPPED: "yellow",
    RunState.CANCELLED: "magenta",
    RunState.DONE: "green",
    RunState.FAILED: "bold red",
}


def state_text(state: RunState) -> Text:
    """The state as glyph + word (the glyph and word carry it; colour only adds)."""
    return Text(f"{state.glyph} {state.value}", style=_STATE_STYLE[state])


def run_cells(run: RunStatus, *, now: float) -> tuple[Cell, ...]:
    """The cells of one run's row, in :attr:`RunsTable.COLUMNS` order."""
    return (
        state_text(run.state),
        run.run_id,
        run.recipe_name,
        run.backend,
        fmt.progress_text(run.rows_done, run.rows_total, width=8),
        fmt.rate(run.rows_per_s),
        fmt.eta_vs_deadline(run.eta_s, run.deadline_at, now=now, done=run.state.is_terminal()),
        fmt.spend_vs_budget(run.spend_usd, run.budget_usd),
    )


def history_cells(run: HistoryRun, *, now: float) -> tuple[Cell, ...]:
    """The cells of a finished run known only from the run history."""
    return (
        state_text(RunState.DONE),
        run.run_id,
        run.recipe,
        f"{run.backend} (history)",
        fmt.progress_text(1, 1, width=8),
        fmt.rate(run.rows_per_s),
        f"ended {fmt.duration(now - run.finished_at)} ago",
        fmt.money(run.cost_usd),
    )


def matches(words: str, query: str) -> bool:
    """True when every word of the filter appears in ``words``."""
    hay = words.lower()
    return all(word in hay for word in query.lower().split())


class RunsTable(KeyedTable):
    """Every run with its state, progress, rate, ETA vs deadline and spend vs budget."""

    COLUMNS = (
        ("state", "state"),
        ("run", "run"),
        ("recipe", "recipe"),
        ("backend", "backend"),
        ("progress", "progress"),
        ("rate", "rows/s"),
        ("eta", "ETA / deadline"),
        ("spend", "spend / budget"),
    )

    def show(
        self,
        runs: Iterable[RunStatus],
        *,
        now: float,
        query: str = "",
        history: Iterable[HistoryRun] = (),
    ) -> None:
        """Show the runs (then the history-only runs) matching ``query``."""
        rows: dict[str, tuple[Cell, ...]] = {}
        for r in runs:
            if matches(f"{r.run_id} {r.recipe_name} {r.backend} {r.state.value}", query):
                rows[r.run_id] = run_cells(r, now=now)
        for h in history:
            if matches(f"{h.run_id} {h.recipe} {h.backend} history done", query):
                rows[h.run_id] = history_cells(h, now=now)
        self.sync(rows)
