"""Sharding speed and peak memory for JSONL and CSV inputs of a given size.

Writes a synthetic file (varied line lengths; CSV text fields quoted, some with commas),
then measures, each in a fresh pass: ``open_input`` (the one streamed pass: rows counted
and row marks noted), ``shards(rows_per_shard)`` (cut from those marks: no read), and
``read`` of one shard. Side by side, the floors the pass is held to: a bare read of the
file in the same chunks (``read_s``) and a counting scan that marks nothing (``count_s``,
what opening cost before it also indexed); ``÷read`` and ``÷count`` are open + shards over
those. Peak Python memory comes from ``tracemalloc`` in a separate pass (it slows
allocation, so it is not used for the timings).

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

from scheduler.inputs import CHUNK_BYTES, open_input, scan
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


def _floors(path: Path, fmt: str) -> tuple[float, float]:
    """Seconds to read the file in chunks, and to count its rows with no marks."""
    t0 = time.perf_counter()
    with path.open("rb") as f:
        while f.read(CHUNK_BYTES):
            pass
    t1 = time.perf_counter()
    with path.open("rb") as f:
        scan(f, every=None, quoted=fmt == "csv", skip_records=1 if fmt == "csv" else 0)
    return t1 - t0, time.perf_counter() - t1


def _warm_up(tmp: Path) -> None:
    """Open a one-row input first: the format readers' imports are not sharding time."""
    path = tmp / "warm.jsonl"
    path.write_text('{"id": 1, "text": "warm"}\n')
    open_input(InputSpec(path=str(path), id_column="id"), str(path)).shards(1)
    path.unlink()


def measure(path: Path, rows_per_shard: int) -> dict[str, Any]:
    spec = InputSpec(path=str(path), id_column="id")
    size_mb = path.stat().st_size / 1e6
    read_s, count_s = _floors(path, path.suffix[1:])
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
        # Shards whose byte range holds exactly their rows (before the one-pass index, all).
        "exact": sum(getattr(s, "skip_rows", None) is None for s in shards),
        "open_s": round(t1 - t0, 3),
        "shards_s": round(t2 - t1, 3),
        "total_mb_per_s": round(size_mb / (t2 - t0), 1),
        "read_s": round(read_s, 3),
        "count_s": round(count_s, 3),
        "÷read": round((t2 - t0) / read_s, 2),
        "÷count": round((t2 - t0) / count_s, 2),
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
        _warm_up(Path(tmp))
        for fmt in formats:
            path = Path(tmp) / f"bench.{fmt}"
            write_input(path, fmt, int(args.mb * 1e6))
            results.append(measure(path, args.rows_per_shard))
            path.unlink()
    if args.json:
        print(json.dumps({"rows_per_shard": args.rows_per_shard, "results": results}))
        return
    cols = list(results[0])
    widths = [max(len(c), *(len(str(r[c])) for r in results)) for c in cols]
    print("  ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)))
    for r in results:
        print("  ".join(f"{r[c]!s:>{w}}" for c, w in zip(cols, widths, strict=True)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
