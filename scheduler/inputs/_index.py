"""The row index a counting pass leaves behind, so that sharding a text file never reads it again.

Counting a JSONL or CSV file must stream it once anyway; while it does, the scanner notes
where every ``step``-th row starts (byte offset and physical line number) in a
:class:`RowMarks` per file. ``rows_per_shard`` is often not known yet at that point (the
plan or the default derives it from the row count), so the shards are cut from these marks
afterwards, without touching the file. When it is known (the recipe fixes it), the step is
a multiple of it and every shard starts and ends exactly on a mark.

Memory stays bounded: one :class:`RowIndex` per input holds at most ``capacity`` marks
beyond each file's first, two 8-byte integers each: 16,384 marks (256 KiB), or one per
16 KiB of input for inputs over 256 MiB, at most 2**20 (16 MiB, from a 16 GiB input on).
When it is full the step grows, 1 → 2 → 10 → 20 → 100 → 200 → ... (times the known shard
size, if any), and every file keeps only the marks on the new step. Steps from that series
divide the round figures people and the planner choose (5,000 rows per shard, 4,700), so
such shards still start and end exactly on a mark. A shard whose edges fall between marks
gets the byte range of the marks around it and ``skip_rows``, the rows of that range before
its own: reading it reads at most one step of rows more on each side, never the file.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["INDEX_CAPACITY", "MarkedRange", "RowIndex", "RowMarks", "capacity_for"]

INDEX_CAPACITY = 1 << 14
_CAPACITY_MAX = 1 << 20
_BYTES_PER_MARK = 16 * 1024  # big inputs: resolution grows with size, up to _CAPACITY_MAX
_REVIEWS = 8  # budget reviews per capacity's worth of marks


class MarkedRange(NamedTuple):
    """One shard of a file, located by the marks: rows and the byte range that holds them."""

    row_offset: int
    row_count: int
    byte_start: int
    byte_end: int
    line_offset: int
    """Physical lines before ``byte_start``."""
    skip_rows: int | None
    """None when the byte range holds exactly the shard's rows; else the rows of the range
    before the shard's first (the range may also run past its last row)."""


class RowMarks:
    """Where rows ``0, step, 2 * step, ...`` of one file start: byte offsets and line numbers."""

    def __init__(self, *, step: int = 1, index: RowIndex | None = None) -> None:
        if step <= 0:
            raise ValueError(f"step must be positive (got {step})")
        self.step = step
        self.bytes = array("q")
        self.lines = array("q")
        self._index = index

    def __len__(self) -> int:
        return len(self.bytes)

    def add(self, byte: int, line: int) -> None:
        """Note the start of the next marked row (row ``len(self) * step``)."""
        self.bytes.append(byte)
        self.lines.append(line)
        index = self._index
        if index is not None:  # inline budget check: this runs once per marked row
            index.room -= 1
            if index.room < 0:
                index.review(byte)

    def coarsen(self, step: int) -> None:
        """Keep only the marks on ``step`` (a multiple of the current step)."""
        keep = step // self.step
        if keep * self.step != step:
            raise ValueError(f"step {step} is not a multiple of {self.step}")
        if keep > 1:
            self.bytes = self.bytes[::keep]
            self.lines = self.lines[::keep]
        self.step = step

    def ranges(self, *, rows: int, size: int, rows_per_shard: int) -> Iterator[MarkedRange]:
        """Shards of ``rows_per_shard`` rows (the last one shorter) over a file of ``rows``
        rows and ``size`` bytes, in order."""
        step, marks = self.step, len(self.bytes)
        for start in range(0, rows, rows_per_shard):
            end = min(start + rows_per_shard, rows)
            first, after = start // step, -(-end // step)  # the marks around the shard
            skip = start - first * step
            exact = skip == 0 and (end % step == 0 or end == rows)
            yield MarkedRange(
                row_offset=start,
                row_count=end - start,
                byte_start=self.bytes[first],
                byte_end=self.bytes[after] if after < marks else size,
                line_offset=self.lines[first],
                skip_rows=None if exact else skip,
            )


def capacity_for(total_bytes: int) -> int:
    """Marks an input of ``total_bytes`` may hold: finer for big inputs, within 16 MiB."""
    return min(max(INDEX_CAPACITY, total_bytes // _BYTES_PER_MARK), _CAPACITY_MAX)


class RowIndex:
    """The marks of every file of one input, within one memory budget.

    ``total_bytes`` (the input's size) lets it project, early in the pass, how many marks
    the whole input would need at the current step, and skip the steps it would outgrow:
    every mark added and later dropped costs time. ``base_step`` (the shard size, when it
    is known before the pass) is the finest step: a mark where each shard starts.
    """

    def __init__(
        self, *, capacity: int = INDEX_CAPACITY, total_bytes: int = 0, base_step: int = 1
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive (got {capacity})")
        if base_step <= 0:
            raise ValueError(f"base_step must be positive (got {base_step})")
        self.capacity = capacity
        self.base_step = base_step
        self.step = base_step
        self.total_bytes = total_bytes
        self.room = self._review_every
        """Marks that may still be added before :meth:`review` runs."""
        self._files: list[RowMarks] = []
        self._bytes_before = 0  # bytes of the files before the current one
        self._current_size = 0

    @property
    def _review_every(self) -> int:
        return max(1, self.capacity // _REVIEWS)

    def file(self, *, size: int = 0) -> RowMarks:
        """Empty marks for the next file (of ``size`` bytes), at the index's current step."""
        self._bytes_before += self._current_size
        self._current_size = size
        marks = RowMarks(step=self.step, index=self)
        self._files.append(marks)
        return marks

    @property
    def marks(self) -> int:
        """Marks held over all files."""
        return sum(len(m) for m in self._files)

    def review(self, byte: int) -> None:
        """Every ``capacity / 8`` marks: coarsen if the budget is spent or will be.

        ``byte`` is the current file's offset, so ``(bytes before it + byte) / total`` is
        the share of the input scanned so far.
        """
        held = self._held()
        done = self._bytes_before + byte
        if held > self.capacity:
            self._coarsen_to(self._next_step(self.step))
        elif self.total_bytes > 0 and 0 < done < self.total_bytes:
            # The marks the whole input needs at this step, if the rest is like what was seen.
            projected = held * self.total_bytes / done
            step = self.step
            while projected * self.step / step > self.capacity:
                step = self._next_step(step)
            if step != self.step:
                self._coarsen_to(step)
        held = self._held()
        self.room = min(self._review_every, self.capacity - held)

    def _held(self) -> int:
        """Marks that count against the budget: a file's first is free (always kept)."""
        return sum(len(m) - 1 for m in self._files if len(m))

    def _next_step(self, step: int) -> int:
        """base × (1, 2, 10, 20, 100, ...): each divides the next, round figures divide them."""
        factor = step // self.base_step
        return step * 2 if str(factor).startswith("1") else step * 5

    def _coarsen_to(self, step: int) -> None:
        self.step = step
        for marks in self._files:
            marks.coarsen(step)
