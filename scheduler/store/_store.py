"""The run store: where a run lives, and the single source of truth for its progress.

Layout (see ``scheduler/store/README.md`` for the state diagram)::

    <store>/<run_id>/
      run.json                      resolved recipe, input fingerprint, model + revision, plan
      manifest.parquet              shard_id, file, row offset, row count (written once)
      claims/<shard>.json           advisory lease: worker, attempt, token, expires_at
      out/<shard>.<attempt>.parquet results of one attempt
      done/<shard>.json             commit marker: the attempt that counts (exclusive create)
      dead/<shard>.<attempt>.jsonl  rows that failed, with the error
      workers/<worker>.json         heartbeat
      events/<ns>-<rand>.json       the run's event log (append-only: one object per event)
      meta/<name>.json              documents written after creation (plan, jobs, cancel)

A shard is done when, and only when, its ``done/`` marker exists. The marker is created
exclusively (a hard link locally, ``If-None-Match: *`` on S3, a generation precondition on
GCS), so the first commit wins and outputs are exactly-once even when two workers race on
a shard whose lease expired. Claims are advisory: they spread work and let a stale lease be
taken over; correctness never depends on them.

Everything goes through fsspec; the local filesystem gets atomic renames and links so a
crash never leaves a half-written marker, claim or output under its final name.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from scheduler.store._clock import LeaseClock
from scheduler.store._commits import ShardCommits
from scheduler.store._creation import RunCreation
from scheduler.store._documents import Claim, Heartbeat
from scheduler.store._fs import _is_local, open_store_root
from scheduler.store._retry import retry_call
from scheduler.store._types import (
    _RUN_ID,
    DoneMarker,
    Lease,
    OutputFile,
    digest_ids,
    iso_time,
    make_run_id,
    utcnow,
    validate_run_id,
    validate_worker_id,
)

__all__ = [
    "DoneMarker",
    "Lease",
    "OutputFile",
    "RunStore",
    "digest_ids",
    "iter_runs",
    "make_run_id",
    "open_store_root",
    "utcnow",
    "validate_run_id",
]


class RunStore(RunCreation, ShardCommits):
    """One run's folder in a store, with the operations of the store contract.

    Build one with ``RunStore(url, run_id)``; the driver then calls :meth:`ensure` (create
    or check for resume), workers and readers use it as is. Every method is safe to call
    from several processes and machines at once.
    """

    def __init__(self, url: str, run_id: str) -> None:
        self.url = url.rstrip("/")
        self.run_id = validate_run_id(run_id)
        self.fs, base = open_store_root(url)
        self.root = f"{base}/{run_id}"
        self.local = _is_local(self.fs)
        self._marker_cache: dict[str, DoneMarker] = {}
        self._manifest_cache: list[dict[str, Any]] | None = None
        self._event_cache: dict[str, dict[str, Any]] = {}
        self._leases = LeaseClock(self)

    # ------------------------------------------------------------------ leases

    def read_claim(self, shard_id: str) -> Claim | None:
        """The current claim of a shard, or None."""
        rel = f"claims/{shard_id}.json"
        claim = self._read_json(rel)
        if not isinstance(claim, dict):
            return None
        return Claim.from_json(shard_id, claim, where=f"{self.location}/{rel}")

    def claim(
        self, shard_id: str, worker: str, *, ttl_s: float, now: float | None = None
    ) -> Lease | None:
        """Take the lease on a shard, or None if it is done or leased to another worker.

        An expired lease (released, or unchanged for its TTL on the claimant's monotonic
        clock or the store's clock: see ``_clock.py``), or one held by an earlier
        incarnation of the same worker, is taken over. ``now`` stands for the claimant's
        clock in tests. The attempt number counts claims, ``failures`` counts attempts that
        failed with an error (carried over so poison shards are detected).
        """
        validate_worker_id(worker)
        if self.is_done(shard_id):
            return None
        current = self.read_claim(shard_id)
        # Expiry on one clock, never the holder's expires_at against ours (_clock.py).
        if (
            current is not None
            and current.worker != worker
            and not self._leases.expired(shard_id, current, ttl_s=ttl_s, worker=worker, now=now)
        ):
            return None
        now = time.time() if now is None else now
        lease = Lease(
            shard_id=shard_id,
            worker=worker,
            attempt=current.attempt + 1 if current else 1,
            token=secrets.token_hex(8),
            expires_at=now + ttl_s,
            failures=current.failures if current else 0,
            last_error=current.last_error if current else None,
        )
        self._write_lease(lease, now=now)
        back = self.read_claim(shard_id)
        if back is None or back.token != lease.token:
            return None  # lost a race for the lease; fine, claims are advisory
        return lease

    def _write_lease(self, lease: Lease, *, now: float, released: bool = False) -> None:
        doc = {
            "shard_id": lease.shard_id,
            "worker": lease.worker,
            "attempt": lease.attempt,
            "token": lease.token,
            "claimed_at": iso_time(now),
            "expires_at": 0.0 if released else lease.expires_at,
            "expires_at_iso": iso_time(0.0 if released else lease.expires_at),
            # What claimants wait for: this long without a rewrite (on their clocks).
            "ttl_s": round(max(0.0, lease.expires_at - now), 3),
            "failures": lease.failures,
            "last_error": lease.last_error,
            "released": released,
        }
        self._write_bytes(f"claims/{lease.shard_id}.json", json.dumps(doc).encode())

    def renew(self, lease: Lease, *, ttl_s: float, now: float | None = None) -> Lease | None:
        """Extend a lease we still hold; None if another worker took it over."""
        now = time.time() if now is None else now
        current = self.read_claim(lease.shard_id)
        if current is None or current.token != lease.token:
            return None
        renewed = Lease(**{**asdict(lease), "expires_at": now + ttl_s})
        self._write_lease(renewed, now=now)
        return renewed

    def release(self, lease: Lease, *, error: str | None = None) -> None:
        """Give a lease back without committing; with ``error`` the attempt counts as failed."""
        current = self.read_claim(lease.shard_id)
        if current is None or current.token != lease.token:
            return
        failures = lease.failures + (1 if error else 0)
        released = Lease(
            **{**asdict(lease), "failures": failures, "last_error": error or lease.last_error}
        )
        self._write_lease(released, now=time.time(), released=True)

    def claims(self) -> dict[str, Claim]:
        """Every claim, by shard id."""
        docs = self._read_json_many("claims")
        return {
            name: Claim.from_json(name, doc, where=f"{self.location}/claims/{name}.json")
            for name, doc in docs.items()
            if isinstance(doc, dict)
        }

    # ------------------------------------------------------------------ heartbeats, events

    def heartbeat(self, worker: str, info: dict[str, Any], *, retry: bool = True) -> None:
        """Publish a worker's heartbeat (overwrites the previous one).

        ``retry=False`` tries once (a last word when the store is already known down).
        """
        validate_worker_id(worker)
        doc = {**info, "worker": worker, "last_seen": utcnow().isoformat()}
        rel, data = f"workers/{worker}.json", json.dumps(doc, default=str).encode()
        if retry or self.local:
            self._write_bytes(rel, data)
        else:
            self.fs.pipe_file(self.path(rel), data)

    def workers(self) -> dict[str, Heartbeat]:
        """Every worker's last heartbeat, by worker id."""
        docs = self._read_json_many("workers")
        return {
            name: Heartbeat.from_json(name, doc, where=f"{self.location}/workers/{name}.json")
            for name, doc in docs.items()
            if isinstance(doc, dict)
        }

    def log_event(self, kind: str, message: str, **data: Any) -> None:
        """Append an event to the run's log (one object per event: no read-modify-write)."""
        now = time.time_ns()
        doc = {"ts": iso_time(now / 1e9), "kind": kind, "message": message, **data}
        self._write_bytes(
            f"events/{now:020d}-{secrets.token_hex(3)}.json", json.dumps(doc, default=str).encode()
        )

    def events(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The run's events, oldest first (the newest ``limit`` when given)."""
        names = [n for n in self._listdir("events") if n.endswith(".json")]
        if limit is not None:
            names = names[-limit:]
        # Event files are never rewritten: fetch only those this object has not read yet.
        new = [n for n in names if n not in self._event_cache]
        found = self._read_many([f"events/{n}" for n in new])
        for name in new:
            with contextlib.suppress(ValueError, KeyError):
                doc = json.loads(found[f"events/{name}"])
                if isinstance(doc, dict):
                    self._event_cache[name] = doc
        return [self._event_cache[n] for n in names if n in self._event_cache]  # by time


def iter_runs(url: str) -> Iterator[str]:
    """Run ids in a store (folders holding a run.json)."""
    fs, root = open_store_root(url)

    def listing() -> list[Any]:
        try:
            return list(fs.ls(root, detail=True, refresh=True))
        except TypeError:  # filesystems without ``refresh``
            return list(fs.ls(root, detail=True))

    try:
        entries = listing() if _is_local(fs) else retry_call(url, "listing runs", listing)
    except FileNotFoundError:
        return
    # A long-lived process (the TUI) lists again and again: never answer from a listing.
    fs.invalidate_cache(root)
    for entry in sorted(entries, key=lambda e: str(e["name"])):
        if entry.get("type") == "directory":
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if _RUN_ID.match(name) and fs.exists(f"{root}/{name}/run.json"):
                yield name
