"""The runs table: one row per run, keyed by run id, updated by diff."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

from scheduler.store import RunState, RunStatus, parse_time
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


def run_cells(run: RunStatus, *, now: float, compact: bool = False) -> tuple[Cell, ...]:
    """The cells of one run's row, in :attr:`RunsTable.COLUMNS` order (or the compact
    columns': state, run, progress, rows/s, ETA, spend)."""
    if compact:
        return (
            state_text(run.state),
            run.run_id,
            fmt.progress_text(run.rows_done, run.rows_total, width=4),
            fmt.rate(run.rows_per_s),
            _eta_compact(run, now=now),
            _spend_compact(run),
        )
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


def _eta_compact(run: RunStatus, *, now: float) -> str:
    """The ETA with the deadline's verdict as a glyph only (``25m ✔``)."""
    if run.state.is_terminal():
        return "done" if run.state is RunState.DONE else "–"
    full = fmt.eta_vs_deadline(run.eta_s, run.deadline_at, now=now)
    glyph = "⚠" if "⚠" in full else ("✔" if "✔" in full else "")
    return f"{fmt.duration(run.eta_s)} {glyph}".strip()


def _spend_compact(run: RunStatus) -> str:
    """Spend, with ``⚠`` once it passes 90% of the budget."""
    full = fmt.spend_vs_budget(run.spend_usd, run.budget_usd)
    return fmt.money(run.spend_usd) + (" ⚠" if full.endswith("⚠") else "")


def history_cells(run: HistoryRun, *, now: float, compact: bool = False) -> tuple[Cell, ...]:
    """The cells of a finished run known only from the run history."""
    if compact:
        return (
            state_text(RunState.DONE),
            run.run_id,
            fmt.progress_text(1, 1, width=4),
            fmt.rate(run.rows_per_s),
            f"{fmt.duration(now - run.finished_at)} ago",
            fmt.money(run.cost_usd),
        )
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


def _newest_first(run: RunStatus) -> tuple[float, str]:
    created = parse_time(run.created_at)
    return (-(created or 0.0), run.run_id)


def matches(words: str, query: str) -> bool:
    """True when every word of the filter appears in ``words``."""
    hay = words.lower()
    return all(word in hay for word in query.lower().split())


class RunsTable(KeyedTable):
    """Every run, newest first, with its state, progress, rate, ETA vs deadline and spend
    vs budget. Narrow terminals (:meth:`set_compact`) drop the recipe and backend columns
    (the run id starts with the recipe's name) and shorten the rest, so ETA and spend
    stay on screen at 80 columns."""

    FULL_COLUMNS: Sequence[tuple[str, str]] = (
        ("state", "state"),
        ("run", "run"),
        ("recipe", "recipe"),
        ("backend", "backend"),
        ("progress", "progress"),
        ("rate", "rows/s"),
        ("eta", "ETA / deadline"),
        ("spend", "spend / budget"),
    )
    COMPACT_COLUMNS: Sequence[tuple[str, str]] = (
        ("state", "state"),
        ("run", "run"),
        ("progress", "done"),
        ("rate", "rows/s"),
        ("eta", "ETA"),
        ("spend", "spend"),
    )
    COLUMNS: Sequence[tuple[str, str]] = FULL_COLUMNS
    compact = False

    def set_compact(self, compact: bool) -> None:
        """Switch between the full and the compact columns (rebuilds the table)."""
        if compact == self.compact:
            return
        self.compact = compact
        self.COLUMNS = self.COMPACT_COLUMNS if compact else self.FULL_COLUMNS
        self.clear(columns=True)
        self._cells = {}
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

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
        for r in sorted(runs, key=_newest_first):
            if matches(f"{r.run_id} {r.recipe_name} {r.backend} {r.state.value}", query):
                rows[r.run_id] = run_cells(r, now=now, compact=self.compact)
        for h in sorted(history, key=lambda h: -h.finished_at):
            if matches(f"{h.run_id} {h.recipe} {h.backend} history done", query):
                rows[h.run_id] = history_cells(h, now=now, compact=self.compact)
        self.sync(rows)
