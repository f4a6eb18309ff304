"""Creating a run and reading what it was created from: run.json, the manifest, meta/.

:class:`RunCreation` is the part of :class:`~scheduler.store.RunStore` the driver uses
first: :meth:`RunCreation.ensure` creates the run (run.json exclusively, then the
manifest) or checks that an existing run matches before it is resumed, and
:meth:`RunCreation.check_conformance` refuses a store that cannot create exclusively.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import ResumeRefused, StoreError
from scheduler.store._commits import _parquet_table
from scheduler.store._documents import JobsDoc, RunInfo
from scheduler.store._fs import StoreIO, _fuse_mount_type
from scheduler.store._types import utcnow

__all__ = ["RunCreation"]


class RunCreation(StoreIO):
    """Creation, resume checks, run.json, the manifest and ``meta/`` documents of a run."""

    _manifest_cache: list[dict[str, Any]] | None

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
