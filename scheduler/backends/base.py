"""The contract every backend keeps: where a run's workers run, and how they are counted.

A :class:`Backend` is bound to one run (its store). The launch flow, ``skybatch watch``,
``skybatch cancel``, the deadline guard and the TUI's actions talk to a run's workers only
through it, never by testing the backend's name::

    start(n)          start the run's first n workers
    alive()           how many run now (or are starting), from the last look
    add(k, spot=)     k more workers, spot or on-demand (the deadline guard's lever)
    ended()           look again; True when every worker has ended for good
    cancel()          stop every worker (each releases its shard); returns what was stopped
    billed_usd()      what the backend bills for the run so far (None: heartbeats say it)
    launched          workers started for the run, ever
    jobs()            the backend's own records of its workers (SkyPilot's queue), plain data

Two implementations: :class:`scheduler.backends.local.LocalBackend` (processes on this
machine) and :class:`scheduler.backends.skypilot.SkyPilotBackend` (one managed job each).

**The SkyPilot session seam.** :class:`SkyPilotBackend` never imports ``sky`` itself: it
talks through a *session*, any object with the four methods of :class:`JobSession`::

    launch(jobs, secrets) -> {worker_id: job_id}   submit each WorkerJob's task
    queue(job_ids)        -> [record, ...]         SkyPilot's queue_v2 records, as dicts
    cancel(job_ids)       -> None
    enabled_clouds()      -> ["aws", ...]

A :data:`SessionFactory` makes one (a context manager: entered before anything is written,
left when the command ends). The default is
:class:`~scheduler.backends.skypilot.SkyPilotSession` (SkyPilot's API server); a rehearsal
session that runs each exact task on this machine, or a test's fake, plugs in here
(``launch(..., session_factory=...)``) and everything above it runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["Backend", "JobSession", "SessionFactory"]


class Backend(Protocol):
    """The workers of one run, wherever they run (see the module docstring)."""

    #: The name recorded in run.json (``local``, ``skypilot``).
    name: str
    #: Workers run on other machines: the store and input must be URLs they can reach,
    #: and a new worker needs minutes (provisioning) rather than seconds to start.
    remote: bool

    @property
    def launched(self) -> int:
        """Workers started for this run, ever (by this backend object or recorded)."""
        ...

    def start(self, workers: int) -> int:
        """Start the run's first ``workers`` workers; returns how many were started."""
        ...

    def alive(self) -> int:
        """Workers running now (or starting), from the last look."""
        ...

    def add(self, k: int, *, spot: bool) -> int:
        """Start ``k`` more workers (spot or on-demand); returns how many were started."""
        ...

    def ended(self) -> bool:
        """Look again; True when every worker launched has ended and none will come back."""
        ...

    def cancel(self) -> list[str]:
        """Stop every worker of the run; returns what was stopped, one item each."""
        ...

    def billed_usd(self) -> float | None:
        """The run's spend as the backend bills it; None when heartbeats are the bill."""
        ...

    def jobs(self) -> list[dict[str, Any]]:
        """The backend's records of the run's workers (empty when it keeps none)."""
        ...


class JobSession(Protocol):
    """What :class:`SkyPilotBackend` asks of SkyPilot (or of a stand-in for it)."""

    def launch(self, jobs: Sequence[Any], secrets: Mapping[str, str]) -> dict[str, int]:
        """Submit each job's task; returns worker id → managed job id."""
        ...

    def queue(self, job_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The managed-job records of ``job_ids`` (``queue_v2`` fields, plain dicts)."""
        ...

    def cancel(self, job_ids: Sequence[int]) -> None:
        """Cancel managed jobs."""
        ...

    def enabled_clouds(self) -> list[str]:
        """The clouds jobs may be placed on (lower case)."""
        ...


#: Makes a session: a context manager whose ``__enter__`` returns the :class:`JobSession`.
SessionFactory = Callable[[], AbstractContextManager[Any]]
