"""A shard's outputs and its commit: write, verify, create the done marker, read back.

:class:`ShardCommits` is the part of :class:`~scheduler.store.RunStore` that makes a
shard's results count exactly once: the done marker is created exclusively, so the first
commit wins and every losing attempt tidies its own files away (see ``README.md``).
Committed outputs are read back checked against their marker.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import StoreError, StoreUnavailable
from scheduler.store._fs import StoreIO
from scheduler.store._types import DoneMarker, Lease, OutputFile
from scheduler.store._verify import check_bytes, raise_problems

__all__ = ["ShardCommits"]


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


class ShardCommits(StoreIO):
    """Outputs, dead rows, verification, the exclusive commit and the committed markers."""

    _marker_cache: dict[str, DoneMarker]

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
