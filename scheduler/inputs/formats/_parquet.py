"""The Parquet reader: shards from row-group metadata, reads of only the row groups needed.

Shards group whole row groups while they fit in ``rows_per_shard``; a row group larger
than that is cut into row ranges (reading such a shard reads its row group and slices it).
Sharding reads no file: counting read the footer (never the data) and kept the row-group
sizes for it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import InputError
from scheduler.inputs._index import RowMarks
from scheduler.inputs._types import DeadRow, Row, ShardSpec
from scheduler.inputs.formats._base import (
    SAMPLE_SCAN_LIMIT,
    FileCount,
    FileCtx,
    FileRange,
    FormatReader,
    row_from_mapping,
)

__all__ = ["ParquetReader"]


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_text(t.value_type)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


class ParquetReader(FormatReader):
    """Parquet files, one or many, any row-group layout."""

    name = "parquet"

    def _file(self, ctx: FileCtx, fh: Any) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(fh)
        except (pa.ArrowException, OSError) as e:
            raise InputError(
                f"cannot read {ctx.url} as Parquet ({e}); check the file or set input.format"
            ) from e

    def _group_rows(self, ctx: FileCtx) -> list[int]:
        with ctx.open() as fh:
            meta = self._file(ctx, fh).metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]

    def check(self, ctx: FileCtx) -> None:
        with ctx.open() as fh:
            schema = self._file(ctx, fh).schema_arrow
        for role, column in (("text", ctx.spec.text_column), ("id", ctx.spec.id_column)):
            if column is not None and column not in schema.names:
                raise InputError(
                    f"{ctx.url}: no {role} column '{column}' in the Parquet schema "
                    f"(columns: {', '.join(schema.names)}); set input.{role}_column"
                )
        text_type = schema.field(ctx.spec.text_column).type
        if not _is_text(text_type):
            raise InputError(
                f"{ctx.url}: text column '{ctx.spec.text_column}' has type {text_type}, "
                "not string; point input.text_column at a string column"
            )

    def count(self, ctx: FileCtx, marks: RowMarks) -> FileCount:
        # The footer says; its row-group sizes are all that sharding needs (no marks).
        groups = self._group_rows(ctx)
        return FileCount(rows=sum(groups), group_rows=groups)

    def shards(
        self, ctx: FileCtx, counted: FileCount, size: int, rows_per_shard: int
    ) -> list[FileRange]:
        out: list[FileRange] = []
        start = pending = 0  # first row of the open shard, rows in it
        groups = counted.group_rows
        for n in groups if groups is not None else self._group_rows(ctx):
            if pending and pending + n > rows_per_shard:
                out.append(FileRange(start, pending))
                start, pending = start + pending, 0
            if n > rows_per_shard:
                for cut in range(0, n, rows_per_shard):
                    out.append(FileRange(start + cut, min(rows_per_shard, n - cut)))
                start += n
            else:
                pending += n
        if pending:
            out.append(FileRange(start, pending))
        return out

    def read(self, ctx: FileCtx, shard: ShardSpec) -> tuple[list[Row], list[DeadRow]]:
        first, stop = shard.row_offset, shard.row_offset + shard.row_count
        with ctx.open() as fh:
            pf = self._file(ctx, fh)
            meta = pf.metadata
            groups: list[int] = []
            group_start = skip = 0
            for i in range(meta.num_row_groups):
                n = meta.row_group(i).num_rows
                if group_start < stop and group_start + n > first:
                    if not groups:
                        skip = first - group_start
                    groups.append(i)
                group_start += n
            if stop > group_start:
                raise InputError(
                    f"{ctx.url} changed since it was sharded: shard {shard.shard_id} needs rows "
                    f"{first}-{stop - 1}, the file has {group_start}; start a new run"
                )
            # use_threads=False: Arrow pool threads must not outlive the read holding our
            # Python file object (they abort the interpreter at exit; see store._parquet_table).
            table = (
                pf.read_row_groups(groups, use_threads=False)
                if groups
                else pf.schema_arrow.empty_table()
            )
        records = table.slice(skip, shard.row_count).to_pylist()
        rows: list[Row] = []
        dead: list[DeadRow] = []
        for k, obj in enumerate(records):
            row_number = first + k
            row_id, got = row_from_mapping(obj, ctx.spec)
            if isinstance(got, str):
                dead.append(
                    DeadRow.make(
                        id=row_id or ctx.default_id(row_number),
                        file=ctx.url,
                        row_number=row_number,
                        reason=f"{got} at row {row_number}",
                        raw=None,
                    )
                )
            else:
                got["id"] = row_id if row_id is not None else ctx.default_id(row_number)
                rows.append(got)
        return rows, dead

    def sample(self, ctx: FileCtx, n: int) -> list[Row]:
        out: list[Row] = []
        with ctx.open() as fh:
            pf = self._file(ctx, fh)
            row_number = 0
            for batch in pf.iter_batches(batch_size=max(n, 1), use_threads=False):
                for obj in batch.to_pylist():
                    if row_number >= n + SAMPLE_SCAN_LIMIT:
                        return out
                    row_id, got = row_from_mapping(obj, ctx.spec)
                    if not isinstance(got, str):
                        got["id"] = row_id if row_id is not None else ctx.default_id(row_number)
                        out.append(got)
                        if len(out) >= n:
                            return out
                    row_number += 1
        return out
