"""The row index of one counting pass: bounded, and shards cut from it read the right rows."""

from __future__ import annotations

import io
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.inputs._index import RowIndex, RowMarks
from scheduler.inputs._lines import iter_lines, iter_records, scan

texts = st.lists(
    st.sampled_from([b"ab", b"\n", b" ", b"\r", b'"', b",", b"xyz\n", b"q\n"]), max_size=300
).map(b"".join)


def _records(data: bytes, *, quoted: bool, skip: int) -> list[tuple[int, bytes]]:
    lines = iter_lines(io.BytesIO(data), start=0, end=None)
    return list(iter_records(lines, quoted=quoted))[skip:]


def _read_range(
    data: bytes, *, start: int, end: int, first_line: int, quoted: bool
) -> list[tuple[int, bytes]]:
    fh = io.BytesIO(data)
    fh.seek(start)
    return list(
        iter_records(iter_lines(fh, start=start, end=end), quoted=quoted, first_line=first_line)
    )


@settings(max_examples=300, deadline=None)
@given(
    files=st.lists(texts, min_size=1, max_size=3),
    quoted=st.booleans(),
    skip=st.sampled_from([0, 1]),
    capacity=st.integers(min_value=1, max_value=6),
    rows_per_shard=st.integers(min_value=1, max_value=9),
    chunk_bytes=st.sampled_from([1, 3, 16, 4096]),
    project=st.booleans(),
)
def test_shards_cut_from_a_coarse_index_hold_exactly_their_rows(
    files: list[bytes],
    quoted: bool,
    skip: int,
    capacity: int,
    rows_per_shard: int,
    chunk_bytes: int,
    project: bool,
) -> None:
    index = RowIndex(capacity=capacity, total_bytes=sum(map(len, files)) if project else 0)
    scanned = []
    for data in files:
        marks = index.file(size=len(data))
        s = scan(
            io.BytesIO(data), quoted=quoted, skip_records=skip, marks=marks, chunk_bytes=chunk_bytes
        )
        scanned.append((data, marks, s.rows))
    # The budget holds: each file's first mark, and at most ``capacity`` more.
    assert index.marks <= capacity + len(files)
    for data, marks, rows in scanned:
        assert marks.step == index.step
        expected = _records(data, quoted=quoted, skip=skip)
        assert rows == len(expected)
        got: list[tuple[int, bytes]] = []
        for r in marks.ranges(rows=rows, size=len(data), rows_per_shard=rows_per_shard):
            assert r.row_offset == len(got)
            held = _read_range(
                data, start=r.byte_start, end=r.byte_end, first_line=r.line_offset, quoted=quoted
            )
            if r.skip_rows is None:
                assert len(held) == r.row_count  # an exact range: nothing to skip
            else:
                assert r.skip_rows < marks.step
                held = list(islice(held, r.skip_rows, r.skip_rows + r.row_count))
            got += held
        # Line numbers included: dead rows name the right line.
        assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=600),
    capacity=st.integers(min_value=1, max_value=20),
    chunk_bytes=st.sampled_from([7, 64, 1000, 1 << 20]),
    project=st.booleans(),
)
def test_marks_of_a_file_without_blank_lines_are_where_their_rows_start(
    lengths: list[int], capacity: int, chunk_bytes: int, project: bool
) -> None:
    # No blank line: whole chunks take the counting walk, which coarsens as it goes.
    data = b"".join(b"x" * n + b"\n" for n in lengths)
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n + 1)
    index = RowIndex(capacity=capacity, total_bytes=len(data) if project else 0)
    marks = index.file(size=len(data))
    s = scan(io.BytesIO(data), quoted=False, marks=marks, chunk_bytes=chunk_bytes)
    assert s.rows == s.lines == len(lengths)
    assert len(marks) <= capacity + 1
    assert [(b.byte, b.line) for b in s.boundaries] == [
        (starts[r], r) for r in range(0, len(lengths), marks.step)
    ]


def test_the_step_series_divides_round_shard_sizes() -> None:
    index = RowIndex(capacity=1)
    marks = index.file()
    steps = []
    for row in range(30_000):
        if row % marks.step == 0:
            marks.add(row * 10, row)
            assert len(marks) <= 2  # the budget holds after every mark
        if not steps or steps[-1] != marks.step:
            steps.append(marks.step)
    assert steps == [1, 2, 10, 20, 100, 200, 1000, 2000, 10000, 20000]
    assert all(10_000 % s == 0 for s in steps[:-1])
    assert list(marks.bytes) == [0, 200_000] and list(marks.lines) == [0, 20_000]


def test_a_round_shard_size_on_a_large_file_is_exact() -> None:
    data = b"".join(b'{"text": "row %d"}\n' % i for i in range(100_000))
    index = RowIndex(total_bytes=len(data))
    s = scan(io.BytesIO(data), quoted=False, marks=index.file(size=len(data)), chunk_bytes=65536)
    assert s.rows == 100_000
    assert index.step == 10  # 100,000 rows in 16,384 marks: the finest step that fits
    ranges = list(index._files[0].ranges(rows=s.rows, size=len(data), rows_per_shard=5000))
    assert all(r.skip_rows is None for r in ranges)
    assert [r.byte_start for r in ranges[:3]] == [
        0,
        data.index(b'"row 5000"') - 9,
        data.index(b'"row 10000"') - 9,
    ]


def test_projection_skips_steps_it_would_outgrow() -> None:
    data = b"".join(b"%d\n" % i for i in range(400_000))
    added = 0

    class Counted(RowMarks):
        def add(self, byte: int, line: int) -> None:
            nonlocal added
            added += 1
            super().add(byte, line)

    counts = []
    for total_bytes in (0, len(data)):
        index = RowIndex(total_bytes=total_bytes)
        marks = Counted(step=index.step, index=index)
        index._files.append(marks)
        added = 0
        scan(io.BytesIO(data), quoted=False, marks=marks)
        assert index.step == 100  # the same resolution either way
        counts.append(added)
    without, projected = counts
    assert projected < 1.5 * index.capacity < 2.5 * index.capacity < without


def test_marks_refuse_a_step_that_is_not_a_multiple() -> None:
    marks = RowMarks(step=2)
    with pytest.raises(ValueError, match="step 5 is not a multiple of 2"):
        marks.coarsen(5)
    with pytest.raises(ValueError, match=r"step must be positive \(got 0\)"):
        RowMarks(step=0)
