"""The launch flow: plan, confirm, prepare the store, start workers, watch, guard, summarise.

Modules: ``_flow`` (the flow itself, shared by every backend), ``_request`` (what launch was
asked for: run ids, the chosen plan option), ``_guard`` (the deadline guard, which adds
workers through the run's :class:`~scheduler.backends.Backend`), ``_incremental`` (rows no earlier run committed) and
``_summary`` (exit code and markdown summary for CI). Import from here.
"""

from __future__ import annotations

from scheduler.launch._flow import (
    finish,
    launch,
    outcome_of,
    watch,
)
from scheduler.launch._guard import (
    DeadlineGuard,
    Decision,
    GuardConfig,
    Scaler,
    decide,
    make_guard,
)
from scheduler.launch._incremental import (
    committed_ids,
    incremental_recipe,
    previous_runs,
    unfinished_run,
)
from scheduler.launch._request import (
    LaunchRequest,
    LaunchResult,
    choose_option,
    describe_option,
    render_run_id,
    with_schedule,
)
from scheduler.launch._summary import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_LATE,
    EXIT_OVER_BUDGET,
    Outcome,
    write_summary,
)

__all__ = [
    "EXIT_DONE",
    "EXIT_FAILED",
    "EXIT_LATE",
    "EXIT_OVER_BUDGET",
    "DeadlineGuard",
    "Decision",
    "GuardConfig",
    "LaunchRequest",
    "LaunchResult",
    "Outcome",
    "Scaler",
    "choose_option",
    "committed_ids",
    "decide",
    "describe_option",
    "finish",
    "incremental_recipe",
    "launch",
    "make_guard",
    "outcome_of",
    "previous_runs",
    "render_run_id",
    "unfinished_run",
    "watch",
    "with_schedule",
    "write_summary",
]
