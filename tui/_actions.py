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
import tempfile
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

    A local run is driven by a detached ``skybatch run`` process (its own session), so it
    keeps going when the TUI quits; the TUI only watches the store. ``children`` keeps
    those processes so a caller (a test) can wait for them.
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
        """Create the run, then start its workers; returns where the run is."""
        if request.backend != "local":
            return self._launch_cloud(
                request.recipe_path,
                store_url=request.store,
                deadline=request.deadline,
                budget_usd=request.budget_usd,
                plan_index=request.option_index,
                run_id=None,
            )
        from scheduler.launch import LaunchRequest as Asked
        from scheduler.launch import with_schedule
        from scheduler.recipe import load_recipe, parse_duration
        from scheduler.runs import prepare_run

        asked = Asked(
            recipe_path=request.recipe_path,
            backend="local",
            deadline_s=parse_duration(request.deadline) if request.deadline else None,
            budget_usd=request.budget_usd,
        )
        # The form's deadline and budget go into run.json (they do not change the run id).
        recipe = with_schedule(load_recipe(request.recipe_path), asked)
        store = prepare_run(recipe, store_url=request.store, backend="local")
        self._run_local(request.recipe_path, store.url, store.run_id, request.workers or 1)
        return Launched(store.run_id, store.url)

    def _launch_cloud(
        self,
        recipe_path: str,
        *,
        store_url: str | None,
        deadline: str | None,
        budget_usd: float | None,
        plan_index: int | None,
        run_id: str | None,
    ) -> Launched:
        """``skybatch launch --yes`` without waiting: returns once the jobs are submitted."""
        from scheduler.recipe import parse_duration

        launch = _module("scheduler.launch", "launching on SkyPilot")
        req = launch.LaunchRequest(
            recipe_path=recipe_path,
            backend="skypilot",
            deadline_s=parse_duration(deadline) if deadline else None,
            budget_usd=budget_usd,
            plan_index=plan_index,
            yes=True,  # the TUI asked in its own confirm dialog
            run_id=run_id,
            store_url=store_url,
            progress=False,
        )
        result = launch.launch(req, echo=lambda line: None, confirm=lambda question: True)
        return Launched(str(result.run_id), str(result.store))

    def _run_local(self, recipe_path: str, store_url: str, run_id: str, workers: int) -> None:
        from scheduler.store import RunStore

        store = RunStore(store_url, run_id)
        log_dir = Path(store.path("logs")) if store.local else Path(tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.python, "-m", "scheduler.cli", "run", recipe_path,
            "--store", store_url, "--run-id", run_id,
            "--workers", str(max(1, workers)), "--no-progress",
        ]  # fmt: skip
        with open(log_dir / "tui-launch.log", "ab") as log:
            child = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the TUI quitting (and its Ctrl-C)
            )
        # Reap finished children so none lingers as a zombie while the TUI runs.
        self.children = [c for c in self.children if c.poll() is None]
        self.children.append(child)

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
        info = store.read_run_info()
        status = read_status(store)
        if status.state.is_terminal():
            raise SkybatchError(f"run {run_id} is {status.state.value}: nothing to resume")
        if any(w.alive for w in status.workers):
            raise SkybatchError(f"run {run_id} is running: its workers are alive")
        recipe_path = info.get("recipe_source")
        if not recipe_path or not Path(str(recipe_path)).exists():
            raise SkybatchError(
                f"run {run_id}: its recipe file {recipe_path!r} is gone; resume with "
                f"`skybatch run RECIPE --run-id {run_id} --store {store_url}`"
            )
        if info.get("backend", "local") != "local":
            self._launch_cloud(
                str(recipe_path),
                store_url=store_url,
                deadline=None,
                budget_usd=None,
                plan_index=None,
                run_id=run_id,
            )
            return
        self._run_local(str(recipe_path), store_url, run_id, max(1, len(status.workers)))
