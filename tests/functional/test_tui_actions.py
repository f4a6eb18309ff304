"""The TUI's actions go through the launch flow and the run's backend (no second prepare)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import write_recipe

from scheduler.store import RunState, RunStore, read_status
from tui import LaunchRequest, SchedulerActions


@pytest.mark.slow
def test_a_local_launch_prepares_its_run_once_and_a_driver_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(tmp_path, rows=20, boom=0, delay_s=0.0, rows_per_shard=5)
    actions = SchedulerActions()
    request = LaunchRequest(
        recipe_path=str(recipe), backend="local", store=str(tmp_path / "runs"), workers=2
    )
    launched = actions.launch(request)
    (driver,) = actions.children
    # The run exists already: the detached driver only runs its workers. (It used to be
    # `skybatch run RECIPE`, which opened, counted and fingerprinted the input again.)
    assert list(driver.args[1:3]) == ["-m", "scheduler.backends.local"]
    assert "--run-id" in driver.args and str(recipe) not in driver.args
    assert driver.wait(120) == 0
    store = RunStore(launched.store, launched.run_id)
    assert read_status(store).state == RunState.DONE
    assert [e["kind"] for e in store.events()].count("launched") == 1
