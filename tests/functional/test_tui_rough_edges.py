"""The dashboard's rough edges a new user met: a placeholder that looked filled in, a cut
state column, alphabetical runs, ETA and spend off screen at 80 columns, a resume toast
that said "done", and a failed run that did not say why."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static
from tui_support import FROZEN, FakeActions, RunSpec, build_run, iso, make_app, sample_store, worker

from scheduler.store import RunStore
from tui.screens import PlanScreen, RunDetailScreen, RunsScreen
from tui.widgets import RunsTable

CANCELLED = "summarize-vllm-1122334455"

# Async tests run on asyncio through anyio's pytest plugin (installed with httpx).
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(pilot: Any, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return sample_store(tmp_path / "runs")


async def _runs(pilot: Any, app: Any) -> RunsTable:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads >= 1)
    return app.screen.query_one(RunsTable)


async def test_the_recipe_field_reads_as_empty_not_filled_in(store: Path) -> None:
    app = make_app(store, actions=FakeActions())
    async with app.run_test(size=(140, 30)) as pilot:
        await _runs(pilot, app)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        recipe = screen.query_one("#recipe", Input)
        assert recipe.value == ""
        assert not recipe.placeholder.endswith((".yaml", ".yml"))  # no value look-alike
        assert recipe.placeholder.startswith("type a recipe path")
        await pilot.click("#plan")
        await until(pilot, lambda: screen.plans > 0)
        line = str(screen.query_one("#plan-line", Static).render())
        assert "give a recipe file" in line


async def test_runs_are_newest_first(store: Path) -> None:
    build_run(store, RunSpec("aaa-oldest-0000000000", shards=2, created_ago_s=9 * 3600))
    build_run(store, RunSpec("zzz-newest-0000000000", shards=2, created_ago_s=60))
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await _runs(pilot, app)
        keys = [row.key.value for row in table.ordered_rows]
        assert keys[0] == "zzz-newest-0000000000" and keys[-1] == "aaa-oldest-0000000000"
        # A run created while the dashboard is open goes to the top, not the bottom.
        build_run(store, RunSpec("mmm-newer-0000000000", shards=2, created_ago_s=10))
        syncs = table.syncs
        await pilot.press("r")
        await until(pilot, lambda: table.syncs > syncs)
        assert table.ordered_rows[0].key.value == "mmm-newer-0000000000"


async def test_the_state_column_widens_for_cancelled(store: Path) -> None:
    live = RunStore(str(store), CANCELLED)
    live.clear_meta("cancel")  # it opens as "⏸ stopped"...
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await _runs(pilot, app)
        live.write_meta("cancel", {"at": iso(FROZEN), "by": "test"})  # ...then is cancelled
        syncs = table.syncs
        await pilot.press("r")
        await until(pilot, lambda: table.syncs > syncs)
        assert str(table.get_cell(CANCELLED, "state")) == "■ cancelled"
        state = next(c for c in table.columns.values() if c.key.value == "state")
        assert state.content_width >= len("■ cancelled")


@pytest.mark.parametrize("width", [80, 160])
async def test_eta_and_spend_are_on_screen(store: Path, width: int) -> None:
    app = make_app(store)
    async with app.run_test(size=(width, 30)) as pilot:
        table = await _runs(pilot, app)
        keys = [c.key.value for c in table.columns.values()]
        assert "eta" in keys and "spend" in keys
        assert ("recipe" in keys) is (width >= 130)  # narrow: the run id names the recipe
        used = sum(c.get_render_width(table) for c in table.columns.values())
        assert used <= width - 2, f"{used} columns of {width}"  # the scrollbar's cells


async def test_resume_toast_says_workers_started_not_done(store: Path) -> None:
    toasts: list[str] = []
    app = make_app(store, actions=FakeActions())
    async with app.run_test(size=(140, 30)) as pilot:
        await _runs(pilot, app)
        original = app.notify
        app.notify = lambda message, **kw: (toasts.append(message), original(message, **kw))[1]  # type: ignore[method-assign]
        await pilot.press("j", "j", "u")  # the cancelled run
        await until(pilot, lambda: bool(toasts))
    assert toasts == [f"resume {CANCELLED}: workers started; the run goes on"]


async def test_a_failed_run_says_why_on_its_detail_screen(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    why = "model.name: 'acme/nope' is not in the Hugging Face cache"
    build_run(
        root,
        RunSpec(
            "broken-0000000001",
            workers=[worker("w0", state="failed", error=f"Traceback ...\n{why}",
                            last_seen=iso(FROZEN - 30))],
        ),
    )  # fmt: skip
    app = make_app(root)
    async with app.run_test(size=(140, 40)) as pilot:
        table = await _runs(pilot, app)
        assert str(table.get_cell("broken-0000000001", "state")) == "✘ failed"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loads > 0)
        figures = str(app.screen.query_one("#figures", Static).render())
        assert figures.startswith(f"✘ failed: {why}")
