"""The skybatch DuckDB file: where it lives, its schema, and short-lived connections.

One file, ``$SKYBATCH_HOME/skybatch.duckdb`` (``SKYBATCH_HOME`` defaults to
``~/.skybatch``; see :mod:`scheduler.settings`), holds offerings, GPU specs, throughput figures, run history and the
launcher's job table. The schema is built by numbered migrations
(:data:`pricing._schema.MIGRATIONS`), applied in order and recorded in ``schema_version``;
a migration is never edited once shipped, a new one is appended.

DuckDB lets one process at a time hold a file open for writing (and readers in other
processes are refused while it does). So every connection here is short-lived (open, do
the work, close) and opening retries with backoff while another process holds the lock:
the TUI, a ``plan`` and a finishing run can share the file without ever failing on a
lock. ``SKYBATCH_DB_LOCK_TIMEOUT_S`` (default 30) bounds the wait.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from pricing import _readcache, _shipped
from pricing._schema import MIGRATIONS
from scheduler.errors import StoreError
from scheduler.settings import load_settings, skybatch_home

if TYPE_CHECKING:
    import duckdb

__all__ = ["MIGRATIONS", "bulk_insert", "connect", "db_path", "session", "skybatch_home"]

DB_FILENAME = "skybatch.duckdb"

# Messages DuckDB gives while another process (or thread) holds the file; the last two
# come from a race in its per-process instance cache when threads open it at once.
_LOCK_MARKERS = (
    "lock",
    "conflicting",
    "being used by another process",
    "unique file handle conflict",
    "already attached",
)
# Paths whose schema is known to be current in this process: skip the migration check.
_ready: set[str] = set()
Seeder = Callable[["duckdb.DuckDBPyConnection"], None]
_seeders: list[Seeder] = []
# Writes made through this process (a stat may not see a change within its resolution).
_generation = 0
_cache: dict[str, tuple[tuple[object, ...], object]] = {}
_db_paths: dict[tuple[str | None, ...], Path] = {}
T = TypeVar("T")


def db_path() -> Path:
    """Where the DuckDB file lives."""
    # Memoised on what skybatch_home() reads: a plan asks this hundreds of times.
    key = tuple(os.environ.get(v) for v in ("SKYBATCH_HOME", "HOME", "USERPROFILE"))
    path = _db_paths.get(key)
    if path is None:
        path = _db_paths[key] = skybatch_home() / DB_FILENAME
    return path


def register_seeder(seed: Seeder) -> None:
    """Run ``seed(con)`` inside the migration transaction of a fresh database."""
    if seed not in _seeders:
        _seeders.append(seed)


def _lock_timeout_s() -> float:
    return load_settings().db_lock_timeout_s


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return any(marker in msg for marker in _LOCK_MARKERS)


def _open(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying with jittered backoff while another process holds it."""
    import duckdb

    deadline = time.monotonic() + _lock_timeout_s()
    delay_s = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as e:
            busy = _is_lock_error(e)
            if "different configuration" in str(e):
                if read_only:
                    # This process already holds the file read-write: share that instance.
                    read_only = False
                    continue
                busy = True  # another thread here holds it read-only: wait until it closes
            if not busy or time.monotonic() >= deadline:
                if busy:
                    raise StoreError(
                        f"pricing database {path} stayed locked by another process for "
                        f"{_lock_timeout_s():.0f} s; retry when it finishes "
                        "(or raise SKYBATCH_DB_LOCK_TIMEOUT_S)"
                    ) from e
                raise StoreError(f"cannot open pricing database {path}: {e}") from e
            # Jitter keeps two waiting processes from retrying in lockstep.
            time.sleep(delay_s * (0.5 + random.random()))
            delay_s = min(delay_s * 1.6, 0.5)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    pending = [(v, sql) for v, sql in MIGRATIONS if v > current]
    if not pending and not _shipped.stale(con):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for version, sql in pending:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        if current == 0:
            for seed in _seeders:
                seed(con)
            _shipped.record_current(con)
        else:
            _shipped.resync(con)  # an upgrade's reference rows replace the older ones
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _ensure_ready(path: Path) -> None:
    key = str(path)
    if key in _ready:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _readcache.forget(path)
    con = _open(path, read_only=False)
    try:
        _migrate(con)
    finally:
        con.close()
        _readcache.forget(path)
    _ready.add(key)


def _schema_is_current(con: duckdb.DuckDBPyConnection) -> bool:
    import duckdb

    try:
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    except duckdb.CatalogException:
        return False  # created by someone else and not migrated yet
    return row is not None and row[0] == MIGRATIONS[-1][0] and not _shipped.stale(con)


def _open_ready(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the migrated, seeded file.

    A file already at the current schema is opened once (a new process's ``plan`` would
    otherwise pay a read-write open just to learn nothing needs migrating, then its
    read-only one); anything else is migrated first.
    """
    key = str(path)
    if not path.exists():
        _ready.discard(key)
    elif key not in _ready:
        con = _open(path, read_only=read_only)
        if _schema_is_current(con):
            _ready.add(key)
            return con
        con.close()
    _ensure_ready(path)
    return _open(path, read_only=read_only)


class _Session:
    """The read-only connection of a :func:`session`, opened by its first read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = _open_ready(self.path, read_only=True)
        return self.con

    def release(self) -> None:
        """Close the connection (the next read opens another)."""
        if self.con is not None:
            self.con.close()
            self.con = None


# The session of the reads inside ``with session():`` (see there).
_session: ContextVar[_Session | None] = ContextVar("pricing_session", default=None)


@contextmanager
def session() -> Iterator[None]:
    """Share one read-only connection among the reads inside the block.

    Opening the file costs tens of milliseconds; a plan asks dozens of questions (one per
    GPU type and cloud), so the planner wraps them in one session. The connection opens at
    the first read that needs the file, so a block answered from memory or from the read
    cache (:mod:`pricing._readcache`) never imports DuckDB. Read-only connections do not
    block readers in other processes; keep the block short all the same. Writes inside
    the block close its connection first (DuckDB refuses a read-write connection
    to a file this process holds read-only); the next read opens another.
    """
    if _session.get() is not None:
        yield
        return
    held = _Session(db_path())
    token = _session.set(held)
    try:
        yield
    finally:
        _session.reset(token)
        held.release()


def db_signature() -> tuple[object, ...]:
    """Changes with every write to the database file (this process's or another's)."""
    return _signature(db_path())


def _signature(path: Path) -> tuple[object, ...]:
    # os.stat on strings: a plan asks this hundreds of times (see cached()).
    name = str(path)
    sig: list[object] = [name, _generation]
    for p in (name, name + ".wal"):
        try:
            st = os.stat(p)
            sig += [st.st_mtime_ns, st.st_size]
        except OSError:
            sig += [0, 0]
    return tuple(sig)


def cached(name: str, load: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """``load(con)`` once per state of the database file, then from memory.

    Opening the file costs tens of milliseconds; a planner asks the same tables many
    times. Any write (this process or another) changes the file's or its WAL's size or
    mtime, which starts a fresh load. A new process first looks in the read cache
    (:mod:`pricing._readcache`), which keeps every such value for the file's current
    state, and opens the file (importing DuckDB) only when the value is not there.
    """
    path = db_path()
    sig = _signature(path)
    if sig[2:4] == (0, 0) and not path.exists():
        # Create it first, so that the signature below is the seeded file's.
        _ready.discard(str(path))
        _ensure_ready(path)
        sig = _signature(path)
    hit = _cache.get(name)
    if hit is not None and hit[0] == sig:
        return cast(T, hit[1])
    schema = MIGRATIONS[-1][0]
    value = _readcache.get(path, name, schema)
    if value is _readcache.MISSING:
        key = _readcache.key_of(path, schema)  # the state before loading: see put()
        with connect(read_only=True) as con:
            value = load(con)
        _readcache.put(path, name, value, key, schema)
    _cache[name] = (sig, value)  # the state before loading: a write meanwhile reloads
    return cast(T, value)


@contextmanager
def connect(*, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to the migrated, seeded database; closed on exit.

    Use one ``with connect() as con:`` per unit of work and keep it short: while it is
    open, other processes wait (up to ``SKYBATCH_DB_LOCK_TIMEOUT_S``). Inside
    :func:`session`, read-only requests share the session's connection.
    """
    path = db_path()
    held = _session.get()
    if read_only and held is not None and held.path == path:
        yield held.connection()
        return
    if not read_only:
        _readcache.forget(path)
        if held is not None and held.path == path:
            held.release()  # DuckDB refuses a read-write open while this one is held
    con = _open_ready(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
        if not read_only:
            global _generation
            _generation += 1
            _readcache.forget(path)


def bulk_insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> None:
    """Insert ``rows`` into ``table`` in one statement: one list parameter per column.

    The lists are cast to the columns' own types and unnested side by side. Seeding a
    fresh database this way takes milliseconds where a statement per row (or
    ``executemany``) takes most of a second, and it needs no pyarrow import.
    """
    if not rows:
        return
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = ? AND schema_name = current_schema()",
            [table],
        ).fetchall()
    )
    select = ", ".join(f"unnest(?::{types[c]}[])" for c in columns)
    values = [list(col) for col in zip(*rows, strict=True)]
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}", values)
