"""Value objects of the input side: files, shards, dead rows and rows.

They live apart from :mod:`scheduler.inputs` so that the format readers
(:mod:`scheduler.inputs.formats`) and the public module can both import them without a cycle.
:mod:`scheduler.inputs` re-exports every name here; import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DeadRow", "InputFile", "Row", "ShardSpec"]

Row = dict[str, Any]
"""One input row: ``"id"`` (str) and ``"text"`` (str), plus the file's other columns."""

_RAW_LIMIT = 1000


@dataclass(frozen=True)
class InputFile:
    """One file of an input, as it was when the input was opened."""

    url: str
    """Local path (absolute) or fsspec URL (with its protocol)."""
    format: str
    """``parquet`` | ``jsonl`` | ``csv`` | ``openai-batch``."""
    size: int
    """Bytes."""
    version: str
    """The modification time (local) or the object store's etag/generation/mtime."""
    rows: int
    """Rows, counting malformed ones (they become dead rows) but not blank lines."""


@dataclass(frozen=True)
class ShardSpec:
    """A contiguous row range of one input file: the unit a worker claims and commits.

    ``row_offset`` counts every row of the file from 0, malformed ones included (blank lines
    and a CSV header are not rows). For JSONL and CSV, ``byte_start``/``byte_end`` is the
    half-open byte range holding exactly those rows and ``line_offset`` the number of
    physical lines before ``byte_start`` (so dead rows can name their line); Parquet shards
    have neither. ``skip_rows`` is None when the byte range holds exactly the shard's rows
    (always, for inputs of up to 16,384 rows); on a larger input the range may be that of the
    index marks around the shard, and ``skip_rows`` is then how many rows of the range come
    before the shard's first (the range may also run on past its last row). Manifests
    written before the field existed have exact ranges and read as None.
    """

    shard_id: str
    file: str
    row_offset: int
    row_count: int
    byte_start: int | None = None
    byte_end: int | None = None
    line_offset: int | None = None
    skip_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for one row of ``manifest.parquet``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShardSpec:
        """The inverse of :meth:`to_dict`; unknown keys are ignored, missing optional ones are None."""

        def _opt(key: str) -> int | None:
            value = d.get(key)
            return None if value is None else int(value)

        return cls(
            shard_id=str(d["shard_id"]),
            file=str(d["file"]),
            row_offset=int(d["row_offset"]),
            row_count=int(d["row_count"]),
            byte_start=_opt("byte_start"),
            byte_end=_opt("byte_end"),
            line_offset=_opt("line_offset"),
            skip_rows=_opt("skip_rows"),
        )


@dataclass(frozen=True)
class DeadRow:
    """A row that could not become a :data:`Row`, with the reason (written to ``dead/``)."""

    id: str
    file: str
    row_number: int
    """0-based, in the same numbering as :attr:`ShardSpec.row_offset`."""
    reason: str
    raw: str | None
    """The raw line or record (at most 1000 characters), when there is one."""

    @classmethod
    def make(cls, *, id: str, file: str, row_number: int, reason: str, raw: str | None) -> DeadRow:
        """Build one, truncating ``raw`` so a huge bad line cannot bloat the dead letters."""
        if raw is not None and len(raw) > _RAW_LIMIT:
            raw = raw[:_RAW_LIMIT]
        return cls(id=id, file=file, row_number=row_number, reason=reason, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for one line of ``dead/<shard>.<attempt>.jsonl``."""
        return asdict(self)
