"""Value types and ids of the run store: leases, output files, commit markers, run ids.

Kept apart from :mod:`scheduler.store` (the operations) so the contract's data reads on
one page.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from scheduler.errors import StoreError

__all__ = [
    "DoneMarker",
    "Lease",
    "OutputFile",
    "digest_ids",
    "iso_time",
    "make_run_id",
    "utcnow",
    "validate_run_id",
    "validate_worker_id",
]

# \Z, not $: "$" also matches before a trailing newline, and "run\n" is no folder name.
_RUN_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_DIGEST_MOD = 1 << 128


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso_time(t: float) -> str:
    """ISO-8601 UTC, milliseconds, from seconds since the epoch."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def digest_ids(ids: Iterable[str]) -> str:
    """An order-independent digest of a multiset of row ids.

    The sum (mod 2**128) of each id's hash: the same ids in any order give the same digest,
    and a duplicated or missing id changes it, so a reader can verify a shard's ids without
    trusting listings or order.
    """
    total = 0
    for i in ids:
        # surrogatepass: ids parsed from JSON may hold lone surrogates ("\ud800"); valid
        # strings encode exactly as with plain UTF-8, so existing digests do not change.
        raw = i.encode("utf-8", "surrogatepass")
        total = (total + int.from_bytes(hashlib.sha256(raw).digest()[:16], "big")) % _DIGEST_MOD
    return f"{total:032x}"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` or raise: ids become folder names and object keys."""
    if not _RUN_ID.match(run_id):
        raise StoreError(
            f"run id {run_id!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return run_id


def validate_worker_id(worker_id: str) -> str:
    """Return ``worker_id`` or raise: it names ``workers/<id>.json`` and a log file.

    The same rule as run ids: no path separators, no ``..`` (the pattern starts with a
    letter or digit and allows no "/"), no control characters, no trailing newline.
    """
    if not _RUN_ID.match(worker_id) or ".." in worker_id:
        raise StoreError(
            f"worker id {worker_id!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 128 characters, starting with a letter or digit, no '..')"
        )
    return worker_id


def make_run_id(
    name: str, *, fingerprint: str, model: str, revision: str | None, recipe_digest: str
) -> str:
    """The stable run id: same input, model + revision and recipe give the same id."""
    key = "\n".join([fingerprint, model, revision or "", recipe_digest])
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Lease:
    """A worker's advisory claim on one shard for one attempt."""

    shard_id: str
    worker: str
    attempt: int
    token: str
    expires_at: float
    failures: int = 0
    last_error: str | None = None

    @property
    def attempt_id(self) -> str:
        """Unique name of this attempt, used in output and dead-letter file names.

        The whole 64-bit token: two workers taking over one expired lease at once get the
        same attempt number, and a shared file name would let the loser of the commit race
        delete the winner's output.
        """
        return f"{self.attempt}-{self.token}"


@dataclass(frozen=True)
class OutputFile:
    """A file an attempt wrote: its store-relative path, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DoneMarker:
    """The commit marker of a shard: the attempt whose outputs count."""

    shard_id: str
    attempt: int
    attempt_id: str
    worker: str
    out_file: str
    out_size: int
    out_sha256: str
    dead_file: str | None
    rows_in: int
    rows_out: int
    rows_dead: int
    ids_digest: str
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    committed_at: str = ""
    model_revision: str | None = None
    # The dead-row file's size and sha256 (None in markers written before they were kept).
    dead_size: int | None = None
    dead_sha256: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> DoneMarker:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict):
                raise TypeError(f"expected an object, got {type(raw).__name__}")
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, TypeError) as e:
            raise StoreError(f"{where}: commit marker is unreadable ({e})") from e
