"""Opening, counting, fingerprinting and sharding a text input reads its bytes once.

The input lives on an in-memory filesystem registered with fsspec (the seam every input,
local or remote, goes through) whose files count the bytes they hand out, so the test
sees every byte each step reads. Before the one-pass index, sharding a JSONL or CSV file
streamed it a second time after counting (twice its size read).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from scheduler.errors import InputError
from scheduler.inputs import open_input
from scheduler.recipe import InputSpec

# A prefix read may look at the head of a file (the CSV header, a text-column check on the
# first rows): a few KiB, never a second pass.
PREFIX_BYTES = 8 * 1024


class CountingFile(io.BytesIO):
    """A file of :class:`CountingFS`: adds every byte it returns to the filesystem's tally."""

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        CountingFS.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1, /) -> bytes:
        data = super().readline(size)
        CountingFS.bytes_read += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("iterate through readline, so that every byte is counted")


class CountingFS(MemoryFileSystem):
    """An in-memory filesystem whose files count the bytes read from them."""

    protocol = "countbytes"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    bytes_read = 0
    opens = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        f = super()._open(path, mode, **kwargs)
        if mode == "rb":
            CountingFS.opens += 1
            return CountingFile(f.getvalue())
        return f


@pytest.fixture(autouse=True)
def counting_fs() -> Iterator[None]:
    fsspec.register_implementation("countbytes", CountingFS, clobber=True)
    CountingFS.store.clear()
    CountingFS.bytes_read = CountingFS.opens = 0
    yield
    CountingFS.store.clear()


def _put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as f:
        f.write(data)
    CountingFS.bytes_read = CountingFS.opens = 0


def _jsonl(n: int) -> bytes:
    lines = [
        json.dumps({"id": f"d{i}", "text": f"sentence number {i} " * (1 + i % 4)}) for i in range(n)
    ]
    lines[n // 3] = "{not json"  # a dead row: still a row, still counted
    lines.insert(n // 2, "   ")  # a blank line: not a row
    return ("\n".join(lines) + "\n").encode()


def _csv(n: int) -> bytes:
    lines = ["id,text"] + [f'd{i},"sentence, {i}\nwith a line break"' for i in range(n)]
    return ("\r\n".join(lines) + "\r\n").encode()


def _batch(n: int) -> bytes:
    def request(i: int) -> str:
        body = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
        return json.dumps({"custom_id": f"q{i}", "method": "POST", "body": body})

    return "".join(request(i) + "\n" for i in range(n)).encode()


CASES = [
    ("docs.jsonl", _jsonl, InputSpec(path="unused", id_column="id")),
    ("docs.csv", _csv, InputSpec(path="unused", id_column="id")),
    ("batch.jsonl", _batch, InputSpec(path="unused", format="openai-batch")),
]


@pytest.mark.parametrize(("name", "make", "spec"), CASES)
@pytest.mark.parametrize("rows", [3_000, 40_000])  # the second outgrows a one-row-step index
def test_open_count_fingerprint_and_shard_read_the_file_once(
    name: str, make: Any, spec: InputSpec, rows: int
) -> None:
    data = make(rows)
    url = f"countbytes://in/{name}"
    _put(url, data)

    inp = open_input(spec, url)
    inp.fingerprint()
    opens = CountingFS.opens
    shards = inp.shards(777)
    assert CountingFS.opens == opens  # sharding opens nothing: the pass left the index
    assert inp.total_rows == rows
    assert sum(s.row_count for s in shards) == rows
    read_to_shard = CountingFS.bytes_read
    assert len(data) <= read_to_shard <= len(data) + PREFIX_BYTES, (
        f"{read_to_shard} bytes read to open, count, fingerprint and shard a {len(data)}-byte file"
    )

    # Reading every shard reads about the file once more, not once per shard.
    CountingFS.bytes_read = 0
    seen = 0
    for shard in shards:
        good, dead = inp.read(shard)
        assert len(good) + len(dead) == shard.row_count
        seen += shard.row_count
    assert seen == rows
    header = 4096 if name.endswith(".csv") else 0  # each read parses the header
    assert CountingFS.bytes_read <= 1.05 * len(data) + len(shards) * header


def test_a_repeated_custom_id_is_still_caught_in_the_one_pass() -> None:
    data = _batch(5_000) + _batch(1)  # q0 again, on the last line
    _put("countbytes://in/batch.jsonl", data)
    with pytest.raises(
        InputError,
        match=r"duplicate custom_id 'q0' at countbytes://in/batch\.jsonl line 1 and "
        r"countbytes://in/batch\.jsonl line 5001; custom_id must be unique",
    ):
        open_input(InputSpec(path="unused", format="openai-batch"), "countbytes://in/batch.jsonl")
    assert CountingFS.bytes_read <= len(data)


def test_parquet_shards_come_from_the_footer_that_counting_read() -> None:
    table = pa.Table.from_pylist([{"id": i, "text": f"t{i}"} for i in range(1_000)])
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=100)
    _put("countbytes://in/docs.parquet", buf.getvalue())
    inp = open_input(InputSpec(path="unused", id_column="id"), "countbytes://in/docs.parquet")
    opens = CountingFS.opens
    shards = inp.shards(250)
    assert CountingFS.opens == opens
    assert [(s.row_offset, s.row_count) for s in shards] == [
        (0, 200),
        (200, 200),
        (400, 200),
        (600, 200),
        (800, 200),
    ]
    assert [r["id"] for r in inp.read(shards[1])[0]][:2] == ["200", "201"]
