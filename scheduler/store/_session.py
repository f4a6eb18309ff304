"""The latest session of a run: the worker lives that started it last, and what they did.

A run may be stopped and resumed many times; each ``skybatch run`` (or launch) is a
session. Rates must come from this session's rows over this session's time: dividing every
committed row by the time since the resume began reported 10,340 rows/s. Heartbeats carry
each worker life's start, last beat, rows done in that life and a 60-second recent rate, so
a session is the group of lives that overlap one another, the last such group in time::

    life a  ├───────┤                       (session 1: a, b)
    life b     ├──────────┤
    life c                      ├───────┤   (session 2: c, d: a restart inside it joins it)
    life d                        ├─────────...

A session whose every worker ended ``failed`` explains why the run stopped: the last
error line of the most recent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Life", "Session", "current_session", "last_error_line"]


class Life(Protocol):
    """One worker life as its heartbeat describes it (``WorkerStatus`` is one)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def alive(self) -> bool: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def last_seen(self) -> float | None: ...
    @property
    def rows_done(self) -> int: ...
    @property
    def rows_per_s(self) -> float: ...
    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True)
class Session:
    """The latest session's lives, start, rows and rates."""

    workers: list[Life]
    started_at: float | None
    elapsed_s: float
    rows_done: int
    avg_rows_per_s: float  # this session's rows over this session's time
    recent_rows_per_s: float  # the live workers' last-minute rates, summed

    @property
    def alive(self) -> bool:
        """Whether any worker of the session is alive."""
        return any(w.alive for w in self.workers)

    def failure(self) -> str | None:
        """Why the session ended, when every one of its workers failed; None otherwise."""
        if not self.workers or self.alive:
            return None
        if not all(w.state == "failed" for w in self.workers):
            return None
        latest = max(self.workers, key=lambda w: w.last_seen or 0.0)
        return last_error_line(latest.error) or f"worker {latest.worker_id} failed"


def last_error_line(text: str | None) -> str | None:
    """The last non-empty line of an error text (a traceback ends with the one that
    matters), cut to 300 characters."""
    if not text:
        return None
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:300] if lines else None


def current_session(workers: Sequence[Life], *, now: float) -> Session:
    """Group worker lives into sessions and describe the last one."""
    lives = sorted(
        (w for w in workers if w.started_at is not None), key=lambda w: w.started_at or 0.0
    )
    group: list[Life] = []
    end = float("-inf")
    for w in lives:
        start = w.started_at or 0.0
        if group and start > end:  # began after every earlier life ended: a new session
            group = []
        group.append(w)
        end = max(end, w.last_seen or start, now if w.alive else float("-inf"))
    if not group:
        return Session([], None, 0.0, 0, 0.0, 0.0)
    started = min(w.started_at or 0.0 for w in group)
    alive = [w for w in group if w.alive]
    last = max((w.last_seen or started) for w in group)
    elapsed = max(0.0, (now if alive else last) - started)
    rows = sum(w.rows_done for w in group)
    return Session(
        workers=group,
        started_at=started,
        elapsed_s=elapsed,
        rows_done=rows,
        avg_rows_per_s=rows / elapsed if elapsed > 0 else 0.0,
        recent_rows_per_s=sum(w.rows_per_s for w in alive),
    )
