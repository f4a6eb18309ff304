"""The read cache: what a new process reads from the DuckDB file, without DuckDB.

A ``skybatch plan`` reads a handful of small tables (offerings, GPU specs, throughput
figures, run-history totals, model configs) through :func:`pricing._db.cached`. Importing
DuckDB and opening the file would cost a new process more than its whole plan, so every
value ``cached`` loads is also kept in ``$SKYBATCH_HOME/skybatch.duckdb.readcache``, keyed
by the state of the database file. A process whose key matches answers from it and never
imports DuckDB; any other key is a miss: the tables are read from DuckDB and the cache
written again.

The key is the file's identity and state (path, inode, size, mtime, ctime, and the same
of its WAL), the schema version and the pricing code's own files (a value's shape
follows the code that loads it). It never serves a stale answer:

* every write through :mod:`pricing` (:func:`~pricing._db.connect`, a migration) deletes
  the cache when it starts and when it ends;
* a write by anything else changes the file's mtime, ctime or size, hence the key;
* the cache is only written for a file state last modified :data:`RACY_S` ago or more
  (as git treats its index), so that a later write cannot land in the same
  timestamp tick (a few ms; 2 s on some filesystems) with the same size and go unseen;
* and only when the key did not change while the value was read.

It is a pickle, so it is written only by this user (mode 0600) and read only when this
user owns it; anything unreadable is a miss.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time
from functools import lru_cache
from pathlib import Path

__all__ = ["MISSING", "RACY_S", "cache_path", "forget", "get", "key_of", "put"]

SUFFIX = ".readcache"
# Bump when the layout of the file itself changes (a value's shape is keyed by the code).
FORMAT = 1
# A file state younger than this is not cached (see the module docstring).
RACY_S = 2.0
MISSING = object()
_Key = tuple[object, ...]
# Per database path: the key of the cache file as last read or written here, and its
# values (None when that key was not current, so the values were never unpickled).
_loaded: dict[str, tuple[_Key, dict[str, object] | None]] = {}


def cache_path(db: Path) -> Path:
    """Where the read cache of database file ``db`` lives."""
    return db.with_name(db.name + SUFFIX)


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@lru_cache(maxsize=1)
def _code_key() -> tuple[tuple[str, int, int], ...]:
    """The pricing package's source and shipped data files: a new version, or an edit, is
    a new key (new shipped reference rows reach the file only when DuckDB is opened)."""
    here = Path(__file__).parent
    files = []
    for folder, ending in ((here, ".py"), (here / "data", ".csv")):
        with os.scandir(folder) as entries:
            files += [
                (f"{folder.name}/{e.name}", e.stat()) for e in entries if e.name.endswith(ending)
            ]
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in files))


def _young(db: Path) -> bool:
    """Whether the file or its WAL was modified within :data:`RACY_S`: a write in the
    same timestamp tick could then leave the key as it is. (A write always sets the
    mtime to now, so an older mtime cannot come back; the ctime may be recent.)"""
    limit = time.time_ns() - int(RACY_S * 1e9)
    for path in (db, db.with_name(db.name + ".wal")):
        st = _stat(path)
        if st is not None and st[2] > limit:
            return True
    return False


def key_of(db: Path, schema: int) -> _Key:
    """The key of the database file's current state."""
    wal = db.with_name(db.name + ".wal")
    return (FORMAT, schema, _code_key(), str(db), _stat(db), _stat(wal))


def _read_file(db: Path, key: _Key) -> tuple[_Key, dict[str, object] | None] | None:
    """The cache file's key, and its values when that key is ``key``; None if unreadable."""
    try:
        with open(cache_path(db), "rb") as f:
            if hasattr(os, "getuid") and os.fstat(f.fileno()).st_uid != os.getuid():
                return None  # not written by this user: never unpickle it
            stored = pickle.load(f)
            if stored != key:
                return (stored, None)
            values = pickle.load(f)
    except Exception:  # missing, truncated, or written by other code: only a miss
        return None
    return (key, values) if isinstance(values, dict) else None


def get(db: Path, name: str, schema: int) -> object:
    """The cached value of ``name`` for the file's current state, or :data:`MISSING`."""
    key = key_of(db, schema)
    state = _loaded.get(str(db))
    if state is None or state[0] != key:
        state = _read_file(db, key)
        if state is None:
            _loaded.pop(str(db), None)
            return MISSING
        _loaded[str(db)] = state
    values = state[1]
    if values is None or state[0] != key:
        return MISSING
    return values.get(name, MISSING)


def put(db: Path, name: str, value: object, key: _Key, schema: int) -> None:
    """Remember ``value`` of ``name``, read from the file while its key was ``key``."""
    if key_of(db, schema) != key or _young(db):
        return  # written meanwhile (the value may be of either state), or racily recent
    state = _loaded.get(str(db))
    values = dict(state[1]) if state is not None and state[0] == key and state[1] else {}
    values[name] = value
    target = cache_path(db)
    # Per process and thread: the TUI reads from several threads at once.
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(key, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(values, f, protocol=pickle.HIGHEST_PROTOCOL)
        if key_of(db, schema) != key:  # a writer came in while we wrote: keep nothing
            tmp.unlink()
            return
        os.replace(tmp, target)
    except Exception:  # a read-only home, a value that does not pickle: no cache, no harm
        tmp.unlink(missing_ok=True)
        return
    _loaded[str(db)] = (key, values)


def forget(db: Path) -> None:
    """Drop the cache of ``db`` (before and after every write through pricing)."""
    _loaded.pop(str(db), None)
    # A read-only home never had a cache written either.
    with contextlib.suppress(OSError):
        cache_path(db).unlink(missing_ok=True)
