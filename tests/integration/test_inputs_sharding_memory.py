"""Sharding a ~200 MB JSONL file holds a few chunks in memory, never the file."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path

import pytest

from scheduler.inputs import CHUNK_BYTES, open_input
from scheduler.recipe import InputSpec

TARGET_BYTES = 200_000_000


def _write_big_jsonl(path: Path) -> int:
    """Lines of varied length (so boundary search meets uneven lines), a few blank lines."""
    words = ["the", "planner", "reads", "prices", "and", "picks", "the", "cheapest", "offer"]
    block = b"".join(
        json.dumps({"i": i, "text": " ".join(words[: 3 + i % 11]) * (1 + i % 5)}).encode() + b"\n"
        for i in range(20_000)
    )
    rows = 0
    with path.open("wb") as f:
        while f.tell() < TARGET_BYTES:
            f.write(block)
            rows += 20_000
            if rows % 200_000 == 0:
                f.write(b"\n  \n")  # blank lines: not rows
    return rows


@pytest.mark.slow
def test_sharding_200mb_jsonl_keeps_memory_small(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    rows = _write_big_jsonl(path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        inp = open_input(InputSpec(path=str(path)), str(path))
        shards = inp.shards(5_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert inp.total_rows == rows
    assert sum(s.row_count for s in shards) == rows
    # A few chunks at a time; the file is 200 MB.
    assert peak < 4 * CHUNK_BYTES, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
    # Every shard starts at the start of a line, and the ranges tile the file.
    with path.open("rb") as f:
        for s in shards[:: max(1, len(shards) // 50)]:
            assert s.byte_start is not None
            f.seek(max(0, s.byte_start - 1))
            assert s.byte_start == 0 or f.read(1) == b"\n"
            assert json.loads(f.readline())["i"] == s.row_offset % 20_000
    assert shards[-1].byte_end == size
    assert all(a.byte_end == b.byte_start for a, b in itertools.pairwise(shards))
