"""What every format reader shares: the file context, shard ranges, and the line-oriented base.

Each reader answers four questions about one file: how many rows it has (``count``, which
for the line formats also leaves the row marks of :mod:`scheduler.inputs._index` in the
same streamed pass), where its shards begin and end (``shards``, from metadata or those
marks: the file is not read again), what the rows of one shard are (``read``, which seeks to the shard
and reads only it) and what its first rows look like (``sample``).

A row that cannot be used (bad JSON, invalid UTF-8, a missing id or text, a CSV record
with the wrong number of fields) becomes a :class:`DeadRow` with the reason; only
problems with the file as a whole (unreadable, a column missing from the header or
schema) raise :class:`InputError`.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO, cast

from scheduler.errors import InputError
from scheduler.inputs._index import RowMarks
from scheduler.inputs._lines import CHUNK_BYTES, iter_lines, iter_records, scan
from scheduler.inputs._types import DeadRow, Row, ShardSpec
from scheduler.recipe import InputSpec

__all__ = [
    "SAMPLE_SCAN_LIMIT",
    "FileCount",
    "FileCtx",
    "FileRange",
    "FormatReader",
    "decode_record",
    "json_object",
    "row_from_mapping",
]

_MISSING = object()
_CSV_FIELD_LIMIT = 1 << 30
SAMPLE_SCAN_LIMIT = 10_000  # malformed rows a sample looks past before giving up


@dataclass(frozen=True)
class FileCtx:
    """One file of an input and how its rows are interpreted."""

    fs: Any  # fsspec.AbstractFileSystem (untyped upstream)
    path: str
    """Path inside ``fs`` (no protocol)."""
    url: str
    """What users see, and what :attr:`ShardSpec.file` holds."""
    name: str
    """Path relative to the input root, for default row ids ``name:row``."""
    spec: InputSpec

    def open(self, *, stream: bool = False) -> BinaryIO:
        """Open for reading; ``stream``: large sequential reads, so no read-ahead cache
        (on an object store each chunk is then one ranged GET, and a shard read fetches
        only its own bytes rather than a 50 MB block)."""
        if stream:
            return cast(
                BinaryIO,
                self.fs.open(self.path, "rb", block_size=CHUNK_BYTES, cache_type="none"),
            )
        return cast(BinaryIO, self.fs.open(self.path, "rb"))

    def default_id(self, row_number: int) -> str:
        return f"{self.name}:{row_number}"


@dataclass(frozen=True)
class FileRange:
    """A shard before it has an id: rows ``[row_offset, row_offset + row_count)``."""

    row_offset: int
    row_count: int
    byte_start: int | None = None
    byte_end: int | None = None
    line_offset: int | None = None
    skip_rows: int | None = None


@dataclass
class FileCount:
    """What counting one file found: ``custom_ids`` only for openai-batch, ``marks`` (where
    its rows start) for the line formats, ``group_rows`` (rows per row group) for Parquet."""

    rows: int
    custom_ids: list[tuple[str, int]] = field(default_factory=list)
    marks: RowMarks | None = None
    group_rows: list[int] | None = None


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def row_from_mapping(obj: Mapping[str, Any], spec: InputSpec) -> tuple[str | None, Row | str]:
    """``(id or None, row)`` for a good mapping, ``(id or None, reason)`` for a bad one."""
    row_id: str | None = None
    if spec.id_column is not None:
        value = obj.get(spec.id_column)
        if value is None or value == "":
            return None, f"missing id column '{spec.id_column}'"
        row_id = str(value)
    text = obj.get(spec.text_column, _MISSING)
    if text is _MISSING:
        return row_id, f"missing text column '{spec.text_column}'"
    if not isinstance(text, str):
        return row_id, f"text column '{spec.text_column}' holds {_type_name(text)}, not a string,"
    return row_id, {**obj, "id": row_id, "text": text}


class FormatReader:
    """Base: the line-oriented formats (JSONL, CSV and their kin); Parquet overrides most of it."""

    name = ""
    quoted = False  # CSV quoting: newlines inside quotes do not end a record
    header_records = 0

    def check(self, ctx: FileCtx) -> None:
        """Refuse, at open time, a file whose header or schema cannot fit the recipe."""

    def count(self, ctx: FileCtx, marks: RowMarks) -> FileCount:
        """The file's rows, noting in ``marks`` where they start (one streamed pass)."""
        with ctx.open(stream=True) as fh:
            s = scan(fh, quoted=self.quoted, skip_records=self.header_records, marks=marks)
        return FileCount(rows=s.rows, marks=marks)

    def shards(
        self, ctx: FileCtx, counted: FileCount, size: int, rows_per_shard: int
    ) -> list[FileRange]:
        """Row ranges of at most ``rows_per_shard`` rows, from what ``count`` found."""
        if counted.marks is None:
            raise InputError(f"{ctx.url} was not counted before sharding; open the input again")
        ranges = counted.marks.ranges(rows=counted.rows, size=size, rows_per_shard=rows_per_shard)
        return [FileRange(*r) for r in ranges]

    def read(self, ctx: FileCtx, shard: ShardSpec) -> tuple[list[Row], list[DeadRow]]:
        if shard.byte_start is None or shard.byte_end is None:
            raise InputError(
                f"shard {shard.shard_id} of {ctx.url} has no byte range; "
                "was the manifest written for another format? start a new run"
            )
        # Without line_offset (a hand-made manifest) line numbers assume no blank lines.
        first_line = shard.line_offset
        if first_line is None:
            first_line = shard.row_offset + self.header_records
        rows: list[Row] = []
        dead: list[DeadRow] = []
        with ctx.open(stream=True) as fh:
            header = self._header(ctx, fh)
            fh.seek(shard.byte_start)
            lines = iter_lines(fh, start=shard.byte_start, end=shard.byte_end)
            records: Iterator[tuple[int, bytes]]
            records = iter_records(lines, quoted=self.quoted, first_line=first_line)
            if shard.skip_rows is not None:
                # The range is the marks around the shard: rows of its neighbours are skipped
                # (only those before it are parsed as records, none after it are read on).
                records = islice(records, shard.skip_rows, shard.skip_rows + shard.row_count)
            n = 0
            for n, (line_no, record) in enumerate(records, start=1):
                row_number = shard.row_offset + n - 1
                row_id, got = self.parse(ctx, header, line_no, record)
                if isinstance(got, str):
                    raw = record.decode("utf-8", "replace")
                    dead.append(
                        DeadRow.make(
                            id=row_id or ctx.default_id(row_number),
                            file=ctx.url,
                            row_number=row_number,
                            reason=got,
                            raw=raw,
                        )
                    )
                else:
                    if got["id"] is None:
                        got["id"] = ctx.default_id(row_number)
                    rows.append(got)
        if n != shard.row_count:
            raise InputError(
                f"{ctx.url} changed since it was sharded: shard {shard.shard_id} should hold "
                f"{shard.row_count} rows at bytes {shard.byte_start}-{shard.byte_end}, found {n}; "
                "start a new run for the new input"
            )
        return rows, dead

    def sample(self, ctx: FileCtx, n: int) -> list[Row]:
        out: list[Row] = []
        with ctx.open() as fh:
            header = self._header(ctx, fh)
            fh.seek(0)
            lines = iter_lines(fh, start=0, end=None, chunk_bytes=1 << 20)
            records = iter_records(lines, quoted=self.quoted)
            for i, (line_no, record) in enumerate(records, start=-self.header_records):
                if i < 0:
                    continue
                if i >= n + SAMPLE_SCAN_LIMIT:  # a file of bad rows must not make this slow
                    break
                row_id, got = self.parse(ctx, header, line_no, record)
                if not isinstance(got, str):
                    got["id"] = row_id if row_id is not None else ctx.default_id(i)
                    out.append(got)
                    if len(out) >= n:
                        break
        return out

    def _header(self, ctx: FileCtx, fh: BinaryIO) -> list[str]:
        return []

    def parse(
        self, ctx: FileCtx, header: list[str], line_no: int, record: bytes
    ) -> tuple[str | None, Row | str]:
        """One record: ``(id or None, row)`` or ``(id or None, reason it is dead)``."""
        raise NotImplementedError


def decode_record(record: bytes, line_no: int) -> str:
    """UTF-8 text of a record; raises ValueError with the dead-row reason."""
    if line_no == 0 and record.startswith(codecs.BOM_UTF8):
        record = record[len(codecs.BOM_UTF8) :]
    try:
        return record.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-8 at line {line_no + 1} (byte {e.start + 1})") from e


def json_object(record: bytes, line_no: int) -> dict[str, Any] | str:
    """The JSON object on one line, or the reason it is not one."""
    try:
        text = decode_record(record, line_no)
    except ValueError as e:
        return str(e)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return f"invalid JSON at line {line_no + 1}: {e.msg} (column {e.colno})"
    except (ValueError, RecursionError) as e:  # absurd nesting, huge numbers
        return f"invalid JSON at line {line_no + 1}: {e}"
    if not isinstance(obj, dict):
        return f"line {line_no + 1} is a JSON {_type_name(obj)}, not an object"
    return obj
