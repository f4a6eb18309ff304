"""Committed files checked against their commit markers: the checks of verified reads.

A marker records the size and sha256 of the output (and dead-row) file it names, the row
counts and a digest of the row ids. Readers never serve a file that disagrees with it:

* :func:`check_bytes`: a file's bytes against the marker (size, sha256, row count); used by
  every read that has the bytes in hand (``read_output``, ``read_dead``, exports);
* :func:`check_sizes`: every committed file's size, from one listing of ``out/`` and
  ``dead/``: what resume checks when it does not read the bytes itself;
* :func:`check_committed`: sizes, then (``content``) every byte, handing each verified
  output's bytes to the caller: ``results`` queries those, never a second download;
* ``_repair.verify_run`` and ``quarantine`` build ``skybatch verify [--repair]`` on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import StoreError
from scheduler.store._fs import StoreIO
from scheduler.store._types import DoneMarker

__all__ = ["Problem", "check_bytes", "check_committed", "check_sizes", "raise_problems"]


@dataclass(frozen=True)
class Problem:
    """One committed file that disagrees with its marker."""

    shard_id: str
    file: str
    what: str

    def __str__(self) -> str:
        return f"shard {self.shard_id}: {self.file}: {self.what}"

    def to_json(self) -> dict[str, str]:
        return {"shard": self.shard_id, "file": self.file, "what": self.what}


def _parquet_rows(data: bytes) -> int:
    return int(pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows)


def check_bytes(marker: DoneMarker, which: str, data: bytes | None) -> Problem | None:
    """The first way ``data`` (the ``out`` or ``dead`` file of a marker) disagrees, or None."""
    size: int | None
    sha: str | None
    if which == "out":
        rel, size, sha, rows = marker.out_file, marker.out_size, marker.out_sha256, marker.rows_out
    else:
        rel, size, sha = marker.dead_file or "", marker.dead_size, marker.dead_sha256
        rows = marker.rows_dead
    if data is None:
        return Problem(marker.shard_id, rel, "missing")
    if size is not None and len(data) != size:
        return Problem(marker.shard_id, rel, f"size {len(data)} bytes, marker says {size}")
    if sha is not None and hashlib.sha256(data).hexdigest() != sha:
        return Problem(marker.shard_id, rel, "content differs from the marker's sha256")
    try:
        got = _parquet_rows(data) if which == "out" else _dead_lines(data)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
        return Problem(marker.shard_id, rel, f"unreadable ({str(e).splitlines()[0][:200]})")
    if got != rows:
        return Problem(marker.shard_id, rel, f"{got} rows, marker says {rows}")
    return None


def _dead_lines(data: bytes) -> int:
    return sum(1 for line in data.decode().splitlines() if line.strip())


def check_sizes(store: StoreIO, markers: Iterable[DoneMarker]) -> list[Problem]:
    """Every file the markers name, present with the recorded size (two listings)."""
    sizes = {
        **{f"out/{n}": s for n, s in store._list_sizes("out").items()},
        **{f"dead/{n}": s for n, s in store._list_sizes("dead").items()},
    }
    problems = []
    for m in markers:
        for rel, want in ((m.out_file, m.out_size), (m.dead_file, m.dead_size)):
            if not rel:
                continue
            got = sizes.get(rel)
            if got is None:
                problems.append(Problem(m.shard_id, rel, "missing"))
            elif want is not None and got != want:
                problems.append(Problem(m.shard_id, rel, f"size {got} bytes, marker says {want}"))
    return problems


def check_committed(
    store: StoreIO,
    markers: Iterable[DoneMarker],
    *,
    content: bool = False,
    keep: Callable[[DoneMarker, bytes], None] | None = None,
) -> list[Problem]:
    """Committed files against their markers, as cheaply as the caller's read allows.

    Always the sizes (one listing); with ``content`` (a caller about to read every byte,
    an export) the sha256 and row counts too; otherwise, on a local store, the row count
    in each Parquet footer (a few KB per file). ``keep`` is handed the bytes of each output
    file that passed, so a caller reads what was verified instead of downloading it again
    (one GET per file on an object store).
    """
    markers = list(markers)
    problems = check_sizes(store, markers)
    if problems:
        return problems
    if content:
        for i in range(0, len(markers), _BATCH):
            problems += _check_contents(store, markers[i : i + _BATCH], keep)
        return problems
    for m in markers:
        if store.local:
            try:
                rows = int(pq.read_metadata(store.path(m.out_file)).num_rows)
            except (pa.ArrowException, OSError) as e:
                problems.append(Problem(m.shard_id, m.out_file, f"unreadable ({e})"))
                continue
            if rows != m.rows_out:
                problems.append(
                    Problem(m.shard_id, m.out_file, f"{rows} rows, marker says {m.rows_out}")
                )
    return problems


#: Markers whose files are fetched at once (concurrently on an object store): enough to
#: hide the round trips, few enough that their bytes fit in memory together.
_BATCH = 8


def _check_contents(
    store: StoreIO,
    markers: list[DoneMarker],
    keep: Callable[[DoneMarker, bytes], None] | None,
) -> list[Problem]:
    """Read the out and dead files of ``markers`` (one read each) and check their bytes."""
    rels = [rel for m in markers for rel in (m.out_file, m.dead_file) if rel]
    found = store._read_many(rels)
    problems = []
    for m in markers:
        for which, rel in (("out", m.out_file), ("dead", m.dead_file)):
            if not rel:
                continue
            data = found.get(rel)
            problem = check_bytes(m, which, data)
            if problem is not None:
                problems.append(problem)
            elif which == "out" and keep is not None and data is not None:
                keep(m, data)
    return problems


def raise_problems(store: StoreIO, problems: list[Problem], *, doing: str) -> None:
    """Raise one ``StoreError`` (exit 3) naming the bad shards, if there are any."""
    if not problems:
        return
    shown = "; ".join(str(p) for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise StoreError(
        f"{doing} {store.location}: {len(problems)} committed file(s) do not match their "
        f"commit markers: {shown}{more}; run `skybatch verify {store.run_id} --store "
        f"{store.url} --repair`, then resume to redo those shards"
    )
