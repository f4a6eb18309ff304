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
import hashlib
import io
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import ResumeRefused, StoreError, StoreUnavailable
from scheduler.store._clock import LeaseClock
from scheduler.store._documents import Claim, Heartbeat, JobsDoc, RunInfo
from scheduler.store._fs import StoreIO, _fuse_mount_type, _is_local, open_store_root
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
from scheduler.store._verify import check_bytes, raise_problems

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


def _parquet_table(data: bytes) -> pa.Table:
    """A Parquet file held in memory, read entirely on the calling thread.

    ``pq.read_table`` on a Python file object scans it with Arrow's async dataset scanner,
    whose pool threads may drop the last reference to that file object after the read has
    returned; that needs the GIL, and during interpreter shutdown a thread asking for it is
    unwound through a C++ destructor: ``terminate called without an active exception``,
    exit -6, after the command had already printed its result. Stores hold small files
    (manifests, one shard's results), so a single-threaded read costs nothing.
    """
    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)


def _same_attempt(a: DoneMarker, b: DoneMarker) -> bool:
    """True when two markers commit the same attempt's outputs (a commit retried)."""
    return (a.attempt_id, a.out_file, a.out_sha256) == (b.attempt_id, b.out_file, b.out_sha256)


class RunStore(StoreIO):
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

    # ------------------------------------------------------------------ creation

    def exists(self) -> bool:
        """True when the run has been created (its run.json exists)."""
        return self._exists("run.json")

    def check_conformance(self) -> None:
        """Refuse a store that does not honour exclusive create (e.g. a FUSE bucket mount)."""
        if self.local:
            fuse = _fuse_mount_type(self.root)
            if fuse:
                raise StoreError(
                    f"store {self.url} is on a {fuse} mount: FUSE bucket mounts can publish "
                    "truncated files; use the bucket URL (s3://..., gs://...) instead"
                )
        probe = f"_conformance/{uuid.uuid4().hex}"
        no_excl = "so commits cannot be exactly-once; use a local directory, s3:// or gs://"
        try:
            self._create_exclusive(probe, b"1")
        except (NotImplementedError, ValueError) as e:
            # fsspec filesystems without mode "xb" say so with one of these, not OSError.
            raise StoreError(
                f"store {self.url}: cannot create files exclusively ({e or type(e).__name__}), "
                f"{no_excl}"
            ) from e
        except OSError as e:
            raise StoreError(f"store {self.url}: cannot write to it ({e})") from e
        try:
            try:
                self._create_exclusive(probe, b"2")
            except FileExistsError:
                return
            except (NotImplementedError, ValueError, OSError) as e:
                # Refused, but not as "exists" (e.g. an S3-compatible store answering 501
                # to If-None-Match): a commit race could not be told from a failure.
                raise StoreError(
                    f"store {self.url}: a second exclusive create failed without saying the "
                    f"file exists ({e or type(e).__name__}), {no_excl}"
                ) from e
            raise StoreError(
                f"store {self.url} does not refuse a second exclusive create, {no_excl}"
            )
        finally:
            with contextlib.suppress(OSError):
                self.fs.rm(self.path(probe))
            if self.local:
                with contextlib.suppress(OSError):
                    os.rmdir(self.path("_conformance"))

    def create(self, run_info: dict[str, Any], manifest: list[dict[str, Any]]) -> bool:
        """Create run.json (exclusively), then the manifest; True if this call created the run.

        run.json goes first so that only the driver that created the run ever writes its
        manifest: one that loses a creation race (perhaps from another input) must not
        replace the winner's shards. A crash in between leaves a run without a manifest,
        which :meth:`ensure` completes.
        """
        info = {"run_id": self.run_id, "store": self.url, **run_info}
        info.setdefault("created_at", utcnow().isoformat())
        try:
            self._create_exclusive("run.json", json.dumps(info, indent=2, default=str).encode())
        except FileExistsError:
            return False  # another driver created it first; the caller re-reads and checks
        self._write_manifest(manifest)
        return True

    def _write_manifest(self, manifest: list[dict[str, Any]]) -> None:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(manifest), buf)
        self._write_bytes("manifest.parquet", buf.getvalue())

    def ensure(
        self,
        run_info: dict[str, Any],
        manifest: Callable[[], list[dict[str, Any]]],
        *,
        keys: tuple[str, ...] = ("input_fingerprint", "model_revision", "recipe_digest"),
    ) -> bool:
        """Create the run, or check that the existing one matches; True if it was created.

        ``manifest`` is called only when the run is new (sharding reads input metadata), or
        when an existing, matching run lost its manifest to a crash during creation.
        A run created from a different input, model revision or recipe is refused with
        :class:`ResumeRefused`, naming what changed and what to do.
        """
        created = False
        if not self.exists():
            created = self.create(run_info, manifest())
        stored = self.read_run_info()
        labels = {
            "input_fingerprint": "input",
            "model_revision": "model revision",
            "recipe_digest": "recipe",
            "model": "model",
        }
        for key in keys:
            if stored.get(key) != run_info.get(key):
                raise ResumeRefused(
                    f"run {self.run_id} in {self.url} was created from a different "
                    f"{labels.get(key, key)} ({str(stored.get(key))[:12]} != "
                    f"{str(run_info.get(key))[:12]}); to start a new run give another "
                    "--run-id, or omit --run-id to derive one from the new input"
                )
        if not created and not self._exists("manifest.parquet"):
            # Same run, creation interrupted (or still in flight elsewhere: the same input
            # gives the same shards, so writing it twice is harmless).
            self._write_manifest(manifest())
        return created

    def read_run_info(self) -> dict[str, Any]:
        """The run's ``run.json``."""
        info = self._read_json("run.json")
        if not isinstance(info, dict):
            raise StoreError(
                f"run {self.run_id} not found in {self.url} (no run.json); "
                "check the run id and --store"
            )
        return info

    def run_info(self) -> RunInfo:
        """The run's ``run.json``, typed (see :mod:`scheduler.store._documents`)."""
        return RunInfo.from_json(self.read_run_info(), where=f"{self.location}/run.json")

    def read_manifest(self) -> list[dict[str, Any]]:
        """The shards of the run, in order (written once: read once per store object)."""
        if self._manifest_cache is not None:
            return list(self._manifest_cache)
        data = self._read_bytes("manifest.parquet")
        if data is None:
            raise StoreError(
                f"run {self.run_id} in {self.url} has no manifest.parquet (its creation was "
                "interrupted: run the same command again to complete it)"
            )
        rows: list[dict[str, Any]] = _parquet_table(data).to_pylist()
        self._manifest_cache = rows
        return list(rows)

    def write_meta(self, name: str, obj: Any) -> None:
        """Write (overwrite) ``meta/<name>.json``."""
        self._write_bytes(f"meta/{name}.json", json.dumps(obj, indent=2, default=str).encode())

    def read_meta(self, name: str) -> Any | None:
        """Read ``meta/<name>.json`` or None."""
        return self._read_json(f"meta/{name}.json")

    def read_jobs(self) -> JobsDoc:
        """``meta/jobs.json``: the managed jobs launched for the run (empty when none)."""
        return JobsDoc.from_json(self.read_meta("jobs"), where=f"{self.location}/meta/jobs.json")

    def write_jobs(self, doc: JobsDoc) -> None:
        """Write ``meta/jobs.json``."""
        self.write_meta("jobs", doc.to_json())

    def clear_meta(self, name: str) -> None:
        """Remove ``meta/<name>.json`` if it exists."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(f"meta/{name}.json"))

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

    # ------------------------------------------------------------------ outputs and commit

    def write_output(self, lease: Lease, table: pa.Table) -> OutputFile:
        """Write one attempt's results as Parquet; returns path, size and checksum."""
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        data = buf.getvalue()
        rel = f"out/{lease.shard_id}.{lease.attempt_id}.parquet"
        self._write_bytes(rel, data, durable=True)
        return OutputFile(rel, len(data), hashlib.sha256(data).hexdigest())

    def write_dead(self, lease: Lease, rows: list[dict[str, Any]]) -> OutputFile | None:
        """Write one attempt's dead rows as JSONL (None when there are none)."""
        if not rows:
            return None
        data = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode()
        rel = f"dead/{lease.shard_id}.{lease.attempt_id}.jsonl"
        self._write_bytes(rel, data, durable=True)
        return OutputFile(rel, len(data), hashlib.sha256(data).hexdigest())

    def verify(self, out: OutputFile) -> None:
        """Check that a file exists with the size and checksum written; raise otherwise."""
        data = self._read_bytes(out.path)
        if data is None:
            raise StoreError(f"{self.location}/{out.path}: output vanished before commit")
        if len(data) != out.size or hashlib.sha256(data).hexdigest() != out.sha256:
            raise StoreError(
                f"{self.location}/{out.path}: output does not match what was written "
                f"({len(data)} bytes, expected {out.size})"
            )

    def commit(self, marker: DoneMarker) -> bool:
        """Create the shard's done marker exclusively; True if this attempt's outputs count.

        An unclear outcome (a timeout, a conflict) is settled by reading the marker back:
        if it names this attempt, the commit happened.
        """
        rel = f"done/{marker.shard_id}.json"
        unclear: Exception | None = None
        existing: DoneMarker | None = None
        try:
            self._create_exclusive(rel, marker.to_json())
            won = True
        except FileExistsError:
            won = False
        except (OSError, StoreUnavailable) as e:  # the retries gave up: settle it by reading
            won, unclear = False, e
        if not won:
            try:
                existing = self.read_marker(marker.shard_id)
            except OSError as e:
                raise StoreError(
                    f"{self.location}/{rel}: commit outcome unknown ({unclear or e}); the "
                    "shard will be retried and the marker will settle it"
                ) from e
            if existing is None and self.local and isinstance(unclear, StoreUnavailable):
                raise unclear  # a full or read-only disk: nothing landed, nothing will
            if existing is None and unclear is not None:
                raise StoreError(
                    f"{self.location}/{rel}: commit failed ({unclear}); the shard stays "
                    "pending and will be retried"
                ) from unclear
            won = existing is not None and _same_attempt(existing, marker)
        if won:
            self._marker_cache[marker.shard_id] = marker
            with contextlib.suppress(OSError):
                self.fs.rm_file(self.path(f"claims/{marker.shard_id}.json"))
        else:
            # This attempt lost the race: its files will never be read; tidy them away
            # (never a file the winning marker names).
            keep = {existing.out_file, existing.dead_file} if existing else set()
            for rel_out in (marker.out_file, marker.dead_file):
                if rel_out and rel_out not in keep:
                    with contextlib.suppress(OSError):
                        self.fs.rm_file(self.path(rel_out))
        return won

    def is_done(self, shard_id: str) -> bool:
        """True when the shard's commit marker exists."""
        if shard_id in self._marker_cache:
            return True
        if self.local:
            return self._exists(f"done/{shard_id}.json")
        # On an object store a GET answers in one round trip (exists() needs HEAD + LIST
        # for a missing key) and caches the marker for later reads.
        return self.read_marker(shard_id) is not None

    def read_marker(self, shard_id: str) -> DoneMarker | None:
        """The shard's commit marker, or None if it is not done."""
        if shard_id in self._marker_cache:
            return self._marker_cache[shard_id]
        data = self._read_bytes(f"done/{shard_id}.json")
        if data is None:
            return None
        marker = DoneMarker.from_json(data, where=f"{self.location}/done/{shard_id}.json")
        self._marker_cache[shard_id] = marker
        return marker

    def done_shards(self) -> list[str]:
        """Ids of the committed shards (from the listing of ``done/``)."""
        return [n[: -len(".json")] for n in self._listdir("done") if n.endswith(".json")]

    def markers(self) -> dict[str, DoneMarker]:
        """Every commit marker, by shard id (markers are immutable, so they are cached)."""
        shard_ids = self.done_shards()
        missing = [f"done/{s}.json" for s in shard_ids if s not in self._marker_cache]
        for rel, data in self._read_many(missing).items():
            shard_id = rel[len("done/") : -len(".json")]
            self._marker_cache[shard_id] = DoneMarker.from_json(
                data, where=f"{self.location}/{rel}"
            )
        return {s: self._marker_cache[s] for s in shard_ids if s in self._marker_cache}

    def claims(self) -> dict[str, Claim]:
        """Every claim, by shard id."""
        docs = self._read_json_many("claims")
        return {
            name: Claim.from_json(name, doc, where=f"{self.location}/claims/{name}.json")
            for name, doc in docs.items()
            if isinstance(doc, dict)
        }

    def read_output(self, marker: DoneMarker) -> pa.Table:
        """The committed results of one shard, checked against its marker (exit 3 if bad)."""
        data = self._read_bytes(marker.out_file)
        raise_problems(self, [p for p in [check_bytes(marker, "out", data)] if p], doing="read")
        assert data is not None
        return _parquet_table(data)

    def read_dead(self, marker: DoneMarker) -> list[dict[str, Any]]:
        """The dead rows of one committed shard, checked against its marker (exit 3 if bad).

        A missing dead-row file is an error, never "no dead rows": the marker says how
        many there are.
        """
        if not marker.dead_file:
            return []
        data = self._read_bytes(marker.dead_file)
        raise_problems(self, [p for p in [check_bytes(marker, "dead", data)] if p], doing="read")
        assert data is not None
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

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
