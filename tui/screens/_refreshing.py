"""A screen that reloads its data on a self-rescheduling timer, never overlapping.

The loop is: load in a thread worker → apply on the UI thread → only then arm a one-shot
timer for the next load. A slow store therefore stretches the period instead of piling up
loads, and a manual refresh while a load is in flight is folded into that load. The loop
sleeps while the screen is covered (another screen on top) or refresh is paused.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

__all__ = ["RefreshingScreen"]


class RefreshingScreen(Screen[None]):
    """Base of the live screens: subclasses implement :meth:`load` and :meth:`apply`."""

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self._loading = False
        self._again = False
        self.loads = 0
        """Completed loads (tests wait on it)."""
        self._settled = False  # a first load has ended, well or not

    # -- subclass hooks
    def load(self) -> Any:
        """Read the data (runs in a thread: blocking I/O is fine here, UI calls are not)."""
        raise NotImplementedError

    def apply(self, data: Any) -> None:
        """Draw loaded data (on the UI thread)."""
        raise NotImplementedError

    def show_error(self, message: str) -> None:
        """Show a failed load as one line."""
        self.notify(message, severity="error", timeout=6)

    # -- the loop
    def on_mount(self) -> None:
        # Textual calls every class's on_mount along the MRO: subclasses must not call
        # this one again through super(), or the first load would run twice.
        self.reload()

    def reload(self) -> None:
        """Load now, or right after the load in flight."""
        if self._loading:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._loading = True
        self.run_worker(self.load, thread=True, group="refresh", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "refresh":
            return
        if event.state == WorkerState.SUCCESS:
            self.loads += 1
            self.apply(event.worker.result)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.show_error(str(error) or type(error).__name__)
        elif event.state != WorkerState.CANCELLED:
            return
        self._loading = False
        self._settled = self._settled or event.state != WorkerState.CANCELLED
        if event.state == WorkerState.CANCELLED:
            return
        if self._again:
            self._again = False
            self.reload()
        else:
            self.schedule()

    def schedule(self) -> None:
        """Arm the timer for the next load, unless paused or covered."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._loading or not self.is_current or getattr(self.app, "paused", False):
            return
        self._timer = self.set_timer(float(getattr(self.app, "refresh_s", 2.0)), self.reload)

    def on_screen_resume(self) -> None:
        # After the first load, even a failed one: a load that failed while another screen
        # covered this one armed no timer, and would otherwise never be retried.
        if self._settled:
            self.reload()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
