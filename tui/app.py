"""The Textual app: a thin shell holding the data source, the actions and the settings.

Screens (``tui/screens``) draw; the data layer (``tui/_data.py``) reads; the actions seam
(``tui/_actions.py``) plans, launches, cancels and resumes. The app owns only what is
shared: refresh interval and pause, the command palette, and the run-level actions that
several screens offer (open, cancel with confirm, resume, results).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from scheduler.errors import SkybatchError
from tui._actions import Actions, SchedulerActions
from tui._data import DataSource
from tui.screens import (
    ConfirmDialog,
    HelpScreen,
    PlanScreen,
    ResultsScreen,
    RunDetailScreen,
    RunsScreen,
)
from tui.screens._refreshing import RefreshingScreen
from tui.widgets import StatusLine

__all__ = ["REFRESH_STEPS_S", "SkybatchApp"]

#: The refresh intervals ``+`` and ``-`` step through.
REFRESH_STEPS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class SkybatchApp(App[None]):
    """``skybatch tui``: watch, launch and steer runs."""

    TITLE = "skybatch"
    CSS_PATH = "skybatch.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("plus", "slower", "Slower", show=False),
        Binding("minus", "faster", "Faster", show=False),
    ]

    refresh_s: reactive[float] = reactive(2.0)
    """Seconds between two loads of the current screen's data."""
    paused: reactive[bool] = reactive(False)
    """True while automatic refresh is paused (``r`` still reloads)."""

    def __init__(
        self,
        data: DataSource,
        *,
        actions: Actions | None = None,
        refresh_s: float = 2.0,
        on_action: Callable[[str, str | None], None] | None = None,
    ) -> None:
        super().__init__()
        self.data = data
        self.actions: Actions = actions if actions is not None else SchedulerActions()
        self.set_reactive(SkybatchApp.refresh_s, refresh_s)
        self.on_action = on_action
        # The store's last path part: enough to tell stores apart, and stable in snapshots.
        self.store_name = data.store_url.rstrip("/").rsplit("/", 1)[-1]

    def on_mount(self) -> None:
        self.push_screen(RunsScreen())

    # -- settings
    def _status_lines(self) -> Iterable[StatusLine]:
        for screen in self.screen_stack:
            yield from screen.query(StatusLine)

    def watch_paused(self, paused: bool) -> None:
        for line in self._status_lines():
            line.paused = paused
        if isinstance(self.screen, RefreshingScreen):
            self.screen.schedule()

    def watch_refresh_s(self, refresh_s: float) -> None:
        for line in self._status_lines():
            line.refresh_s = refresh_s
        if isinstance(self.screen, RefreshingScreen):
            self.screen.schedule()

    def action_toggle_pause(self) -> None:
        """Pause or resume automatic refresh."""
        self.paused = not self.paused

    def action_slower(self) -> None:
        """Refresh less often (next step up)."""
        later = [s for s in REFRESH_STEPS_S if s > self.refresh_s]
        self.refresh_s = later[0] if later else REFRESH_STEPS_S[-1]

    def action_faster(self) -> None:
        """Refresh more often (next step down)."""
        sooner = [s for s in REFRESH_STEPS_S if s < self.refresh_s]
        self.refresh_s = sooner[-1] if sooner else REFRESH_STEPS_S[0]

    def action_help(self) -> None:
        """Show the key reference."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_plan(self) -> None:
        """Open the plan-and-launch screen."""
        self.push_screen(PlanScreen(store=self.data.store_url))

    # -- run-level actions shared by the screens
    def open_run(self, run_id: str) -> None:
        """Show a run's detail."""
        self.push_screen(RunDetailScreen(run_id))

    def open_results(self, run_id: str) -> None:
        """Query a run's committed outputs."""
        self.push_screen(ResultsScreen(run_id))

    def confirm_cancel(self, run_id: str) -> None:
        """Ask, then cancel a run."""
        url = self.data.store_url

        def answered(yes: bool | None) -> None:
            if yes:
                self.perform(f"cancel {run_id}", lambda: self.actions.cancel(url, run_id))

        self.push_screen(
            ConfirmDialog(
                f"Cancel run {run_id}? Workers stop after their shard.", yes="Cancel run"
            ),
            answered,
        )

    def resume_run(self, run_id: str) -> None:
        """Start workers again on a run."""
        url = self.data.store_url
        self.perform(
            f"resume {run_id}",
            lambda: self.actions.resume(url, run_id),
            done_text="workers started; the run goes on",
        )

    def perform(self, label: str, fn: Callable[[], object], *, done_text: str = "done") -> None:
        """Run a blocking action in a thread; report it as a toast, then refresh.

        ``done_text`` says what finished: a resume only starts workers, so its toast must
        not say "done" while the run has hours to go.
        """

        def work() -> None:
            error: str | None = None
            try:
                fn()
            except SkybatchError as e:
                error = str(e)
            except Exception as e:  # a bug in an action must not take the TUI down
                error = f"{type(e).__name__}: {e}"
            self.call_from_thread(self._action_done, label, error, done_text)

        self.run_worker(work, thread=True, group="action")

    def _action_done(self, label: str, error: str | None, done_text: str = "done") -> None:
        if error:
            self.notify(f"{label}: {error}", severity="error", timeout=8)
        else:
            self.notify(f"{label}: {done_text}")
        if self.on_action is not None:
            self.on_action(label, error)
        if isinstance(self.screen, RefreshingScreen):
            self.screen.reload()

    # -- command palette
    @staticmethod
    def _selected_run(screen: Screen[object]) -> str | None:
        if isinstance(screen, RunDetailScreen):
            return screen.run_id
        if isinstance(screen, RunsScreen):
            return screen.selected_run
        return None

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New run", "Plan and launch a recipe", self.action_plan)
        yield SystemCommand(
            "Pause / resume refresh", "Toggle live refresh", self.action_toggle_pause
        )
        yield SystemCommand("Refresh faster", "Shorter refresh interval", self.action_faster)
        yield SystemCommand("Refresh slower", "Longer refresh interval", self.action_slower)
        yield SystemCommand("Help", "Keys and glyphs", self.action_help)
        run_id = self._selected_run(screen)  # the screen under the palette
        if run_id:
            yield SystemCommand(
                f"Cancel {run_id}", "Stop the run (asks first)", lambda: self.confirm_cancel(run_id)
            )
            yield SystemCommand(
                f"Resume {run_id}", "Start workers again", lambda: self.resume_run(run_id)
            )
            yield SystemCommand(
                f"Results of {run_id}", "SQL over the outputs", lambda: self.open_results(run_id)
            )
