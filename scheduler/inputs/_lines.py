"""Streamed line and record index for JSONL and CSV files.

Sharding a 10 GB text file must not need 10 GB of memory, so :class:`LineScanner` is fed
the file in chunks (8 MiB by default) and keeps only counters plus the bounded row marks
of :mod:`scheduler.inputs._index` (where every ``step``-th row starts). One such scan counts
a file and leaves what its shards need. The rules it applies are the ones
:func:`iter_records` applies when a shard is read back, and a property test holds the two
to the same answers:

- a *line* ends at ``\\n`` (a ``\\r`` before it is part of the line; CR-only files are not
  supported); the last line needs no newline;
- a line holding only spaces, tabs and ``\\r`` is *blank*: it is not a row;
- a *record* is one line, except in CSV (``quoted=True``) where a newline inside double
  quotes does not end it (RFC 4180 quoting, ``""`` escapes a quote, so the quote parity of
  a record decides where it ends);
- the first ``skip_records`` records (a CSV header) are not rows.

Most chunks are handled without a Python loop per line: rows are counted with
``bytes.count`` less the blank lines (one regular expression), and where marks fall inside
a chunk they are found by interpolation search with ``bytes.count``. Only chunks with blank
lines *and* a mark, CSV chunks where a quoted field spans lines, and the header are walked
line by line. A scan holds about three chunks at a time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Protocol

from scheduler.inputs._index import RowMarks

__all__ = [
    "CHUNK_BYTES",
    "Boundary",
    "LineScanner",
    "ScanningReader",
    "iter_lines",
    "iter_records",
    "scan",
]

CHUNK_BYTES = 8 * 1024 * 1024
_WS = b" \t\r"
# A newline followed by a blank line: one match per blank line that follows a newline.
_BLANK_AFTER_NEWLINE = re.compile(rb"\n[ \t\r]*(?=\n)")
_STEP_LINES = 16  # closer than this, find newlines one by one
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


class Readable(Protocol):
    """What :func:`iter_lines` reads from: a binary file, or a :class:`ScanningReader`."""

    def read(self, size: int = -1, /) -> bytes: ...


class Boundary(NamedTuple):
    """A marked row: its number, byte offset and line number (all 0-based)."""

    row: int
    byte: int
    line: int


class LineScanner:
    """Counts rows of a chunked byte stream and notes in ``marks`` where every
    ``marks.step``-th row starts (the step may grow while it scans: see :class:`RowMarks`)."""

    def __init__(
        self, *, quoted: bool, skip_records: int = 0, marks: RowMarks | None = None
    ) -> None:
        self.marks = marks
        self.quoted = quoted
        self.rows = 0
        self.lines = 0
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

    @property
    def boundaries(self) -> list[Boundary]:
        """The marks as ``(row, byte, line)`` triples (tests and small files)."""
        if self.marks is None:
            return []
        step = self.marks.step
        pairs = zip(self.marks.bytes, self.marks.lines, strict=True)
        return [Boundary(i * step, byte, line) for i, (byte, line) in enumerate(pairs)]

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
                if self.marks is not None and self.rows % self.marks.step == 0:
                    self.marks.add(start, self.lines)
                self.rows += 1
        self._parity = (self._parity + quotes) & 1
        self._in_record = self._parity == 1
        self.lines += 1
        if self._in_skipped and not self._in_record:
            self._in_skipped = False
            if self._skip == 0:
                self.data_start, self.data_line = next_start, self.lines

    def _block(self, chunk: bytes, start: int, end: int, base: int) -> None:
        """The whole lines between the first and the last newline of ``chunk``.

        ``start`` is just after the first newline, ``end`` just after the last one.
        """
        plain = self._skip == 0 and not self._in_record
        if plain and self.quoted and chunk.find(b'"', start, end) >= 0:
            # Lines whose quotes pair up end their records: then lines are records, as in
            # JSONL. Keeping only quotes and newlines, then dropping quote pairs, leaves a
            # quote exactly when some line has an odd number of them.
            marks = chunk[start:end].translate(None, _NOT_QUOTE_OR_NEWLINE)
            plain = b'"' not in marks.replace(b'""', b"")
        if plain:
            lines = chunk.count(b"\n", start, end)
            blanks = sum(1 for _ in _BLANK_AFTER_NEWLINE.finditer(chunk, start - 1, end))
            new_rows = lines - blanks
            next_boundary = self._next_boundary()
            if next_boundary is None or next_boundary >= self.rows + new_rows:
                self.rows += new_rows
                self.lines += lines
                return
            if blanks == 0:
                self._boundaries_in_rows(chunk, start, end, base, lines)
                return
        off = base + start
        for line in chunk.split(b"\n")[1:-1]:
            after = off + len(line) + 1
            blank = not line or (line[0] in _WS and not line.strip(_WS))
            self._end_line(off, blank, line.count(b'"') if self.quoted else 0, after)
            off = after

    def _next_boundary(self) -> int | None:
        """The next row number to mark (None: no marks wanted)."""
        if self.marks is None:
            return None
        return -(-self.rows // self.marks.step) * self.marks.step

    def _boundaries_in_rows(
        self, chunk: bytes, start: int, end: int, base: int, lines: int
    ) -> None:
        """``lines`` whole lines ``chunk[start:end]``, all rows (no blank, no open quote)."""
        marks, rows, done = self.marks, self.rows, self.lines
        if marks is None:
            raise RuntimeError("_boundaries_in_rows without marks")  # _block checks first
        pos, at = start, 0  # ``pos`` is where line ``at`` of the block starts
        i = -(-rows // marks.step) * marks.step - rows  # the first line to mark
        find = chunk.index
        while i < lines:
            gap = i - at
            if gap > _STEP_LINES:
                pos = _after_nth_newline(chunk, pos, end, gap, lines - at)
            elif gap > 1:  # dense marks (a small step): one regex call skips the lines
                pos = _lines_pattern(gap).match(chunk, pos, end).end()  # type: ignore[union-attr]
            elif gap == 1:
                pos = find(b"\n", pos, end) + 1
            at = i
            marks.add(base + pos, done + i)
            # Adding may have coarsened the index: the next mark is on the step as it is now.
            step = marks.step
            i = ((rows + i) // step + 1) * step - rows
        self.rows += lines
        self.lines += lines


@functools.cache
def _lines_pattern(n: int) -> re.Pattern[bytes]:
    """``n`` whole lines: matched in C, with no Python step per line."""
    return re.compile(rb"(?:[^\n]*\n){%d}" % n)


def _after_nth_newline(chunk: bytes, pos: int, end: int, n: int, in_range: int) -> int:
    """The offset just after the ``n``-th newline of ``chunk[pos:end]``.

    ``in_range`` is the number of newlines in ``chunk[pos:end]`` (at least ``n``).
    Interpolation search with ``bytes.count`` (no object per line): guess where the
    newline is from the average line length, count up to the guess, and close in; once a
    few lines away, step. Every third guess bisects, so odd line lengths cannot stall it.
    """
    hi, tries = end, 0
    while n > _STEP_LINES:
        tries += 1
        if tries % 3 == 0:
            guess = (pos + hi) // 2
        else:
            guess = min(max(pos + (hi - pos) * n // in_range, pos + 1), hi - 1)
        seen = chunk.count(b"\n", pos, guess)
        if seen < n:
            pos, n, in_range = guess, n - seen, in_range - seen
        elif seen - n < _STEP_LINES:  # just past it: walk back
            for _ in range(seen - n + 1):
                guess = chunk.rindex(b"\n", pos, guess)
            return guess + 1
        else:
            hi, in_range = guess, seen
    for _ in range(n):
        pos = chunk.index(b"\n", pos, hi) + 1
    return pos


def scan(
    fh: BinaryIO,
    *,
    quoted: bool,
    skip_records: int = 0,
    every: int | None = None,
    marks: RowMarks | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> LineScanner:
    """Scan a whole binary stream in chunks; memory is one chunk plus the marks.

    ``marks`` receives the row marks; ``every`` instead marks every ``every``-th row with
    no memory bound (tests, and small inputs where the shard size is known).
    """
    if marks is None and every is not None:
        marks = RowMarks(step=every)
    scanner = LineScanner(quoted=quoted, skip_records=skip_records, marks=marks)
    while chunk := fh.read(chunk_bytes):
        scanner.feed(chunk)
    scanner.finish()
    return scanner


class ScanningReader:
    """A read-only stream over ``fh`` that feeds every chunk it returns to ``scanner``.

    A reader that must look at every record anyway (OpenAI batch files: duplicate
    ``custom_id`` checks) counts and marks rows from the same bytes, in the same pass.
    Call :meth:`LineScanner.finish` after the last read.
    """

    def __init__(self, fh: BinaryIO, scanner: LineScanner) -> None:
        self._fh = fh
        self._scanner = scanner

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        if chunk:
            self._scanner.feed(chunk)
        return chunk


def iter_lines(
    fh: Readable, *, start: int, end: int | None, chunk_bytes: int = CHUNK_BYTES
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
