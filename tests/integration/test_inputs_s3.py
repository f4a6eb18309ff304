"""Inputs on a real S3 API (moto server on loopback): listing, etags, sharding, ranged reads."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scheduler.inputs import open_input
from scheduler.recipe import InputSpec


def _put(bucket: str, key: str, data: bytes) -> None:
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).pipe(f"{bucket}/{key}", data)


@pytest.mark.slow
def test_jsonl_glob_on_s3(s3_server: Any) -> None:
    bucket = s3_server.new_bucket()
    rows = [{"id": f"r{i}", "text": f"line {i}"} for i in range(30)]
    _put(bucket, "in/a.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:12]).encode())
    _put(bucket, "in/b.jsonl", "".join(json.dumps(r) + "\r\n" for r in rows[12:]).encode())
    _put(bucket, "in/notes.txt", b"ignored")
    inp = open_input(InputSpec(path="x", id_column="id"), f"s3://{bucket}/in/*.jsonl")
    assert [f.url for f in inp.files] == [f"s3://{bucket}/in/a.jsonl", f"s3://{bucket}/in/b.jsonl"]
    assert all(f.version for f in inp.files)  # the ETag
    assert inp.total_rows == 30
    got: list[str] = []
    for shard in inp.shards(7):
        good, dead = inp.read(shard)
        assert not dead and len(good) == shard.row_count
        got += [r["id"] for r in good]
    assert got == [r["id"] for r in rows]
    before = inp.fingerprint()
    _put(bucket, "in/a.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:11]).encode())
    assert open_input(InputSpec(path="x"), f"s3://{bucket}/in/*.jsonl").fingerprint() != before


def test_parquet_directory_on_s3(s3_server: Any) -> None:
    bucket = s3_server.new_bucket()
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(20)]}), buf, row_group_size=6)
    _put(bucket, "data/part-0.parquet", buf.getvalue())
    _put(bucket, "data/_SUCCESS", b"")
    inp = open_input(InputSpec(path="x"), f"s3://{bucket}/data")
    assert inp.format == "parquet" and inp.total_rows == 20
    shards = inp.shards(12)
    assert [(s.row_offset, s.row_count) for s in shards] == [(0, 12), (12, 8)]
    texts = [r["text"] for s in shards for r in inp.read(s)[0]]
    assert texts == [f"t{i}" for i in range(20)]
    assert inp.read(shards[1])[0][0]["id"] == "part-0.parquet:12"
