"""SVG snapshots of the main TUI views over a deterministic store and a frozen clock.

Update after a deliberate visual change with ``pytest tests/functional/test_tui_snapshots.py
--snapshot-update`` and look at the new SVGs (``__snapshots__/``) before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import SAMPLE_PLAN, FakeActions, make_app, sample_store

from tui.screens import PlanScreen, RunDetailScreen, RunsScreen

SIZE = (140, 40)


async def _until(pilot: Pilot[None], predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15
    while not predicate():
        assert time.monotonic() < deadline, "the view did not load in time"
        await pilot.pause(0.05)
    await pilot.pause(0.2)  # let the footer and layout settle after the last load


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return sample_store(tmp_path / "runs")


def test_runs_view(snap_compare, store: Path) -> None:
    app = make_app(store)

    async def loaded(pilot: Pilot[None]) -> None:
        await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads > 0)
        await pilot.press("j")

    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)


@pytest.mark.parametrize("width", [80, 160])
def test_runs_view_at_80_and_160_columns(snap_compare, store: Path, width: int) -> None:
    # At 80 columns the table drops recipe and backend so ETA and spend stay on screen.
    app = make_app(store)

    async def loaded(pilot: Pilot[None]) -> None:
        await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads > 0)

    assert snap_compare(app, terminal_size=(width, 24), run_before=loaded)


@pytest.mark.parametrize("width", [80, 160])
def test_plan_form_at_80_and_160_columns(snap_compare, store: Path, width: int) -> None:
    # The empty recipe field reads as an instruction, not a value.
    app = make_app(store, actions=FakeActions())

    async def opened(pilot: Pilot[None]) -> None:
        await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads > 0)
        await pilot.press("n")
        # Mounted: the recipe field has the focus and the subtitle is set.
        await _until(
            pilot,
            lambda: (
                isinstance(app.screen, PlanScreen)
                and app.screen.query_one("#recipe", Input).has_focus
                and bool(app.screen.sub_title)
            ),
        )
        app.screen.query_one("#recipe", Input).cursor_blink = False  # a steady cursor

    assert snap_compare(app, terminal_size=(width, 24), run_before=opened)


def test_run_detail(snap_compare, store: Path) -> None:
    app = make_app(store)

    async def opened(pilot: Pilot[None]) -> None:
        await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads > 0)
        await pilot.press("j", "enter")
        await _until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loads > 0
        )

    assert snap_compare(app, terminal_size=(140, 50), run_before=opened)


def test_plan_screen_with_options(snap_compare, store: Path) -> None:
    app = make_app(store, actions=FakeActions(plan=SAMPLE_PLAN))

    async def planned(pilot: Pilot[None]) -> None:
        await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loads > 0)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        screen.query_one("#recipe", Input).value = "recipes/summarize-vllm.yaml"
        screen.query_one("#deadline", Input).value = "8h"
        screen.query_one("#budget", Input).value = "20"
        await pilot.click("#plan")
        await _until(pilot, lambda: screen.plans > 0)

    assert snap_compare(app, terminal_size=SIZE, run_before=planned)
