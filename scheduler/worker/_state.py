"""What a worker is and says: its exit codes, id, stop flag, heartbeat facts and counters.

The leaves of :mod:`scheduler.worker`: the exit codes the drivers read (see the package
docstring), the environment the launch sets, the stop flag a signal handler may set and
the exceptions that end a shard or a load, and the earlier life a worker id carries over.
"""

from __future__ import annotations

import os
import re
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.store import Heartbeat, RunStore

__all__ = [
    "EXIT_DONE",
    "EXIT_ENGINE",
    "EXIT_FAILED",
    "EXIT_STOPPED",
    "EXIT_STORE",
    "MODEL_ENV",
    "SLOT_ENV",
    "LoadInterrupted",
    "StopFlag",
    "WorkerInfo",
    "default_worker_id",
]

EXIT_DONE, EXIT_FAILED, EXIT_ENGINE, EXIT_STOPPED, EXIT_STORE = 0, 1, 2, 3, 4
#: Where the launch shipped a model that lives on the launching machine (``file_mounts``):
#: it replaces run.json's ``model.name`` on this VM (``~`` is this VM's home).
MODEL_ENV = "SKYBATCH_MODEL_NAME"
#: The local slot (GPUs or cores) the local pool pinned this worker to: every heartbeat
#: carries it, so a pool in another process of the same run leaves that slot alone.
SLOT_ENV = "SKYBATCH_LOCAL_SLOT"


def _earlier_life(store: RunStore, worker_id: str) -> Heartbeat | None:
    """The heartbeat of an earlier life of ``worker_id``, if any.

    The local pool writes a first heartbeat for a pinned worker as soon as it spawns it
    (to claim the slot before the worker can say so): that one, naming this very
    process, is no earlier life.
    """
    beat = store.workers().get(worker_id)
    if beat is not None and beat.pid == os.getpid() and beat.host == socket.gethostname():
        return None
    return beat


def default_worker_id(index: int | None = None) -> str:
    """A worker id unique on this machine: host, process id and (for a pool) an index.

    Two drivers on one run must never name their workers alike: heartbeats and leases are
    keyed by worker id, so a shared name would overwrite another worker's heartbeat and
    let it re-claim a lease that is not its own. The host name is reduced to the
    characters a worker id allows.
    """
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "host"
    host = host.replace("..", ".")[:48]
    suffix = "" if index is None else f"-{index}"
    return f"{host}-{os.getpid()}{suffix}"


class StopFlag:
    """A stop request that a signal handler may set.

    ``threading.Event.set`` takes a lock, so a second signal arriving while the first
    handler is inside it deadlocks the process (seen: Ctrl-C, then the driver's SIGTERM).
    Assigning a bool takes no lock.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Ask the worker to stop (safe inside a signal handler)."""
        self._set = True

    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self._set


class _Stopped(Exception):
    """Raised inside a shard when the worker was asked to stop."""


class LoadInterrupted(BaseException):
    """Raised by the signal handler while the worker is still starting (loading its model).

    Loading holds no lease and writes nothing, so there is nothing to finish: a stop
    request then ends the load at once instead of after it (a model can take many seconds,
    and the driver waits for its workers). A ``BaseException`` so that loader code that
    catches ``Exception`` cannot swallow it.
    """


class _ShardTimeout(Exception):
    """Raised inside a shard when it ran past ``limits.shard_timeout``."""


@dataclass
class WorkerInfo:
    """What a heartbeat says about where the worker runs and what it costs."""

    accelerator: str | None = None
    cloud: str | None = None
    region: str | None = None
    spot: bool = False
    usd_per_hour: float = 0.0
    preemptions: int = 0


@dataclass
class _Stats:
    rows_done: int = 0
    shards_done: int = 0
    rows_processed: int = 0
    current_shard: str | None = None
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=120))

    def rate(self, now: float, window_s: float = 60.0) -> float:
        self.samples.append((now, self.rows_processed))
        old = [s for s in self.samples if now - s[0] <= window_s]
        if len(old) < 2 or old[-1][0] - old[0][0] <= 0:
            return 0.0
        return (old[-1][1] - old[0][1]) / (old[-1][0] - old[0][0])
