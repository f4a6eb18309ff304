"""Whether another worker's lease has expired, judged without trusting anyone's wall clock.

A lease document carries ``expires_at`` from its holder's clock. Comparing that with the
claimant's clock lets a worker whose clock runs an hour fast block its shard for an hour
after it dies, and one whose clock runs slow lose every lease it holds at once. So
``expires_at`` is shown, never obeyed. A lease held by another worker is expired when it
has gone ``ttl`` seconds without being rewritten (a renewal rewrites it). Its age is

* its age on the store's clock when the claimant first saw this version of it (same
  token, same ``expires_at``): the claim file's modification time against that of a probe
  the claimant wrote itself (``clocks/<worker>``), carried forward on its monotonic clock;
  so a worker that just started takes over a lease abandoned long ago at once;
* plus what the claimant's own monotonic clock counted since then (0 at first sight where
  the store cannot tell a modification time).

A released lease (``expires_at`` 0) is free at once, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scheduler.store._documents import Claim
from scheduler.store._fs import StoreIO

__all__ = ["LeaseClock", "is_released"]

#: How long a store-clock reference is trusted before it is probed again (seconds).
_PROBE_EVERY_S = 600.0


def is_released(claim: Claim) -> bool:
    """True for a lease its holder gave back (free to claim at once)."""
    return claim.released or claim.expires_at == 0


def file_mtime(io: StoreIO, rel: str) -> float | None:
    """A file's modification time on the store's own clock (None if unknown or absent)."""
    full = io.path(rel)
    if io.local:
        import os

        try:
            return os.stat(full).st_mtime
        except FileNotFoundError:
            return None
    io._forget(full)
    try:
        info = io._remote(f"reading the time of {rel}", lambda: io.fs.info(full))
    except FileNotFoundError:
        return None
    for key in ("LastModified", "mtime", "updated", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


class LeaseClock:
    """One claimant's view of how long each lease has gone unchanged."""

    def __init__(self, io: StoreIO, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.io = io
        self.monotonic = monotonic
        # shard -> (the document's identity, claimant clock at first sight, store age then)
        self._seen: dict[str, tuple[tuple[Any, Any], float, float]] = {}
        self._store_ref: tuple[float, float] | None = None  # (store time, monotonic then)

    def age(self, shard_id: str, doc: Claim, *, worker: str, now: float | None) -> float:
        """Seconds ``doc`` has gone unchanged: its age on the store's clock when this
        claimant first saw it, plus what the claimant's own clock counted since.

        The store's clock is read once per version of a lease (one HEAD on S3), never on
        every scan. ``now`` is a reading of the claimant's clock (tests drive it).
        """
        clock = self.monotonic() if now is None else now
        key = (doc.token, doc.expires_at)
        seen = self._seen.get(shard_id)
        if seen is None or seen[0] != key:
            seen = (key, clock, max(0.0, self.store_age(shard_id, worker) or 0.0))
            self._seen[shard_id] = seen
        return seen[2] + max(0.0, clock - seen[1])

    def store_age(self, shard_id: str, worker: str) -> float | None:
        """Seconds since the claim file was last written, on the store's clock."""
        written = file_mtime(self.io, f"claims/{shard_id}.json")
        now = self._store_now(worker) if written is not None else None
        if written is None or now is None:
            return None
        return now - written

    def _store_now(self, worker: str) -> float | None:
        # The real monotonic clock: this reference tracks the store's clock, which tests
        # cannot move (``self.monotonic`` is the claimant's observation clock).
        mono = time.monotonic()
        if self._store_ref is None or mono - self._store_ref[1] > _PROBE_EVERY_S:
            rel = f"clocks/{worker}"
            self.io._write_bytes(rel, b"")
            stamp = file_mtime(self.io, rel)
            if stamp is None:
                return None
            self._store_ref = (stamp, mono)
        return self._store_ref[0] + (mono - self._store_ref[1])

    def expired(
        self, shard_id: str, doc: Claim, *, ttl_s: float, worker: str, now: float | None
    ) -> bool:
        """Whether another worker's lease ``doc`` may be taken over by ``worker``."""
        if is_released(doc):
            return True
        ttl = doc.ttl_s or ttl_s
        return self.age(shard_id, doc, worker=worker, now=now) >= ttl
