"""Pilot-driven tests of every TUI screen and action, over real stores and a frozen clock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, Static
from tui_support import (
    FROZEN,
    SAMPLE_PLAN,
    FakeActions,
    RunSpec,
    build_run,
    make_app,
    sample_store,
    worker,
)

from scheduler.errors import LaunchError
from scheduler.store import RunStore
from tui import DataSource, Launched, LaunchRequest, SchedulerActions, SkybatchApp
from tui._data import RunsSnapshot
from tui._history import HistoryRun
from tui.screens import (
    ConfirmDialog,
    HelpScreen,
    PlanScreen,
    ResultsScreen,
    RunDetailScreen,
    RunsScreen,
)
from tui.widgets import EventLog, RunsTable, ShardMap, StatusLine, WorkersTable

# Async tests run on asyncio through anyio's pytest plugin (installed with httpx).
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


RUNNING = "embed-minilm-0a1b2c3d4e"
DONE = "classify-news-5f6a7b8c9d"
CANCELLED = "summarize-vllm-1122334455"


async def until(pilot, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let the app run until ``predicate`` holds (loads happen in threads)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return sample_store(tmp_path / "runs")


def runs_screen(app: SkybatchApp) -> RunsScreen:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


async def loaded(pilot, app: SkybatchApp) -> RunsScreen:
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads >= 1)
    return runs_screen(app)


def cell_text(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def test_runs_view_shows_each_run_with_glyph_progress_eta_and_spend(store: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(RunsTable)
        assert [k.value for k in table.rows] == [DONE, RUNNING, CANCELLED]
        assert cell_text(table, RUNNING, "state") == "▶ running"
        assert cell_text(table, DONE, "state") == "✔ done"
        assert cell_text(table, CANCELLED, "state") == "■ cancelled"
        assert cell_text(table, RUNNING, "progress") == "████▋···  58%"
        assert cell_text(table, RUNNING, "rate") == "5.00"
        # 500 rows left at 5 rows/s: 1m40s, against a deadline 4h away: on time.
        assert cell_text(table, RUNNING, "eta") == "1m40s / 4h00m ✔"
        assert cell_text(table, RUNNING, "spend") == "$1.05 / $50.00"
        assert cell_text(table, CANCELLED, "eta") == "– / 10m"
        assert cell_text(table, DONE, "eta") == "done"
        line = str(screen.query_one(StatusLine).render())
        assert line.startswith("1 active / 3 runs · $1.05/h · last refresh 12:00:00Z")


async def test_refresh_updates_rows_by_diff_and_the_cursor_stays_on_its_run(
    store: Path,
) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(RunsTable)
        await pilot.press("j", "j")
        assert table.current_key == CANCELLED
        # A new run that sorts first, and the cancelled run starts moving again.
        build_run(store, RunSpec("aaa-first-0000000000", shards=2))
        live = RunStore(str(store), CANCELLED)
        live.clear_meta("cancel")
        build_run(store / "elsewhere", RunSpec("unused-0000000001"))
        syncs = table.syncs
        await pilot.press("r")
        await until(pilot, lambda: table.syncs > syncs)
        assert "aaa-first-0000000000" in [k.value for k in table.rows]
        assert table.current_key == CANCELLED
        assert cell_text(table, CANCELLED, "state") == "⏸ stopped"
        await pilot.press("k")
        assert table.current_key == RUNNING


async def test_filter_with_slash_and_clear_with_escape(store: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(RunsTable)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"vllm")
        assert [k.value for k in table.rows] == [CANCELLED]
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("escape")
        assert len(table.rows) == 3
        await pilot.press("slash", *"done")
        assert [k.value for k in table.rows] == [DONE]
        await pilot.press("escape")
        assert len(table.rows) == 3 and app.focused is table


async def test_enter_opens_run_detail_and_escape_goes_back(store: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 50)) as pilot:
        await loaded(pilot, app)
        await pilot.press("j", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loads)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen) and detail.run_id == RUNNING
        shard_map = detail.query_one(ShardMap)
        assert [s.value for s in shard_map.states].count("done") == 7
        assert [s.value for s in shard_map.states].count("claimed") == 2
        assert [s.value for s in shard_map.states].count("failed") == 1
        workers = detail.query_one(WorkersTable)
        assert [k.value for k in workers.rows] == ["w0", "w1"]
        assert str(workers.get_cell("w1", "spot")) == "on-demand"
        assert str(workers.get_cell("w1", "preemptions")) == "1"
        dead = str(detail.query_one("#dead", Static).render())
        assert "7 dead rows" in dead and "ValueError ×7" in dead
        log = detail.query_one(EventLog)
        assert any("preempted" in line.text for line in log.lines)
        assert detail.detail is not None
        assert max(detail.detail.rows_per_s_series) > 0
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_cancel_asks_first_and_only_yes_cancels(store: Path) -> None:
    actions = FakeActions()
    app = make_app(store, actions=actions)
    async with app.run_test(size=(140, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("j", "c")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("c", "y")
        await until(pilot, lambda: ("cancel", RUNNING) in actions.calls)
        await pilot.press("u")
        await until(pilot, lambda: ("resume", RUNNING) in actions.calls)
        assert actions.calls == [("cancel", RUNNING), ("resume", RUNNING)]


async def test_cancel_of_a_local_run_writes_the_store_cancel_and_the_row_shows_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    build_run(root, RunSpec("stuck-0000000001", done=1, workers=[worker("w0", state="exited")]))
    done_events: list[tuple[str, str | None]] = []
    app = SkybatchApp(
        DataSource(str(root), clock=lambda: FROZEN),
        actions=SchedulerActions(),
        on_action=lambda label, error: done_events.append((label, error)),
    )
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(RunsTable)
        assert cell_text(table, "stuck-0000000001", "state") == "⏸ stopped"
        await pilot.press("c", "y")
        await until(pilot, lambda: bool(done_events))
        assert done_events == [("cancel stuck-0000000001", None)]
        await until(pilot, lambda: cell_text(table, "stuck-0000000001", "state") == "■ cancelled")
    assert RunStore(str(root), "stuck-0000000001").read_meta("cancel")["by"] == "skybatch cancel"


async def test_resume_of_a_done_run_is_refused_in_one_line(store: Path) -> None:
    done_events: list[tuple[str, str | None]] = []
    app = make_app(
        store,
        actions=SchedulerActions(),
        on_action=lambda label, error: done_events.append((label, error)),
    )
    async with app.run_test(size=(140, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("u")  # the cursor is on the done run
        await until(pilot, lambda: bool(done_events))
    assert done_events == [(f"resume {DONE}", f"run {DONE} is done: nothing to resume")]


async def test_results_screen_queries_committed_outputs_and_shows_errors(store: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("j", "o")
        await until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.queries)
        results = app.screen
        assert isinstance(results, ResultsScreen)
        table = results.query_one("#result", DataTable)
        # 7 committed shards of 100 rows with 1 dead row each: 693 outputs (100 shown).
        assert table.row_count == 100
        sql = results.query_one("#sql", Input)
        sql.value = "select count(*) as n from results"
        await pilot.press("enter")
        await until(pilot, lambda: results.queries >= 2)
        assert str(table.get_row_at(0)[0]) == "693"
        sql.value = "select nope from results"
        await pilot.press("enter")
        await until(pilot, lambda: results.queries >= 3)
        line = str(results.query_one("#result-line", Static).render())
        assert line.startswith("✘ query failed: Binder Error") and "\n" not in line
        # Read-only: a query cannot write files (nor read outside the run's outputs).
        sql.value = f"copy results to '{store}/leak.csv'"
        await pilot.press("enter")
        await until(pilot, lambda: results.queries >= 4)
        line = str(results.query_one("#result-line", Static).render())
        assert line.startswith("✘ query failed: Permission Error")
        assert not (store / "leak.csv").exists()
        # A failure that is not a query error (a store gone away) is shown too.
        data = app.data  # type: ignore[attr-defined]

        def broken(run_id: str, sql: str) -> None:
            raise OSError("the bucket answered 503")

        data.query_results = broken
        sql.value = "select 1"
        await pilot.press("enter")
        await until(pilot, lambda: results.queries >= 5)
        line = str(results.query_one("#result-line", Static).render())
        assert line == "✘ OSError: the bucket answered 503"
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_pause_and_refresh_interval_keys(store: Path) -> None:
    app = make_app(store, refresh_s=0.5)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        line = screen.query_one(StatusLine)
        assert "⟳ every 0.5s" in str(line.render())  # the --refresh given at start
        await pilot.press("plus", "plus")
        assert app.refresh_s == 2.0
        await pilot.press("p")
        assert app.paused and "⏸ paused" in str(line.render())
        await pilot.press("p", "plus")
        assert not app.paused and app.refresh_s == 5.0
        assert "every 5s" in str(line.render())
        await pilot.press("minus", "minus")
        assert app.refresh_s == 1.0


async def test_paused_screen_does_not_reload_until_resumed(store: Path) -> None:
    app = make_app(store, refresh_s=0.05)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        await until(pilot, lambda: screen.loads >= 3)
        await pilot.press("p")
        await pilot.pause(0.2)
        paused_at = screen.loads
        await pilot.pause(0.3)
        assert screen.loads == paused_at
        await pilot.press("p")
        await until(pilot, lambda: screen.loads > paused_at + 1)


async def test_help_and_command_palette(store: Path) -> None:
    app = make_app(store)
    async with app.run_test(size=(140, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"new run")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen))
        await pilot.press("escape", "ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*f"cancel {DONE}")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n", "q")
        await until(pilot, lambda: not app.is_running)


async def test_plan_choose_row_confirm_and_launch(store: Path) -> None:
    actions = FakeActions(plan=SAMPLE_PLAN, launched=CANCELLED)
    app = make_app(store, actions=actions)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        assert isinstance(app.screen, PlanScreen)
        plan = app.screen
        plan.query_one("#recipe", Input).value = "recipes/summarize-vllm.yaml"
        plan.query_one("#deadline", Input).value = "8h"
        plan.query_one("#budget", Input).value = "$20"
        plan.query_one("#backend").value = "skypilot"
        await pilot.click("#plan")
        await until(pilot, lambda: plan.plans >= 1)
        table = plan.query_one("#options", DataTable)
        assert table.row_count == 2
        assert [str(c) for c in table.get_row_at(0)][:4] == ["★", "L4×1", "spot", "4"]
        await pilot.press("j", "enter")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == CANCELLED
    kind, request = actions.calls[-1]
    assert actions.calls[0] == ("plan", ("recipes/summarize-vllm.yaml", "8h", 20.0))
    assert kind == "launch" and request.backend == "skypilot"
    assert request.option["accelerator"] == "A100-80GB"


async def test_a_form_changed_after_planning_must_be_planned_again(store: Path) -> None:
    actions = FakeActions(plan=SAMPLE_PLAN, launched=CANCELLED)
    app = make_app(store, actions=actions)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.query_one("#recipe", Input).value = "recipes/summarize-vllm.yaml"
        plan.query_one("#deadline", Input).value = "8h"
        plan.query_one("#backend").value = "skypilot"
        await pilot.click("#plan")
        await until(pilot, lambda: plan.plans >= 1)
        plan.query_one("#deadline", Input).value = "2h"  # the options were for 8 h
        await pilot.click("#launch")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)  # no confirm, no launch
        line = str(plan.query_one("#plan-line").render())
        assert line == "✘ the recipe, deadline or budget changed since the plan: plan again"
        await pilot.click("#plan")
        await until(pilot, lambda: plan.plans >= 2)
        await pilot.click("#launch")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    assert [kind for kind, _ in actions.calls] == ["plan", "plan"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            LaunchError("SkyPilot has no cloud enabled: run `sky check` to enable one"),
            "✘ SkyPilot has no cloud enabled: run `sky check` to enable one",
        ),
        (RuntimeError("bug\nwith a second line"), "✘ RuntimeError: bug"),
    ],
)
async def test_launch_errors_show_in_one_line_never_a_crash(
    store: Path, error: Exception, expected: str
) -> None:
    actions = FakeActions(plan=SAMPLE_PLAN, launch_error=error)
    app = make_app(store, actions=actions)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.query_one("#recipe", Input).value = "recipes/x.yaml"
        await pilot.click("#launch")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        line = plan.query_one("#plan-line", Static)
        await until(pilot, lambda: str(line.render()).startswith("✘"))
        assert str(line.render()) == expected
        assert app.is_running and app.screen is plan


async def test_real_planner_reports_a_bad_recipe_in_one_line(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: embed\nmodel: {engine: torch}\n")
    app = make_app(store, actions=SchedulerActions())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.query_one("#recipe", Input).value = str(bad)
        await pilot.click("#plan")
        await until(pilot, lambda: plan.plans >= 1)
        line = str(plan.query_one("#plan-line", Static).render())
        assert line.startswith(f"✘ {bad}:") and "\n" not in line


class SlowSource(DataSource):
    """A data source whose loads take a while and count how many run at once.

    ``gated`` loads wait for the test to let each one through (:meth:`let_through`), so a
    test decides when a load ends instead of betting that a sleep outlasts its key presses.
    """

    def __init__(self, url: str, delay_s: float = 0.0, *, gated: bool = False) -> None:
        super().__init__(url, clock=lambda: FROZEN)
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self._count = threading.Lock()
        self._gate = threading.Semaphore(0) if gated else None
        self._open = threading.Event()

    def let_through(self, loads: int = 1) -> None:
        """Let ``loads`` more gated loads finish."""
        assert self._gate is not None
        for _ in range(loads):
            self._gate.release()

    def open_gate(self) -> None:
        """Let every gated load, now and later, finish at once."""
        self._open.set()
        self.let_through(64)  # the loads already waiting

    def load_runs(self) -> RunsSnapshot:
        with self._count:
            self.in_flight += 1
            self.calls += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._gate is not None and not self._open.is_set():
                # Bounded, so a broken test fails instead of hanging the suite.
                assert self._gate.acquire(timeout=60), "a gated load was never let through"
            time.sleep(self.delay_s)
            return super().load_runs()
        finally:
            with self._count:
                self.in_flight -= 1


async def test_refreshes_never_overlap_and_the_ui_stays_responsive(store: Path) -> None:
    # A load is held in flight for as long as the test needs, however slow the machine:
    # nothing below depends on how long a key press or a load takes.
    source = SlowSource(str(store), gated=True)
    app = SkybatchApp(source, refresh_s=0.01)
    async with app.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: source.in_flight == 1)  # the first load, held
        # Manual refreshes while a load is in flight fold into one more load.
        for _ in range(5):
            await pilot.press("r")
        # Keys are handled while a load is in flight: the UI thread never waits on I/O.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and source.in_flight == 1
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        # Many refresh intervals (10 ms) pass with the load held: no second load starts.
        await pilot.pause(0.2)
        assert source.calls == 1 and source.in_flight == 1
        source.let_through()
        # The five presses became exactly one more load, which starts only now.
        await until(pilot, lambda: source.calls == 2 and source.in_flight == 1)
        await pilot.pause(0.2)
        assert source.calls == 2
        # From here the timer drives the loop: each load waits for the last to end.
        source.open_gate()
        await until(pilot, lambda: source.calls >= 5)
        assert runs_screen(app).loads >= 2
    assert source.max_in_flight == 1


async def test_an_empty_store_says_how_to_start(tmp_path: Path) -> None:
    app = make_app(tmp_path / "nothing-here")
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        assert str(screen.query_one(StatusLine).render()) == (
            "0 active / 0 runs · $0.00/h · last refresh 12:00:00Z · ⟳ every 2s · "
            "no runs here yet: press n to plan and launch one"
        )


async def test_opening_a_screen_loads_once_then_waits_for_the_interval(store: Path) -> None:
    source = SlowSource(str(store), delay_s=0.0)
    app = SkybatchApp(source, refresh_s=60)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        await pilot.pause(0.5)
        assert source.calls == 1 and screen.loads == 1


def test_cli_tui_has_help_with_an_example() -> None:
    from click.testing import CliRunner

    from scheduler.cli import _register, cli

    _register()
    result = CliRunner().invoke(cli, ["tui", "--help"])
    assert result.exit_code == 0
    assert "skybatch tui --store ./runs --refresh 1" in result.output


def test_cli_tui_refuses_a_bad_refresh() -> None:
    from scheduler.cli import main

    with pytest.raises(SystemExit) as e:
        main(["tui", "--refresh", "0"])
    assert e.value.code == 2


async def test_a_run_that_cannot_be_read_is_named_in_the_status_line(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    build_run(root, RunSpec("good-0000000001"))
    (root / "broken-000000001").mkdir(parents=True)
    (root / "broken-000000001" / "run.json").write_text("{}")  # no manifest
    app = make_app(root)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        line = str(screen.query_one(StatusLine).render())
        assert [k.value for k in screen.query_one(RunsTable).rows] == ["good-0000000001"]
        assert "✘ broken-000000001: run broken-000000001" in line


@pytest.mark.slow
async def test_real_planner_table_then_a_cloud_launch_error_in_one_line(
    store: Path, tmp_path: Path, repo: Path
) -> None:
    # The shipped recipe, with a local store: cloud workers cannot reach it, and the
    # launcher says so before SkyPilot is even asked.
    recipe = tmp_path / "summarize.yaml"
    text = (repo / "recipes" / "summarize-vllm.yaml").read_text()
    recipe.write_text(text.replace("store: s3://my-bucket/skybatch-runs", "store: ./runs"))
    (tmp_path / "data").symlink_to(repo / "recipes" / "data")
    app = make_app(store, actions=SchedulerActions())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.query_one("#recipe", Input).value = str(recipe)
        plan.query_one("#deadline", Input).value = "8h"
        plan.query_one("#backend").value = "skypilot"
        await pilot.click("#plan")
        await until(pilot, lambda: plan.plans >= 1, timeout_s=120)
        line = str(plan.query_one("#plan-line", Static).render())
        assert not line.startswith("✘"), line
        table = plan.query_one("#options", DataTable)
        assert table.row_count >= 2
        chosen = [str(c) for c in table.get_row_at(plan.plan.chosen)]
        assert chosen[0] == "★" and chosen[2] == "spot"
        await pilot.press("enter", "y")
        await until(
            pilot, lambda: str(plan.query_one("#plan-line", Static).render()).startswith("✘"), 60
        )
        line = str(plan.query_one("#plan-line", Static).render())
        assert line.startswith(f"✘ store {store} is a local path, which cloud workers cannot reach")
        assert "\n" not in line and app.screen is plan


async def test_a_launch_into_another_store_says_where_to_watch_it(store: Path) -> None:
    class ElsewhereActions(FakeActions):
        def launch(self, request: LaunchRequest) -> Launched:
            super().launch(request)
            return Launched("cloud-run-0001", "s3://bucket/runs")

    app = make_app(store, actions=ElsewhereActions())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        plan.query_one("#recipe", Input).value = "recipes/x.yaml"
        await pilot.click("#launch")
        await pilot.press("y")
        line = plan.query_one("#plan-line", Static)
        await until(pilot, lambda: "cloud-run-0001" in str(line.render()))
        assert str(line.render()) == (
            "launched cloud-run-0001 in s3://bucket/runs; "
            "watch it with `skybatch tui --store s3://bucket/runs`"
        )
        assert app.screen is plan


async def test_history_only_runs_are_listed_and_not_opened(store: Path) -> None:
    past = HistoryRun(
        run_id="past-run-0001", recipe="embed-minilm", backend="aws", rows=5000,
        rows_per_s=120.0, hours=0.2, cost_usd=3.2, finished_at=FROZEN - 7200,
    )  # fmt: skip
    source = DataSource(str(store), clock=lambda: FROZEN, history=lambda: [past])
    app = SkybatchApp(source)
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await loaded(pilot, app)
        table = screen.query_one(RunsTable)
        assert [k.value for k in table.rows][-1] == "past-run-0001"
        cells = [str(c) for c in table.get_row_at(3)]
        assert cells == [
            "✔ done", "past-run-0001", "embed-minilm", "aws (history)", "████████ 100%",
            "120.0", "ended 2h00m ago", "$3.20",
        ]  # fmt: skip
        assert "1 active / 4 runs" in str(screen.query_one(StatusLine).render())
        await pilot.press("j", "j", "j")
        assert table.current_key == "past-run-0001"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)
        # cancel, resume and results refuse it the same way (and ask for no confirmation)
        assert screen.selected_run is None
        for key in ("c", "u", "o"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert isinstance(app.screen, RunsScreen), key


def test_the_cli_does_not_import_textual_until_the_tui_command_runs() -> None:
    code = (
        "import sys; from scheduler.cli import _register; _register(); "
        "assert 'textual' not in sys.modules and 'tui' not in sys.modules, 'eager import'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


async def test_a_run_that_vanishes_shows_one_line_in_the_detail_title(store: Path) -> None:
    app = make_app(store, refresh_s=0.1)
    async with app.run_test(size=(140, 50)) as pilot:
        await loaded(pilot, app)
        await pilot.press("enter")  # the done run
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loads)
        detail = app.screen
        (store / DONE / "run.json").unlink()
        title = detail.query_one("#title", Static)
        await until(pilot, lambda: str(title.render()).startswith("✘"))
        assert str(title.render()) == (
            f"✘ run {DONE} not found in {store} (no run.json); check the run id and --store"
        )
        assert app.is_running


async def test_the_event_log_placeholder_gives_way_to_the_first_event() -> None:
    from textual.app import App, ComposeResult

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield EventLog(id="log")

    app = Host()
    async with app.run_test(size=(100, 20)) as pilot:
        log = app.query_one(EventLog)
        log.show([])
        log.show([])
        await pilot.pause()
        assert [line.text for line in log.lines] == ["no events yet"]
        event = {"ts": "2026-11-23T10:00:00+00:00", "kind": "guard", "message": "on track"}
        log.show([event])
        log.show([event])  # a refresh with nothing new writes nothing
        await pilot.pause()
        texts = [line.text for line in log.lines]
        assert len(texts) == 1 and "on track" in texts[0]
