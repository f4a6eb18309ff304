"""Streamed line and record index for JSONL and CSV files.

Sharding a 10 GB text file must not need 10 GB of memory, so :class:`LineScanner` is fed
the file in chunks (8 MiB by default) and keeps only counters plus one entry per shard
boundary. The rules it applies are the ones :func:`iter_records` applies when a shard is
read back, and a property test holds the two to the same answers:

- a *line* ends at ``\\n`` (a ``\\r`` before it is part of the line; CR-only files are not
  supported); the last line needs no newline;
- a line holding only spaces, tabs and ``\\r`` is *blank*: it is not a row;
- a *record* is one line, except in CSV (``quoted=True``) where a newline inside double
  quotes does not end it (RFC 4180 quoting, ``""`` escapes a quote, so the quote parity of
  a record decides where it ends);
- the first ``skip_records`` records (a CSV header) are not rows.

Most chunks hold no shard boundary and (in CSV) no quote; they are handled with
``bytes.count`` and one regular expression for blank lines, without a Python loop per
line. The other chunks are walked line by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["CHUNK_BYTES", "Boundary", "LineScanner", "iter_lines", "iter_records", "scan"]

CHUNK_BYTES = 8 * 1024 * 1024
_WS = b" \t\r"
# A newline followed by a blank line: one match per blank line that follows a newline.
_BLANK_AFTER_NEWLINE = re.compile(rb"\n[ \t\r]*(?=\n)")


@dataclass(frozen=True)
class Boundary:
    """Where a shard starts: its first row, that row's byte offset and line number (0-based)."""

    row: int
    byte: int
    line: int


class LineScanner:
    """Counts rows of a chunked byte stream and records a boundary every ``every`` rows."""

    def __init__(self, *, every: int | None, quoted: bool, skip_records: int = 0) -> None:
        self.every = every
        self.quoted = quoted
        self.rows = 0
        self.lines = 0
        self.boundaries: list[Boundary] = []
        self.data_start: int | None = 0 if skip_records == 0 else None
        """Offset of the first byte after the skipped (header) records."""
        self.data_line = 0
        """Physical lines before :attr:`data_start`."""
        self._skip = skip_records
        self._in_skipped = False
        self._offset = 0  # absolute offset of the next byte fed
        self._line_start = 0  # absolute offset of the current, unfinished line
        self._line_blank = True
        self._line_quotes = 0
        self._parity = 0  # quote parity of the current record
        self._in_record = False  # the current line continues a record begun on an earlier line

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the stream."""
        base = self._offset
        self._offset += len(chunk)
        first = chunk.find(b"\n")
        if first < 0:
            self._extend(chunk)
            return
        self._extend(chunk[:first])
        self._line_done(self._line_start, base + first + 1)
        last = chunk.rfind(b"\n")
        if last > first:
            self._block(chunk, first + 1, last + 1, base)
        self._line_start = base + last + 1
        self._line_blank, self._line_quotes = True, 0
        self._extend(chunk[last + 1 :])

    def finish(self) -> None:
        """End of stream: a last line without a newline still counts."""
        if self._offset > self._line_start:
            self._line_done(self._line_start, self._offset)
            self._line_start = self._offset
        if self.data_start is None:  # the file is all header (or empty)
            self.data_start, self.data_line = self._offset, self.lines

    def _extend(self, part: bytes) -> None:
        if self._line_blank and part.strip(_WS):
            self._line_blank = False
        if self.quoted:
            self._line_quotes += part.count(b'"')

    def _line_done(self, start: int, next_start: int) -> None:
        blank, quotes = self._line_blank, self._line_quotes
        self._line_blank, self._line_quotes = True, 0
        self._end_line(start, blank, quotes, next_start)

    def _end_line(self, start: int, blank: bool, quotes: int, next_start: int) -> None:
        if not self._in_record:
            if blank:
                self.lines += 1
                return
            if self._skip > 0:
                self._skip -= 1
                self._in_skipped = True
            else:
                if self.every is not None and self.rows % self.every == 0:
                    self.boundaries.append(Boundary(self.rows, start, self.lines))
                self.rows += 1
        self._parity = (self._parity + quotes) & 1
        self._in_record = self._parity == 1
        self.lines += 1
        if self._in_skipped and not self._in_record:
            self._in_skipped = False
            if self._skip == 0:
                self.data_start, self.data_line = next_start, self.lines

    def _block(self, chunk: bytes, start: int, end: int, base: int) -> None:
        """Whole lines ``chunk[start:end]`` (``end`` just after a newline)."""
        slow = self._skip > 0 or self._in_record
        if not slow and self.quoted:
            slow = chunk.find(b'"', start, end) >= 0
        if not slow:
            lines = chunk.count(b"\n", start, end)
            blanks = sum(1 for _ in _BLANK_AFTER_NEWLINE.finditer(chunk, start - 1, end))
            new_rows = lines - blanks
            if self.every is not None:
                next_boundary = -(-self.rows // self.every) * self.every
                slow = next_boundary < self.rows + new_rows
            if not slow:
                self.rows += new_rows
                self.lines += lines
                return
        pos = start
        while pos < end:
            nl = chunk.index(b"\n", pos, end)
            line = chunk[pos:nl]
            blank = not line.strip(_WS)
            quotes = line.count(b'"') if self.quoted else 0
            self._end_line(base + pos, blank, quotes, base + nl + 1)
            pos = nl + 1


def scan(
    fh: BinaryIO,
    *,
    every: int | None,
    quoted: bool,
    skip_records: int = 0,
    chunk_bytes: int = CHUNK_BYTES,
) -> LineScanner:
    """Scan a whole binary stream in chunks; memory is one chunk plus the boundaries."""
    scanner = LineScanner(every=every, quoted=quoted, skip_records=skip_records)
    while chunk := fh.read(chunk_bytes):
        scanner.feed(chunk)
    scanner.finish()
    return scanner


def iter_lines(
    fh: BinaryIO, *, start: int, end: int | None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The lines of ``[start, end)`` (``end`` None: to the end), without their ``\\n``.

    ``fh`` must be positioned at ``start``. Reads in chunks, so a prefix of a huge file
    (``sample``) costs only the chunks it touches.
    """
    pos, carry = start, b""
    while end is None or pos < end:
        want = chunk_bytes if end is None else min(chunk_bytes, end - pos)
        chunk = fh.read(want)
        if not chunk:
            break
        pos += len(chunk)
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        yield from parts
    if carry:
        yield carry


def iter_records(
    lines: Iterator[bytes], *, quoted: bool, first_line: int = 0
) -> Iterator[tuple[int, bytes]]:
    """Group lines into records: ``(line number of its first line, record bytes)``.

    Blank lines between records are dropped. In CSV the lines of one record are joined
    with ``\\n`` (each keeps its ``\\r``), which restores the original bytes.
    """
    line_no = first_line
    parts: list[bytes] = []
    parity, begin = 0, 0
    for line in lines:
        if not parts:
            if not line.strip(_WS):
                line_no += 1
                continue
            begin = line_no
        parts.append(line)
        line_no += 1
        if quoted:
            parity = (parity + line.count(b'"')) & 1
        if parity == 0:
            yield begin, parts[0] if len(parts) == 1 else b"\n".join(parts)
            parts = []
    if parts:  # an unterminated quote runs to the end of the range
        yield begin, b"\n".join(parts)
