"""Where workers run: on this machine, or as SkyPilot managed jobs.

Every backend keeps the :class:`Backend` contract of :mod:`scheduler.backends.base` (start,
alive, add, ended, cancel, billed spend), so the launch flow, ``watch``, ``cancel``, the
deadline guard and the TUI never test a backend's name. :func:`backend_class` turns the
name a user gives (``--backend``) into the class; :func:`open_backend` opens the backend of
an existing run from its run.json. The SkyPilot backend talks to SkyPilot through a session
(:data:`SessionFactory`), which a rehearsal or a test may replace.

This face imports nothing heavy: a worker VM imports ``scheduler.backends.skypilot._entry``
through it, so the backends themselves are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from scheduler.backends.base import Backend, JobSession, SessionFactory
from scheduler.errors import UsageError

if TYPE_CHECKING:
    from scheduler.store import RunStore

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "JobSession",
    "SessionFactory",
    "backend_class",
    "open_backend",
]

#: The names ``--backend`` takes.
BACKEND_NAMES = ("skypilot", "local")


def backend_class(name: str) -> Any:
    """The backend class called ``name`` (its ``remote`` says whether workers run elsewhere)."""
    if name == "local":
        from scheduler.backends.local import LocalBackend

        return LocalBackend
    if name == "skypilot":
        from scheduler.backends.skypilot import SkyPilotBackend

        return SkyPilotBackend
    raise UsageError(f"--backend {name!r}: use {' or '.join(BACKEND_NAMES)}")


@contextmanager
def open_backend(
    store: RunStore, *, session_factory: SessionFactory | None = None
) -> Iterator[Backend]:
    """The backend of an existing run (run.json says which), open for the command's life.

    A SkyPilot run gets a session from ``session_factory`` (default: SkyPilot's API server)
    and the secrets named in this environment, so workers the guard adds get them too.
    """
    info = store.run_info()
    cls = backend_class(info.backend)
    if not cls.remote:
        backend = cls(store, usd_per_hour=info.option.usd_per_hour if info.option else 0.0)
        try:
            yield backend
        finally:
            backend.close()
        return
    from scheduler.backends import skypilot as sp
    from scheduler.store import LaunchOption

    option = info.option or LaunchOption("unknown", workers=0)
    names = sp.secret_names_from_env()
    with (session_factory or sp.SkyPilotSession)() as session:
        yield cls(
            store, None, option, session,
            secret_names=names, secrets=sp.secret_values(names),
        )  # fmt: skip
