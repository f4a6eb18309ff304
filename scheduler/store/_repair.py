"""``skybatch verify [--repair]``: every committed shard checked, bad ones quarantined.

:func:`verify_run` checks what the verified reads check (``_verify``) plus each shard's
ids digest and the manifest's row counts; :func:`quarantine` moves bad markers (and the
files they name) to ``quarantine/``, so the shards are pending again and a resume redoes
them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import StoreError
from scheduler.store._store import RunStore
from scheduler.store._types import DoneMarker, digest_ids
from scheduler.store._verify import Problem, check_bytes

__all__ = ["VerifyReport", "clean_orphans", "quarantine", "verify_run"]


@dataclass
class VerifyReport:
    """What :func:`verify_run` found (and :func:`quarantine` moved)."""

    run_id: str
    store: str
    shards_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "store": self.store,
            "shards_checked": self.shards_checked,
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "quarantined": self.quarantined,
        }


def _ids(store: RunStore, marker: DoneMarker, out: bytes, dead: bytes | None) -> list[str]:
    id_column = store.run_info().id_column
    table = pq.ParquetFile(pa.BufferReader(out)).read(columns=[id_column], use_threads=False)
    ids = [str(i) for i in table.column(id_column).to_pylist()]
    for line in (dead or b"").decode().splitlines():
        if line.strip():
            ids.append(str(json.loads(line)["id"]))
    return ids


def verify_run(store: RunStore) -> VerifyReport:
    """Check every committed shard: files, sizes, sha256, row counts, ids digests, manifest."""
    report = VerifyReport(store.run_id, store.url)
    manifest = {str(s["shard_id"]): int(s["row_count"]) for s in store.read_manifest()}
    for shard_id in sorted(store.done_shards()):
        report.shards_checked += 1
        try:
            marker = store.read_marker(shard_id)
        except StoreError as e:
            report.problems.append(Problem(shard_id, f"done/{shard_id}.json", str(e)))
            continue
        if marker is None:
            continue  # moved away between the listing and the read
        if shard_id not in manifest:
            report.problems.append(Problem(shard_id, f"done/{shard_id}.json", "not in manifest"))
            continue
        if marker.rows_in != manifest[shard_id] or marker.rows_in != (
            marker.rows_out + marker.rows_dead
        ):
            report.problems.append(
                Problem(
                    shard_id,
                    f"done/{shard_id}.json",
                    f"rows in {marker.rows_in} != out {marker.rows_out} + dead "
                    f"{marker.rows_dead} (manifest {manifest[shard_id]})",
                )
            )
            continue
        out = store._read_bytes(marker.out_file)
        dead = store._read_bytes(marker.dead_file) if marker.dead_file else None
        bad = check_bytes(marker, "out", out) or (
            check_bytes(marker, "dead", dead) if marker.dead_file else None
        )
        if bad is None and out is not None:
            try:
                digest = digest_ids(_ids(store, marker, out, dead))
            except (pa.ArrowException, ValueError, KeyError, TypeError) as e:
                bad = Problem(shard_id, marker.out_file, f"ids unreadable ({e})")
            else:
                if digest != marker.ids_digest:
                    bad = Problem(shard_id, marker.out_file, "row ids differ from the marker")
        if bad is not None:
            report.problems.append(bad)
    return report


def quarantine(store: RunStore, report: VerifyReport) -> None:
    """Move each bad shard's marker and files to ``quarantine/``: the shard is pending again.

    The marker goes first (it alone makes a shard done); the files it named follow, kept
    for inspection. Names carry a timestamp, so repairing twice never overwrites evidence.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for shard_id in sorted({p.shard_id for p in report.problems}):
        marker = store.read_marker(shard_id)
        if not store._move(f"done/{shard_id}.json", f"quarantine/{shard_id}.{stamp}.json"):
            continue
        store._marker_cache.pop(shard_id, None)
        for rel in (marker.out_file, marker.dead_file) if marker else ():
            if rel:
                store._move(rel, f"quarantine/{rel.replace('/', '-')}.{stamp}")
        why = "; ".join(p.what for p in report.problems if p.shard_id == shard_id)
        store.log_event(
            "shard_quarantined",
            f"shard {shard_id}: {why}; its marker moved to quarantine/, the shard is pending",
            shard=shard_id,
        )
        report.quarantined.append(shard_id)


#: A temporary file older than this was left by a process that died mid-write.
_STALE_TMP_S = 600.0


def clean_orphans(store: RunStore, *, now: float | None = None) -> int:
    """Remove output and dead-row files no commit can ever name; returns how many.

    That is a file of a shard that is done under another attempt (the commit race was
    settled), or of an attempt whose lease was released (it will not commit), plus
    temporary files a killed process left behind (locally, older than 10 minutes). A
    file of an attempt that may still commit (a live or expired lease: its holder may be
    a zombie about to commit) is kept; it is removed once its shard is done.
    """
    markers = store.markers()
    claims = store.claims()
    named = {f for m in markers.values() for f in (m.out_file, m.dead_file) if f}
    now = time.time() if now is None else now
    removed = 0
    for folder in ("out", "dead"):
        for name in store._listdir(folder):
            rel = f"{folder}/{name}"
            if rel in named:
                continue
            if name.endswith(".tmp"):
                stale = store.local and now - _mtime(store.path(rel), now) > _STALE_TMP_S
                if stale and _remove(store, rel):
                    removed += 1
                continue
            shard_id, _, rest = name.partition(".")
            token = rest.split(".", 1)[0].partition("-")[2]
            claim = claims.get(shard_id)
            released = claim is not None and claim.token == token and claim.released
            if (shard_id in markers or released) and _remove(store, rel):
                removed += 1
    if removed:
        store.log_event("orphans_removed", f"{removed} orphaned output file(s) removed")
    return removed


def _mtime(path: str, default: float) -> float:
    import os

    try:
        return os.stat(path).st_mtime
    except OSError:
        return default


def _remove(store: RunStore, rel: str) -> bool:
    try:
        store.fs.rm_file(store.path(rel))
    except FileNotFoundError:
        return False
    return True
