"""What the TUI can do to runs: plan, launch, cancel, resume (the seam to the scheduler).

Screens call an :class:`Actions` object from thread workers and show a raised
:class:`~scheduler.errors.SkybatchError` as one line. :class:`SchedulerActions` is the
real implementation over ``scheduler.plan`` and ``scheduler.launch``; tests may pass
their own object at this seam (never by patching module internals).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scheduler.errors import SkybatchError

__all__ = ["Actions", "LaunchRequest", "Launched", "PlanResult", "SchedulerActions"]


@dataclass(frozen=True)
class PlanResult:
    """The planner's answer, in the shape of ``skybatch plan --json``."""

    options: list[dict[str, Any]]
    chosen: int | None
    reason: str | None = None
    workload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchRequest:
    """What the plan screen asks to launch."""

    recipe_path: str
    backend: str  # "local" | "skypilot"
    store: str
    deadline: str | None = None
    budget_usd: float | None = None
    option: dict[str, Any] | None = None
    option_index: int | None = None  # the option's index in the plan (SkyPilot launches)
    workers: int | None = None


@dataclass(frozen=True)
class Launched:
    """Where a launch put its run."""

    run_id: str
    store: str


class Actions(Protocol):
    """Operations on runs. Each call may block (I/O, subprocesses): call from a thread.

    Failures a user can fix raise :class:`SkybatchError` with a one-line message.
    """

    def plan(
        self, recipe_path: str, *, deadline: str | None, budget_usd: float | None
    ) -> PlanResult:
        """Rank the options for running a recipe by a deadline within a budget."""
        ...

    def launch(self, request: LaunchRequest) -> Launched:
        """Start a run; returns its id and store once the run exists."""
        ...

    def cancel(self, store_url: str, run_id: str) -> None:
        """Ask a run to stop (its workers finish or release their shards)."""
        ...

    def resume(self, store_url: str, run_id: str) -> None:
        """Start workers again on a stopped or cancelled run."""
        ...


def _module(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise SkybatchError(f"{what} is not available in this install ({name} is missing)") from e


class SchedulerActions:
    """The real actions: the planner, local worker processes, and ``scheduler.launch``.

    Every launch goes through ``scheduler.launch`` once (the run is prepared once) and its
    backend starts the workers: a local run is driven by a detached driver process (its
    own session), so it keeps going when the TUI quits; the TUI only watches the store.
    ``children`` keeps those processes so a caller (a test) can wait for them.
    """

    def __init__(self, *, python: str = sys.executable) -> None:
        self.python = python
        self.children: list[subprocess.Popen[bytes]] = []

    def plan(
        self, recipe_path: str, *, deadline: str | None, budget_usd: float | None
    ) -> PlanResult:
        """Plan through ``scheduler.plan`` (what ``skybatch plan --json`` prints)."""
        from scheduler.recipe import load_recipe, parse_duration

        recipe = load_recipe(recipe_path)
        deadline_s = parse_duration(deadline) if deadline else None
        planner = _module("scheduler.plan", "planning")
        plan = planner.plan_recipe(recipe, deadline_s=deadline_s, budget_usd=budget_usd)
        data = plan.to_json(top=20)
        return PlanResult(
            options=list(data.get("options", [])),
            chosen=data.get("chosen"),
            reason=data.get("reason"),
            workload=dict(data.get("workload") or {}),
        )

    def launch(self, request: LaunchRequest) -> Launched:
        """Create the run once, then start its workers; returns where the run is."""
        return self._launch(
            request.recipe_path,
            backend=request.backend,
            store_url=request.store,
            deadline=request.deadline,
            budget_usd=request.budget_usd,
            plan_index=request.option_index,
            workers=request.workers,
            run_id=None,
        )

    def _launch(
        self,
        recipe_path: str,
        *,
        backend: str,
        store_url: str | None,
        deadline: str | None,
        budget_usd: float | None,
        plan_index: int | None,
        workers: int | None,
        run_id: str | None,
    ) -> Launched:
        """``skybatch launch --yes`` without waiting: returns once the workers are started
        (local ones under a detached driver process, so they outlive the TUI)."""
        from scheduler.recipe import parse_duration

        launch = _module("scheduler.launch", f"launching on {backend}")
        req = launch.LaunchRequest(
            recipe_path=recipe_path,
            backend=backend,
            deadline_s=parse_duration(deadline) if deadline else None,
            budget_usd=budget_usd,
            plan_index=plan_index,
            workers=workers,
            yes=True,  # the TUI asked in its own confirm dialog
            run_id=run_id,
            store_url=store_url,
            progress=False,
        )
        result = launch.launch(
            req, echo=lambda line: None, confirm=lambda question: True, detach=True
        )
        # Reap finished drivers so none lingers as a zombie while the TUI runs.
        self.children = [c for c in self.children if c.poll() is None]
        self.children.extend(getattr(result.backend_object, "children", []))
        return Launched(str(result.run_id), str(result.store))

    def cancel(self, store_url: str, run_id: str) -> None:
        """``skybatch cancel RUN``: the store's ``cancel`` document, then SIGTERM to local
        workers or cancelling the managed jobs. Run as a command so the TUI stops a run
        exactly as the CLI does; its one-line error becomes ours."""
        proc = subprocess.run(
            [self.python, "-m", "scheduler.cli", "cancel", run_id, "--store", store_url, "--json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            message = lines[-1] if lines else f"exit {proc.returncode}"
            raise SkybatchError(message.removeprefix("skybatch: error: "))

    def resume(self, store_url: str, run_id: str) -> None:
        """Start workers again: a local run is run again from its recipe (committed shards
        are skipped); a cloud run is launched again under the same run id."""
        from scheduler.store import RunStore, read_status

        store = RunStore(store_url, run_id)
        info = store.run_info()
        status = read_status(store)
        if status.finished:  # a failed run with shards left (its model did not load) resumes
            raise SkybatchError(f"run {run_id} is {status.state.value}: nothing to resume")
        if any(w.alive for w in status.workers):
            raise SkybatchError(f"run {run_id} is running: its workers are alive")
        recipe_path = info.recipe_source
        if not recipe_path or not Path(str(recipe_path)).exists():
            raise SkybatchError(
                f"run {run_id}: its recipe file {recipe_path!r} is gone; resume with "
                f"`skybatch run RECIPE --run-id {run_id} --store {store_url}`"
            )
        self._launch(
            str(recipe_path),
            backend=info.backend,
            store_url=store_url,
            deadline=None,
            budget_usd=None,
            plan_index=None,
            workers=max(1, len(status.workers)),
            run_id=run_id,
        )
