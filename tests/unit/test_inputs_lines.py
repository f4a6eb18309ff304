"""The streamed line index agrees with the record reader, whatever the chunking."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.inputs._lines import _advance, iter_lines, iter_records, scan

# Few distinct bytes so that blank lines, CRLF, quotes and empty lines are common.
texts = st.lists(st.sampled_from([b"a", b"\n", b" ", b"\r", b'"', b",", b"\t"]), max_size=150).map(
    b"".join
)


def records(data: bytes, *, quoted: bool, chunk_bytes: int) -> list[tuple[int, bytes]]:
    fh = io.BytesIO(data)
    return list(
        iter_records(iter_lines(fh, start=0, end=None, chunk_bytes=chunk_bytes), quoted=quoted)
    )


@settings(max_examples=400, deadline=None)
@given(
    data=texts,
    quoted=st.booleans(),
    skip=st.sampled_from([0, 1]),
    every=st.sampled_from([None, 1, 2, 3, 50]),
    chunk_bytes=st.sampled_from([1, 2, 3, 7, 16, 64, 200]),
)
def test_scanner_matches_record_reader(
    data: bytes, quoted: bool, skip: int, every: int | None, chunk_bytes: int
) -> None:
    s = scan(
        io.BytesIO(data), every=every, quoted=quoted, skip_records=skip, chunk_bytes=chunk_bytes
    )
    recs = records(data, quoted=quoted, chunk_bytes=chunk_bytes)
    rows = recs[skip:]
    assert s.rows == len(rows)
    assert s.lines == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    line_starts = [0] + [i + 1 for i, c in enumerate(data) if c == ord("\n")]
    if every is not None:
        expected = [(i, line_starts[rows[i][0]], rows[i][0]) for i in range(0, len(rows), every)]
        assert [(b.row, b.byte, b.line) for b in s.boundaries] == expected
    else:
        assert s.boundaries == []
    if skip and recs:
        # data_start is just after the header record's last line.
        header_line, header = recs[0]
        end_line = header_line + header.count(b"\n") + 1
        assert s.data_start == (line_starts[end_line] if end_line < len(line_starts) else len(data))


@settings(max_examples=200, deadline=None)
@given(
    table=st.lists(
        st.lists(st.text(alphabet='ab ,"\n\r\t', max_size=8), min_size=2, max_size=2),
        max_size=12,
    ),
    chunk_bytes=st.sampled_from([1, 5, 64]),
    every=st.sampled_from([1, 2, 5]),
)
def test_csv_rows_match_the_csv_module(
    table: list[list[str]], chunk_bytes: int, every: int
) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([["id", "text"], *table])
    data = buf.getvalue().encode()
    # The csv module's own reading of those rows, skipping blank lines like skybatch does.
    expected = [r for r in csv.reader(io.StringIO(buf.getvalue(), newline="")) if r][1:]
    # A record whose every field is empty writes as a blank line: not a row either way.
    s = scan(io.BytesIO(data), every=every, quoted=True, skip_records=1, chunk_bytes=chunk_bytes)
    assert s.rows == len(expected)
    # Each boundary is where a record starts, and the records read back are the rows.
    for b in s.boundaries:
        fh = io.BytesIO(data)
        fh.seek(b.byte)
        first = next(iter_records(iter_lines(fh, start=b.byte, end=None), quoted=True))[1]
        assert next(csv.reader(io.StringIO(first.decode(), newline=""))) == expected[b.row]


def test_big_chunks_take_the_fast_path_and_agree() -> None:
    lines = [b'{"text": "row %d"}' % i for i in range(10_000)]
    lines[5000:5000] = [b"", b"   ", b"\r"]
    data = b"\n".join(lines) + b"\n"
    s = scan(io.BytesIO(data), every=1000, quoted=False, chunk_bytes=4096)
    assert s.rows == 10_000
    assert [b.row for b in s.boundaries] == list(range(0, 10_000, 1000))
    assert [b.byte for b in s.boundaries] == [
        data.index(b'"row %d"' % r) - 9 for r in range(0, 10_000, 1000)
    ]


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=400),
    line_bytes=st.sampled_from([0.01, 1.0, 40.0, 150.0, 5000.0]),
    data=st.data(),
)
def test_advancing_past_newlines_matches_stepping(
    lengths: list[int], line_bytes: float, data: st.DataObject
) -> None:
    chunk = b"".join(b"x" * n + b"\n" for n in lengths)
    pos = data.draw(st.integers(min_value=0, max_value=len(chunk) - 1), label="start byte")
    n = data.draw(st.integers(min_value=1, max_value=len(lengths) + 5), label="n")
    expected, passed = pos, 0
    while passed < n and (found := chunk.find(b"\n", expected)) >= 0:
        expected, passed = found + 1, passed + 1
    got_pos, got_passed, estimate = _advance(chunk, pos, len(chunk), n, line_bytes)
    assert (got_pos, got_passed) == (expected, passed)
    assert estimate > 0


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=120), min_size=50, max_size=1500),
    every=st.sampled_from([17, 40, 100, 333]),
    chunk_bytes=st.sampled_from([512, 4096, 65536]),
)
def test_boundaries_in_long_chunks(lengths: list[int], every: int, chunk_bytes: int) -> None:
    data = b"".join(b"y" * n + b"\n" for n in lengths)
    s = scan(io.BytesIO(data), every=every, quoted=False, chunk_bytes=chunk_bytes)
    starts = [0]
    for n in lengths[:-1]:
        starts.append(starts[-1] + n + 1)
    assert s.rows == len(lengths)
    assert [(b.row, b.byte) for b in s.boundaries] == [
        (r, starts[r]) for r in range(0, len(lengths), every)
    ]
