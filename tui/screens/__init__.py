"""The TUI's screens, one module each."""

from __future__ import annotations

from tui.screens.confirm import ConfirmDialog
from tui.screens.help import HelpScreen
from tui.screens.plan import PlanScreen
from tui.screens.results import ResultsScreen
from tui.screens.run_detail import RunDetailScreen
from tui.screens.runs import RunsScreen

__all__ = [
    "ConfirmDialog",
    "HelpScreen",
    "PlanScreen",
    "ResultsScreen",
    "RunDetailScreen",
    "RunsScreen",
]
