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
``bytes.count`` less the blank lines (one regular expression); where marks fall inside a
chunk, the counts advance from mark to mark (a guess from the average line length, then a
few steps), so they are the chunk's count and each byte is still counted about once. Only
chunks with blank lines *and* a mark, CSV chunks where a quoted field spans lines, and the
header are walked line by line. A scan holds about three chunks at a time.
"""

from __future__ import annotations

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
_WALK_BACK = 64  # past the newline sought by fewer than this: walk back rather than recount
_SHORT = 0.9  # guesses aim this far along the lines sought: short is cheaper than past
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
        self._line_bytes = 100.0  # average line length seen: where _advance guesses

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
            blanks = sum(1 for _ in _BLANK_AFTER_NEWLINE.finditer(chunk, start - 1, end))
            if blanks == 0 and self.marks is not None:
                self._walk_rows(chunk, start, end, base)
                return
            lines = chunk.count(b"\n", start, end)
            next_mark = self._next_mark()
            if next_mark is None or next_mark >= self.rows + lines - blanks:
                self.rows += lines - blanks
                self.lines += lines
                return
        off = base + start
        for line in chunk.split(b"\n")[1:-1]:
            after = off + len(line) + 1
            blank = not line or (line[0] in _WS and not line.strip(_WS))
            self._end_line(off, blank, line.count(b'"') if self.quoted else 0, after)
            off = after

    def _next_mark(self) -> int | None:
        """The next row number to mark (None: no marks wanted)."""
        if self.marks is None:
            return None
        return -(-self.rows // self.marks.step) * self.marks.step

    def _walk_rows(self, chunk: bytes, start: int, end: int, base: int) -> None:
        """Whole lines ``chunk[start:end]``, all rows (no blank, no open quote): count them
        and mark every ``step``-th, counting each byte about once (the counts that find
        the marks are the counts of the block)."""
        marks = self.marks
        if marks is None:
            raise RuntimeError("_walk_rows without marks")  # _block checks first
        pos = start
        while True:
            step = marks.step
            gap = -(-self.rows // step) * step - self.rows  # rows before the next mark
            if gap == 0:
                if pos >= end:
                    return  # that row starts in the next chunk: _end_line marks it
                marks.add(base + pos, self.lines)
                # Adding may have coarsened the index: the next mark is on the step as it is now.
                step = marks.step
                gap = (self.rows // step + 1) * step - self.rows
            pos, passed, self._line_bytes = _advance(chunk, pos, end, gap, self._line_bytes)
            self.rows += passed
            self.lines += passed
            if passed < gap:
                return


def _advance(chunk: bytes, pos: int, end: int, n: int, line_bytes: float) -> tuple[int, int, float]:
    """Past ``n`` newlines of ``chunk[pos:end]``, or to ``end`` if it holds fewer:
    ``(offset after the last newline passed, newlines passed, bytes per line)``.

    No object per line: guess from the average line length (``line_bytes``, updated and
    returned) where the ``n``-th newline is, a little short, and count up to the guess;
    counting forward wastes nothing, so each byte is counted about once. Past it, walk back
    with ``rindex``; once a few lines away, step.
    """
    passed = 0
    while n - passed > _STEP_LINES:
        need = n - passed
        guess = min(pos + int(need * line_bytes * _SHORT) + 1, end)
        seen = chunk.count(b"\n", pos, guess)
        if seen:
            line_bytes = (guess - pos) / seen
        if seen < need:
            if guess == end:
                return end, passed + seen, line_bytes
            pos, passed = guess, passed + seen
        elif seen - need < _WALK_BACK:  # at or just past it: walk back
            for _ in range(seen - need + 1):
                guess = chunk.rindex(b"\n", pos, guess)
            return guess + 1, n, line_bytes
        # else: far past (the lines got shorter): guess again from ``pos``, closer
    while passed < n:
        found = chunk.find(b"\n", pos, end)
        if found < 0:
            return end, passed, line_bytes
        pos, passed = found + 1, passed + 1
    return pos, passed, line_bytes


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
