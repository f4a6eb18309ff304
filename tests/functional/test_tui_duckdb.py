"""The TUI reads the run history without ever holding the DuckDB write lock.

A real ``skybatch run`` records its run in the pricing DuckDB file while the TUI, open
on the same file, re-reads the history every 50 ms; the command must succeed and its row
must reach the TUI. A writer holding the file only makes the TUI skip a read.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tui_support import write_recipe

import pricing
from tui import DataSource, SkybatchApp
from tui._history import HistoryBusy, HistoryRun, history_provider, read_history
from tui.screens import RunsScreen
from tui.widgets import RunsTable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingHistory:
    """The real history reader, counting its calls (a wrapper at the data-source seam)."""

    def __init__(self) -> None:
        provider = history_provider()
        assert provider is not None
        self.provider = provider
        self.reads = 0
        self.busy = 0

    def __call__(self) -> list[HistoryRun]:
        self.reads += 1
        try:
            return self.provider()
        except HistoryBusy:
            self.busy += 1
            raise


async def until(pilot, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@pytest.mark.slow
async def test_a_cli_command_writes_the_duckdb_file_while_the_tui_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pricing.record_run(
        run_id="old-run-0001", recipe="embed-minilm", rows=1000, actual_hours=0.5,
        actual_cost_usd=1.25, actual_rows_per_s=0.55,
    )  # fmt: skip
    recipe = write_recipe(tmp_path, rows=200, boom=0, delay_s=0.0, rows_per_shard=50)
    history = CountingHistory()
    app = SkybatchApp(DataSource(str(tmp_path / "watched"), history=history), refresh_s=0.05)
    async with app.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), 10, "the runs screen")
        table = app.screen.query_one(RunsTable)
        await until(pilot, lambda: "old-run-0001" in [k.value for k in table.rows], 20, "history")
        assert str(table.get_cell("old-run-0001", "backend")) == "local (history)"
        assert str(table.get_cell("old-run-0001", "spend")) == "$1.25"
        reads_before = history.reads
        # The run goes to another store: the TUI can only learn of it from the history.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", "run", str(recipe),
            "--store", str(tmp_path / "elsewhere"), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert proc.returncode == 0, err.decode()
        assert b"not recorded" not in err, err.decode()
        summary = json.loads(out)
        assert summary["state"] == "done"
        # The TUI kept reading the file the whole time the command ran and wrote it.
        assert history.reads - reads_before >= 5
        run_id = summary["run_id"]
        await until(pilot, lambda: run_id in [k.value for k in table.rows], 20, "the new run")
        assert str(table.get_cell(run_id, "state")) == "✔ done"
    recorded = read_history(pricing.db_path())
    assert {h.run_id for h in recorded} == {"old-run-0001", run_id}
    assert next(h for h in recorded if h.run_id == run_id).rows == 200


def test_a_writer_holding_the_file_makes_the_tui_keep_its_last_history(tmp_path: Path) -> None:
    pricing.record_run(run_id="kept-0001", recipe="r", rows=10, actual_cost_usd=0.5)
    path = pricing.db_path()
    source = DataSource(str(tmp_path / "runs"), history=lambda: read_history(path))
    assert [h.run_id for h in source.load_runs().history] == ["kept-0001"]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(HistoryBusy, match="lock"):
            read_history(path)
        assert [h.run_id for h in source.load_runs().history] == ["kept-0001"]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
