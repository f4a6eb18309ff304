"""The run store's filesystem layer: fsspec resolution and raw, safe I/O.

:class:`StoreIO` holds what every store operation is built from: reads that never trust
fsspec's cached listings (other processes write here all the time), atomic overwrites
(rename locally; object PUTs are atomic), exclusive creates (a hard link locally,
``If-None-Match`` on S3), bulk reads, and listings.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fsspec

from scheduler.errors import StoreError, StoreUnavailable
from scheduler.store._retry import retry_call, transient_reason

__all__ = ["StoreIO", "open_store_root"]

T = TypeVar("T")


def open_store_root(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Resolve a store URL (local path, s3://, gs://, memory://) to (filesystem, root)."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as e:
        proto = url.split("://", 1)[0]
        extra = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}.get(proto, proto)
        raise StoreError(
            f"store {url}: support for {proto}:// is not installed "
            f"(pip install 'skybatch[{extra}]')"
        ) from e
    except (ValueError, OSError) as e:
        raise StoreError(f"store {url}: cannot open ({e})") from e
    return fs, root.rstrip("/")


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _fuse_mount_type(path: str) -> str | None:
    """The filesystem type if ``path`` sits on a FUSE mount (gcsfuse, s3fs-fuse, mountpoint)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    real = os.path.realpath(path)
    for line in mounts:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) <= len(best):
            continue
        if real == parts[1] or real.startswith(parts[1].rstrip("/") + "/"):
            best, best_type = parts[1], parts[2]
    if best_type and best_type.startswith("fuse") and best_type not in ("fuseblk",):
        return best_type
    return None


def _fsync_dir(folder: str) -> None:
    """Make a folder's entries (a rename into it) durable; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StoreIO:
    """Raw I/O under one folder (``root``) of a filesystem."""

    url: str
    run_id: str
    fs: fsspec.AbstractFileSystem
    root: str
    local: bool

    # ------------------------------------------------------------------ paths and raw I/O

    def path(self, *parts: str) -> str:
        """Absolute path (in the filesystem's terms) of a file of this run."""
        return "/".join([self.root, *parts])

    @property
    def location(self) -> str:
        """Where the run lives, as a user would type it."""
        return f"{self.url}/{self.run_id}"

    def _forget(self, full: str) -> None:
        """Drop what the filesystem cached about ``full`` and its folders.

        s3fs/gcsfs answer ``exists``/``info``/``open`` from cached listings: once this
        process has listed ``done/``, a marker another worker created afterwards reads as
        missing. Other processes write here all the time, so nothing is taken from a cache.
        """
        if not self.local:
            self.fs.invalidate_cache(full)

    def _remote(self, what: str, fn: Callable[[], T]) -> T:
        """An object-store call, with transient errors retried (``_retry.py``)."""
        return retry_call(self.url, what, fn)

    def _exists(self, rel: str) -> bool:
        full = self.path(rel)
        if self.local:
            return bool(self.fs.exists(full))
        self._forget(full)
        return bool(self._remote(f"checking {rel}", lambda: self.fs.exists(full)))

    def _read_bytes(self, rel: str) -> bytes | None:
        full = self.path(rel)
        try:
            if self.local:
                with open(full, "rb") as f:
                    return f.read()
            return self._remote(f"reading {rel}", lambda: self._get(full))
        except FileNotFoundError:
            return None

    def _get(self, full: str) -> bytes:
        self._forget(full)
        try:
            # A ranged read is one GET; open() or a plain cat_file() first ask for the
            # size (HEAD, and a LIST when the object is missing): 2-3 round trips.
            data: bytes = self.fs.cat_file(full, start=0)
        except FileNotFoundError:
            raise
        except OSError as e:
            if transient_reason(e) is not None:
                raise  # retried by the caller, not mistaken for a refused range
            data = self.fs.cat_file(full)  # e.g. an empty object refuses a range
        return data

    def _read_many(self, rels: list[str]) -> dict[str, bytes]:
        """Read several files; absent ones are left out.

        On an object store the reads go out concurrently (fsspec's async ``cat``): listing
        a run of 10,000 shards one GET at a time would take minutes on every status call.
        """
        if self.local or len(rels) < 2:
            found = {rel: self._read_bytes(rel) for rel in rels}
            return {rel: data for rel, data in found.items() if data is not None}
        fulls = {self.path(rel): rel for rel in rels}
        for full in fulls:
            self._forget(full)
        got = self._remote(
            f"reading {len(fulls)} files",
            lambda: self.fs.cat(list(fulls), on_error="return", start=0),
        )
        out: dict[str, bytes] = {}
        for full, rel in fulls.items():
            data = got.get(full, got.get(self.fs.unstrip_protocol(full)))
            if isinstance(data, bytes):
                out[rel] = data
            elif not isinstance(data, FileNotFoundError):
                # Anything but "absent" (an empty object refusing the range, a transient
                # error) is read again on its own, so that real errors surface as such.
                again = self._read_bytes(rel)
                if again is not None:
                    out[rel] = again
        return out

    def _read_json_many(self, folder: str) -> dict[str, Any]:
        """Every ``<folder>/<name>.json`` parsed, by name; torn or absent files left out."""
        names = [n for n in self._listdir(folder) if n.endswith(".json")]
        out: dict[str, Any] = {}
        for rel, data in self._read_many([f"{folder}/{n}" for n in names]).items():
            with contextlib.suppress(ValueError):
                out[rel[len(folder) + 1 : -len(".json")]] = json.loads(data)
        return out

    def _read_json(self, rel: str) -> Any | None:
        data = self._read_bytes(rel)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None  # a torn write of an advisory file reads as absent

    def _write_bytes(self, rel: str, data: bytes, *, durable: bool = False) -> None:
        """Overwrite a file atomically (rename locally; object PUTs are atomic).

        ``durable`` (outputs a marker will point to) also fsyncs the file and its folder
        locally: the marker itself is fsynced, and after a power cut it must never name an
        output that the page cache had not yet written.
        """
        full = self.path(rel)
        if self.local:
            folder = os.path.dirname(full)
            tmp = f"{full}.{secrets.token_hex(4)}.tmp"
            with self._local_write(full, tmp):
                os.makedirs(folder, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    if durable:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, full)
            if durable:
                _fsync_dir(folder)
        else:
            self._remote(f"writing {rel}", lambda: self.fs.pipe_file(full, data))

    @contextlib.contextmanager
    def _local_write(self, full: str, tmp: str) -> Iterator[None]:
        """Remove ``tmp`` if the write fails; a full or read-only disk is one line naming
        the path (``StoreUnavailable``, exit 3), not an internal error."""
        try:
            yield
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if e.errno in _DISK_ERRNOS:
                why = _DISK_ERRNOS[e.errno]
                raise StoreUnavailable(
                    f"store {self.url}: cannot write {full}: {why} ({os.strerror(e.errno)}); "
                    "fix that, then run the same command again to resume"
                ) from e
            raise

    def _create_exclusive(self, rel: str, data: bytes) -> None:
        """Create a file only if it does not exist; raise FileExistsError otherwise.

        Locally the content is written to a temporary file and hard-linked into place
        (``link`` fails atomically if the name exists), so the marker is never torn.
        """
        full = self.path(rel)
        if self.local:
            tmp = f"{full}.{secrets.token_hex(4)}.tmp"
            with self._local_write(full, tmp):
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            try:
                os.link(tmp, full)
            finally:
                os.unlink(tmp)
            return

        def create() -> None:
            try:
                with self.fs.open(full, "xb") as f:
                    f.write(data)
            except FileExistsError:
                raise
            except OSError as e:
                if _precondition_failed(e):
                    raise FileExistsError(full) from e
                raise

        # A retry of a create that had landed is answered "exists": commit() settles that
        # by reading the marker back.
        self._remote(f"creating {rel}", create)

    def _listdir(self, rel: str) -> list[str]:
        full = self.path(rel)
        try:
            entries = self._remote(f"listing {rel}", lambda: self._ls(full, detail=False))
        except FileNotFoundError:
            return []
        finally:
            # ls(refresh=True) still leaves the listing in the cache, where later
            # exists()/open() calls would trust it; see _forget.
            self._forget(full)
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def _list_sizes(self, rel: str) -> dict[str, int]:
        """Names and sizes of the files in a folder, from one listing (no per-file HEAD)."""
        full = self.path(rel)
        if self.local:
            try:
                with os.scandir(full) as it:
                    return {e.name: e.stat().st_size for e in it if e.is_file()}
            except FileNotFoundError:
                return {}
        try:
            entries = self._remote(f"listing {rel}", lambda: self._ls(full, detail=True))
        except FileNotFoundError:
            return {}
        finally:
            self._forget(full)
        return {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in entries
            if e.get("type") != "directory"
        }

    def _ls(self, full: str, *, detail: bool) -> list[Any]:
        try:
            return list(self.fs.ls(full, detail=detail, refresh=True))
        except TypeError:  # filesystems without ``refresh``
            return list(self.fs.ls(full, detail=detail))

    def _move(self, rel: str, to: str) -> bool:
        """Move a file within the run (a rename locally; copy + delete on object stores).

        False when the file is not there (already moved, never written).
        """
        src, dst = self.path(rel), self.path(to)
        try:
            if self.local:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
            else:
                self._forget(src)
                self._remote(f"moving {rel}", lambda: self.fs.mv(src, dst))
        except FileNotFoundError:
            return False
        finally:
            self._forget(src)
            self._forget(dst)
        return True


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def _precondition_failed(e: OSError) -> bool:
    """Whether an object store refused a conditional create because the object exists.

    Current s3fs and gcsfs already raise ``FileExistsError`` for that; an older s3fs
    raises a plain ``OSError`` whose cause is botocore's error, with the HTTP status. The
    status is read from that structure, never from the message (which holds the key, and
    a key may contain "412").
    """
    response = getattr(e.__cause__, "response", None)
    if not isinstance(response, dict):
        return False
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code == "PreconditionFailed" or status == 412
