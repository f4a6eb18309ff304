"""A run's progress bar with rows, rate, ETA against the deadline and spend against budget."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from scheduler.store import RunStatus
from tui import _format as fmt

__all__ = ["ProgressPanel", "progress_line"]


def progress_line(status: RunStatus, *, now: float) -> str:
    """One line: rows, rate, ETA vs deadline, spend vs budget and $/h."""
    eta = fmt.eta_vs_deadline(
        status.eta_s, status.deadline_at, now=now, done=status.state.is_terminal()
    )
    why = f"✘ failed: {status.failure_reason}\n" if status.failure_reason else ""
    return why + (
        f"{status.rows_done:,} / {status.rows_total:,} rows "
        f"({status.rows_out:,} out, {status.rows_dead:,} dead) · "
        f"{fmt.rate(status.rows_per_s)} rows/s · ETA {eta} · "
        f"spend {fmt.spend_vs_budget(status.spend_usd, status.budget_usd)} · "
        f"{fmt.money(status.usd_per_hour)}/h"
    )


class ProgressPanel(Vertical):
    """Progress bar and the figures that go with it."""

    DEFAULT_CSS = """
    ProgressPanel { height: auto; }
    ProgressPanel ProgressBar { width: 1fr; }
    ProgressPanel ProgressBar Bar { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, id="bar")
        yield Static("", id="figures")

    def show(self, status: RunStatus, *, now: float) -> None:
        """Draw ``status`` as seen at ``now``."""
        self.query_one(ProgressBar).update(
            total=max(1, status.rows_total), progress=status.rows_done
        )
        self.query_one("#figures", Static).update(progress_line(status, now=now))
