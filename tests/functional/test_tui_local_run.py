"""The TUI launches real local runs (worker processes, python engine) and watches them.

Nothing is faked: the plan screen's Launch goes through :class:`tui.SchedulerActions`,
which creates the run and starts a detached ``skybatch run``; the TUI only reads the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Input, Select
from tui_support import write_recipe

from scheduler.store import RunState
from tui import DataSource, SchedulerActions, SkybatchApp
from tui.screens import ConfirmDialog, PlanScreen, RunDetailScreen, RunsScreen
from tui.widgets import RunsTable

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(pilot, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def wait_children(actions: SchedulerActions) -> None:
    for child in actions.children:
        child.wait(60)


async def launch_from_plan_screen(
    pilot, app: SkybatchApp, recipe: Path, workers: int, deadline: str = "", budget: str = ""
) -> None:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads, 30, "runs")
    await pilot.press("n")
    plan = app.screen
    assert isinstance(plan, PlanScreen)
    plan.query_one("#recipe", Input).value = str(recipe)
    plan.query_one("#workers", Input).value = str(workers)
    plan.query_one("#deadline", Input).value = deadline
    plan.query_one("#budget", Input).value = budget
    assert plan.query_one("#backend", Select).value == "local"
    await pilot.click("#launch")
    assert isinstance(app.screen, ConfirmDialog)
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), 60, "the run detail")


async def test_launch_a_local_run_from_the_tui_and_watch_it_reach_100_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(tmp_path, rows=300, boom=3, delay_s=0.0, rows_per_shard=50)
    actions = SchedulerActions()
    app = SkybatchApp(DataSource(str(tmp_path / "runs")), actions=actions, refresh_s=0.2)
    try:
        async with app.run_test(size=(140, 50)) as pilot:
            launched_at = time.time()
            await launch_from_plan_screen(pilot, app, recipe, workers=2, deadline="2h", budget="5")
            detail = app.screen
            assert isinstance(detail, RunDetailScreen)

            def finished() -> bool:
                d = detail.detail
                return d is not None and d.status.state.is_terminal()

            await until(pilot, finished, 240, "the run to finish")
            status = detail.detail.status
            assert status.state == RunState.DONE
            assert status.fraction_done == 1.0
            assert (status.rows_total, status.rows_done) == (300, 300)
            assert (status.rows_out, status.rows_dead) == (297, 3)
            assert status.shards_done == status.shards_total == 6
            assert "300 / 300 rows (297 out, 3 dead)" in str(detail.query_one("#figures").render())
            assert detail.detail.dead.reasons == [("ValueError", 3)]
            # the form's deadline and budget are the run's
            assert status.budget_usd == 5.0
            assert status.deadline_at is not None
            assert abs(status.deadline_at - (launched_at + 7200)) < 120
            await pilot.press("escape")
            runs = app.screen
            assert isinstance(runs, RunsScreen)
            table = runs.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 1, 30, "the runs table")
            row = [str(c) for c in table.get_row_at(0)]
            assert row[0] == "✔ done" and row[4] == "████████ 100%"
    finally:
        wait_children(actions)


async def test_cancel_then_resume_a_real_local_run_from_the_tui(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(tmp_path, rows=400, boom=0, delay_s=0.02, rows_per_shard=20)
    actions = SchedulerActions()
    app = SkybatchApp(DataSource(str(tmp_path / "runs")), actions=actions, refresh_s=0.2)
    try:
        async with app.run_test(size=(140, 50)) as pilot:
            await launch_from_plan_screen(pilot, app, recipe, workers=1)
            detail = app.screen
            assert isinstance(detail, RunDetailScreen)

            def state() -> RunState | None:
                return None if detail.detail is None else detail.detail.status.state

            def committed() -> int:
                return 0 if detail.detail is None else detail.detail.status.shards_done

            await until(pilot, lambda: committed() >= 1, 120, "a first commit")
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("y")
            await until(pilot, lambda: state() == RunState.CANCELLED, 120, "the cancel")
            wait_children(actions)  # the driver saw the cancel and stopped its workers
            stopped_at = committed()
            assert stopped_at < 20
            await pilot.press("u")
            await until(pilot, lambda: state() == RunState.DONE, 240, "the resumed run")
            status = detail.detail.status
            assert (status.rows_done, status.rows_out, status.rows_dead) == (400, 400, 0)
    finally:
        wait_children(actions)
