"""Per-shard overhead of the run store: local directory vs S3 (moto server on loopback).

For each shard a worker pays claim + write_output + verify + commit on top of inference.
This measures exactly those four calls over N shards of R rows with a 384-float32
embedding column (what all-MiniLM-L6-v2 produces), on a local temporary directory and on
``s3://`` through s3fs against a moto S3 server started in a subprocess on 127.0.0.1, and
prints the two side by side (median and p95 in ms, and the S3/local ratio).

    python benchmarks/bench_store.py                 # 200 shards × 500 rows
    python benchmarks/bench_store.py --shards 50 --json

Loopback S3 has no network latency, so the S3 column is a lower bound for a real bucket
(add one round trip per request: claim = 3-4 requests, write 1, verify 1-2, commit 2-3).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.store import DoneMarker, RunStore, digest_ids

OPS = ("claim", "write_output", "verify", "commit")


def make_table(shard: int, rows: int, dim: int, rng: np.random.Generator) -> pa.Table:
    ids = [f"s{shard:05d}-r{j}" for j in range(rows)]
    emb = rng.standard_normal((rows, dim), dtype=np.float32)
    emb_col = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim)
    return pa.table({"id": ids, "embedding": emb_col, "model_revision": ["bench"] * rows})


def open_run(url: str, tables: list[pa.Table]) -> RunStore:
    store = RunStore(url, "bench")
    manifest = [
        {"shard_id": f"s{i:05d}", "file": "x", "offset": 0, "row_count": t.num_rows}
        for i, t in enumerate(tables)
    ]
    store.ensure(
        {"input_fingerprint": "f", "model_revision": None, "recipe_digest": "d"},
        lambda: manifest,
    )
    store.check_conformance()
    return store


def one_shard(store: RunStore, i: int, table: pa.Table, times: dict[str, list[float]]) -> None:
    """claim → write_output → verify → commit for one shard; records ms per op."""
    sid = f"s{i:05d}"
    t0 = time.perf_counter()
    lease = store.claim(sid, "bench-worker", ttl_s=600)
    t1 = time.perf_counter()
    if lease is None:
        raise RuntimeError(f"could not claim {sid}")
    out = store.write_output(lease, table)
    t2 = time.perf_counter()
    store.verify(out)
    t3 = time.perf_counter()
    ids = table.column("id").to_pylist()
    won = store.commit(
        DoneMarker(
            shard_id=sid,
            attempt=lease.attempt,
            attempt_id=lease.attempt_id,
            worker=lease.worker,
            out_file=out.path,
            out_size=out.size,
            out_sha256=out.sha256,
            dead_file=None,
            rows_in=len(ids),
            rows_out=len(ids),
            rows_dead=0,
            ids_digest=digest_ids(ids),
        )
    )
    t4 = time.perf_counter()
    if not won:
        raise RuntimeError(f"commit of {sid} lost with a single worker")
    for op, dt in zip((*OPS, "total"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
        times[op].append(dt * 1000)


def encode_ms(table: pa.Table) -> float:
    """CPU time of the Parquet (zstd) encoding inside write_output, for reference."""
    t0 = time.perf_counter()
    pq.write_table(table, io.BytesIO(), compression="zstd")
    return (time.perf_counter() - t0) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in a subprocess on loopback; yields its endpoint URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=200)
    parser.add_argument("--rows", type=int, default=500, help="rows per shard")
    parser.add_argument("--dim", type=int, default=384, help="embedding width (float32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    tables = [make_table(i, args.rows, args.dim, rng) for i in range(args.shards)]

    tmp = tempfile.mkdtemp(prefix="skybatch-bench-store-")
    local: dict[str, list[float]] = {op: [] for op in (*OPS, "total")}
    s3: dict[str, list[float]] = {op: [] for op in (*OPS, "total")}
    encode: list[float] = []
    try:
        with moto_server() as endpoint:
            os.environ.update(
                AWS_ENDPOINT_URL=endpoint,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
            )
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            local_store = open_run(tmp, tables)
            s3_store = open_run("s3://bench/runs", tables)
            # Interleaved shard by shard, so a busy neighbour on a shared machine slows
            # both columns alike instead of whichever ran second.
            for i, table in enumerate(tables):
                one_shard(local_store, i, table, local)
                one_shard(s3_store, i, table, s3)
                encode.append(encode_ms(table))
            for store in (local_store, s3_store):
                if len(store.markers()) != len(tables):
                    raise RuntimeError(f"not every shard is committed in {store.url}")
        out_bytes = sum(p.stat().st_size for p in Path(tmp, "bench", "out").iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "shards": args.shards,
        "rows_per_shard": args.rows,
        "dim": args.dim,
        "mb_per_shard": round(out_bytes / args.shards / 1e6, 3),
        "parquet_encode_median_ms": round(statistics.median(encode), 3),
        "ops": {
            op: {
                "local_median_ms": round(statistics.median(local[op]), 3),
                "local_p95_ms": round(pct(local[op], 95), 3),
                "s3_median_ms": round(statistics.median(s3[op]), 3),
                "s3_p95_ms": round(pct(s3[op], 95), 3),
                "ratio_median": round(statistics.median(s3[op]) / statistics.median(local[op]), 2),
            }
            for op in (*OPS, "total")
        },
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"run-store overhead per shard: {args.shards} shards x {args.rows} rows, "
        f"{args.dim}-float32 embeddings, {result['mb_per_shard']} MB Parquet (zstd) per shard"
    )
    print(
        f"{'op':<14}{'local med':>11}{'local p95':>11}{'S3 med':>10}{'S3 p95':>10}{'S3/local':>10}"
    )
    for op, row in result["ops"].items():
        print(
            f"{op:<14}{row['local_median_ms']:>9.2f}ms{row['local_p95_ms']:>9.2f}ms"
            f"{row['s3_median_ms']:>8.2f}ms{row['s3_p95_ms']:>8.2f}ms{row['ratio_median']:>9.1f}x"
        )
    print(
        f"write_output includes Parquet zstd encoding: {result['parquet_encode_median_ms']:.2f} ms "
        "median (CPU, the same on both)."
    )
    print("S3 = moto server on 127.0.0.1 through s3fs (no network latency: a lower bound).")


if __name__ == "__main__":
    main()
