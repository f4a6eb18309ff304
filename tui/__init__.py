"""The Textual TUI of skybatch (``skybatch tui``): runs, run detail, plan and launch.

Importing this package imports Textual: the CLI imports it inside the ``tui`` command only.
"""

from __future__ import annotations

from tui._actions import Actions, Launched, LaunchRequest, PlanResult, SchedulerActions
from tui._data import DataSource
from tui._history import history_provider
from tui.app import SkybatchApp

__all__ = [
    "Actions",
    "DataSource",
    "LaunchRequest",
    "Launched",
    "PlanResult",
    "SchedulerActions",
    "SkybatchApp",
    "history_provider",
]
