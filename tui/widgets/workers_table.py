"""The workers table of a run: one row per worker, keyed by worker id, updated by diff."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from scheduler.store import WorkerStatus
from tui import _format as fmt
from tui.widgets._keyed_table import Cell, KeyedTable

__all__ = ["WorkersTable", "worker_cells"]


def worker_cells(w: WorkerStatus) -> tuple[Cell, ...]:
    """The cells of one worker's row, in :attr:`WorkersTable.COLUMNS` order."""
    where = "/".join(p for p in (w.cloud, w.region) if p) or "local"
    state = Text(("▶ " if w.alive else "· ") + w.state, style="cyan" if w.alive else "dim")
    return (
        w.worker_id,
        w.accelerator or "cpu",
        where,
        "spot" if w.spot else "on-demand",
        state,
        fmt.rate(w.rows_per_s),
        str(w.preemptions),
        fmt.duration(w.uptime_s),
        fmt.money(w.spend_usd),
        w.current_shard or "",
    )


class WorkersTable(KeyedTable):
    """Accelerator, place, spot, state, rate, preemptions, uptime and spend of each worker."""

    COLUMNS = (
        ("worker", "worker"),
        ("accelerator", "accelerator"),
        ("where", "cloud/region"),
        ("spot", "spot"),
        ("state", "state"),
        ("rate", "rows/s"),
        ("preemptions", "preempt."),
        ("uptime", "uptime"),
        ("spend", "$"),
        ("shard", "shard"),
    )

    def show(self, workers: Iterable[WorkerStatus]) -> None:
        """Show these workers."""
        self.sync({w.worker_id: worker_cells(w) for w in workers})
