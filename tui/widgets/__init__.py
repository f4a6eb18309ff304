"""The TUI's widgets, one small module each."""

from __future__ import annotations

from tui.widgets.dead_rows import DeadRowsPanel
from tui.widgets.event_log import EventLog
from tui.widgets.progress_panel import ProgressPanel
from tui.widgets.rate_sparks import RateSparks
from tui.widgets.runs_table import RunsTable
from tui.widgets.shard_map import ShardMap
from tui.widgets.status_line import StatusLine
from tui.widgets.workers_table import WorkersTable

__all__ = [
    "DeadRowsPanel",
    "EventLog",
    "ProgressPanel",
    "RateSparks",
    "RunsTable",
    "ShardMap",
    "StatusLine",
    "WorkersTable",
]
