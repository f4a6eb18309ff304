"""The runs table: one row per run, keyed by run id, updated by diff."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from scheduler.progress import RunState, RunStatus
from tui import _format as fmt
from tui.widgets._keyed_table import Cell, KeyedTable

__all__ = ["RunsTable", "run_cells", "state_text"]

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


def matches(run: RunStatus, query: str) -> bool:
    """True when the filter text appears in the run's id, recipe, backend or state."""
    q = query.strip().lower()
    if not q:
        return True
    hay = f"{run.run_id} {run.recipe_name} {run.backend} {run.state.value}".lower()
    return all(word in hay for word in q.split())


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

    def show(self, runs: Iterable[RunStatus], *, now: float, query: str = "") -> None:
        """Show the runs matching ``query``."""
        self.sync({r.run_id: run_cells(r, now=now) for r in runs if matches(r, query)})
