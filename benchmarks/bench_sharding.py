"""Sharding speed and peak memory for JSONL and CSV inputs of a given size.

Writes a synthetic file (varied line lengths; CSV text fields quoted, some with commas),
then measures, each in a fresh pass: ``open_input`` (one streamed count of the rows),
``shards(rows_per_shard)`` (the streamed line index), and ``read`` of one shard. Peak
Python memory comes from ``tracemalloc`` in a separate pass (it slows allocation, so it
is not used for the timings).

    python benchmarks/bench_sharding.py                       # 200 MB, jsonl and csv
    python benchmarks/bench_sharding.py --mb 1000 --rows-per-shard 500 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from scheduler.inputs import open_input
from scheduler.recipe import InputSpec

_WORDS = ["the", "planner", "reads", "prices,", "and", "picks", "a", "cheap", "offering"]


def _line(i: int, fmt: str) -> bytes:
    text = " ".join(_WORDS[: 2 + i % 8]) * (1 + i % 4)
    if fmt == "csv":
        return f'{i},"{text}",{i % 7}\n'.encode()
    return (json.dumps({"id": i, "text": text, "k": i % 7}) + "\n").encode()


def write_input(path: Path, fmt: str, target_bytes: int) -> None:
    block = b"".join(_line(i, fmt) for i in range(10_000))
    with path.open("wb") as f:
        if fmt == "csv":
            f.write(b"id,text,k\n")
        while f.tell() < target_bytes:
            f.write(block)


def measure(path: Path, rows_per_shard: int) -> dict[str, Any]:
    spec = InputSpec(path=str(path), id_column="id")
    size_mb = path.stat().st_size / 1e6
    t0 = time.perf_counter()
    inp = open_input(spec, str(path))
    t1 = time.perf_counter()
    shards = inp.shards(rows_per_shard)
    t2 = time.perf_counter()
    rows, dead = inp.read(shards[len(shards) // 2])
    t3 = time.perf_counter()
    assert not dead and len(rows) == shards[len(shards) // 2].row_count
    tracemalloc.start()
    open_input(spec, str(path)).shards(rows_per_shard)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "format": inp.format,
        "file_mb": round(size_mb, 1),
        "rows": inp.total_rows,
        "shards": len(shards),
        "open_s": round(t1 - t0, 3),
        "open_mb_per_s": round(size_mb / (t1 - t0), 1),
        "shards_s": round(t2 - t1, 3),
        "shards_mb_per_s": round(size_mb / (t2 - t1), 1),
        "read_one_shard_ms": round((t3 - t2) * 1000, 1),
        "peak_mb": round(peak / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="file size in MB (default 200)")
    parser.add_argument("--rows-per-shard", type=int, default=5000)
    parser.add_argument("--format", choices=["jsonl", "csv", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    formats = ["jsonl", "csv"] if args.format == "both" else [args.format]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            path = Path(tmp) / f"bench.{fmt}"
            write_input(path, fmt, int(args.mb * 1e6))
            results.append(measure(path, args.rows_per_shard))
            path.unlink()
    if args.json:
        print(json.dumps({"rows_per_shard": args.rows_per_shard, "results": results}))
        return
    cols = list(results[0])
    print(" ".join(f"{c:>17}" for c in cols))
    for r in results:
        print(" ".join(f"{r[c]!s:>17}" for c in cols))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
