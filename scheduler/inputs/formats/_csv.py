"""CSV with a header line; quoted fields may hold newlines (RFC 4180 quoting)."""

from __future__ import annotations

import csv
import io
from typing import BinaryIO

from scheduler.errors import InputError
from scheduler.inputs._lines import CHUNK_BYTES, LineScanner
from scheduler.inputs._types import Row
from scheduler.inputs.formats._base import FileCtx, FormatReader, decode_record, row_from_mapping

__all__ = ["CsvReader"]

_CSV_FIELD_LIMIT = 1 << 30


class CsvReader(FormatReader):
    """CSV with a header line; quoted fields may hold newlines (RFC 4180 quoting)."""

    name = "csv"
    quoted = True
    header_records = 1

    def check(self, ctx: FileCtx) -> None:
        with ctx.open() as fh:
            header = self._header(ctx, fh)
        if not header:
            return  # an empty file: no rows, nothing to check
        for role, column in (("text", ctx.spec.text_column), ("id", ctx.spec.id_column)):
            if column is not None and column not in header:
                raise InputError(
                    f"{ctx.url}: no {role} column '{column}' in the CSV header "
                    f"(columns: {', '.join(header)}); set input.{role}_column"
                )

    def _header(self, ctx: FileCtx, fh: BinaryIO) -> list[str]:
        # Every CSV path reads the header first, so this is where the csv module's 128 KiB
        # field limit (process-wide) is lifted: long documents are ordinary rows here.
        if csv.field_size_limit() < _CSV_FIELD_LIMIT:
            csv.field_size_limit(_CSV_FIELD_LIMIT)
        # The header is the first record; scan just far enough to find where it ends.
        scanner = LineScanner(quoted=True, skip_records=1)
        seen = bytearray()
        fh.seek(0)
        want = 4096  # a header is usually short: every shard read pays for this read
        while scanner.data_start is None:
            chunk = fh.read(want)
            want = min(want * 2, 1 << 20)
            if not chunk:
                scanner.finish()
                break
            seen += chunk
            scanner.feed(bytes(chunk))
            if len(seen) > CHUNK_BYTES:
                raise InputError(f"{ctx.url}: the CSV header is longer than 8 MiB; is it CSV?")
        head = bytes(seen[: scanner.data_start])
        try:
            text = decode_record(head, 0)
        except ValueError as e:
            raise InputError(f"{ctx.url}: the CSV header has {e}; save the file as UTF-8") from e
        for fields in csv.reader(io.StringIO(text, newline="")):
            if fields:
                return fields
        return []

    def parse(
        self, ctx: FileCtx, header: list[str], line_no: int, record: bytes
    ) -> tuple[str | None, Row | str]:
        try:
            text = decode_record(record, line_no)
            fields = next(csv.reader(io.StringIO(text, newline="")), [])
        except (ValueError, csv.Error) as e:
            return None, f"{e} at line {line_no + 1}" if isinstance(e, csv.Error) else str(e)
        if len(fields) != len(header):
            return None, (f"expected {len(header)} fields at line {line_no + 1}, got {len(fields)}")
        row_id, got = row_from_mapping(dict(zip(header, fields, strict=True)), ctx.spec)
        if isinstance(got, str):
            return row_id, f"{got} at line {line_no + 1}"
        return row_id, got
