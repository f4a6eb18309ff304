"""The run store on S3: a real S3 API (moto in server mode on loopback) through s3fs.

The store is opened as ``s3://<bucket>/runs`` with nothing but the standard AWS
environment (``AWS_ENDPOINT_URL`` and credentials, set by the ``s3_server`` fixture): that
is how a user points skybatch at any S3-compatible endpoint.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import pyarrow as pa
import pytest

from scheduler.store import (
    DoneMarker,
    Lease,
    RunState,
    RunStore,
    ShardState,
    digest_ids,
    iter_runs,
    read_status,
)

pytestmark = pytest.mark.slow

T0 = 1_700_000_000.0
TTL = 60.0


def run_info(**over: Any) -> dict[str, Any]:
    return {
        "input_fingerprint": "fp",
        "model": "m",
        "model_revision": "r",
        "recipe_digest": "d",
        "recipe": {"name": "s3t", "limits": {"max_error_rate": 0.01}},
        **over,
    }


def manifest(n: int, rows: int = 10) -> list[dict[str, Any]]:
    return [
        {"shard_id": f"s{i:05d}", "file": "in.jsonl", "offset": i * rows, "row_count": rows}
        for i in range(n)
    ]


def fresh_process_view(url: str, run_id: str) -> RunStore:
    """A RunStore with its own s3fs instance (own listing cache), as another process has."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return RunStore(url, run_id)


def mark(store: RunStore, lease: Lease, rows: int = 10) -> DoneMarker:
    ids = [f"{lease.shard_id}-r{j}" for j in range(rows)]
    out = store.write_output(lease, pa.table({"id": ids}))
    store.verify(out)
    return DoneMarker(
        shard_id=lease.shard_id,
        attempt=lease.attempt,
        attempt_id=lease.attempt_id,
        worker=lease.worker,
        out_file=out.path,
        out_size=out.size,
        out_sha256=out.sha256,
        dead_file=None,
        rows_in=rows,
        rows_out=rows,
        rows_dead=0,
        ids_digest=digest_ids(ids),
    )


def test_store_opens_through_the_standard_endpoint_variable(s3_server: Any) -> None:
    import boto3

    bucket = s3_server.new_bucket()
    store = RunStore(f"s3://{bucket}/runs", "run-1")
    assert store.local is False
    assert store.ensure(run_info(), lambda: manifest(2)) is True
    # The objects are really in the server's bucket, under the contract's layout.
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(
            Bucket=bucket
        )["Contents"]
    }
    assert keys == {"runs/run-1/run.json", "runs/run-1/manifest.parquet"}
    assert [s["shard_id"] for s in store.read_manifest()] == ["s00000", "s00001"]
    assert list(iter_runs(f"s3://{bucket}/runs")) == ["run-1"]


def test_s3fs_exclusive_create_refuses_the_second_and_conformance_passes(
    s3_store_url: str,
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    path = s3_store_url.removeprefix("s3://") + "/probe.json"
    with fs.open(path, "xb") as f:
        f.write(b"first")
    with pytest.raises(FileExistsError), fs.open(path, "xb") as f:
        f.write(b"second")
    assert fs.cat_file(path) == b"first"
    store = RunStore(s3_store_url, "run-1")
    store.check_conformance()
    assert not store.fs.exists(store.path("_conformance"))


def test_commit_race_on_s3_has_one_winner(s3_store_url: str) -> None:
    a = RunStore(s3_store_url, "run-1")
    a.ensure(run_info(), lambda: manifest(1))
    b = fresh_process_view(s3_store_url, "run-1")
    la = a.claim("s00000", "wa", ttl_s=TTL, now=T0)
    assert b.claim("s00000", "wb", ttl_s=TTL, now=T0 + 1) is None  # b first sees it live
    lb = b.claim("s00000", "wb", ttl_s=TTL, now=T0 + 2 * TTL)  # takeover of an expired lease
    assert la is not None and lb is not None
    ma, mb = mark(a, la), mark(b, lb)
    assert b.commit(mb) is True
    assert a.commit(ma) is False
    assert not a.fs.exists(a.path(ma.out_file))
    assert fresh_process_view(s3_store_url, "run-1").read_marker("s00000") == mb
    assert a.commit(ma) is False and b.commit(mb) is True  # asking again: same answers


def _race(url: str, worker: str, shards: int, barrier: Any, results: Any) -> None:
    store = RunStore(url, "race")
    won = []
    for i in range(shards):
        lease = Lease(f"s{i:05d}", worker, 1, os.urandom(8).hex(), T0 + TTL)
        marker = mark(store, lease)
        barrier.wait()
        if store.commit(marker):
            won.append(lease.shard_id)
    results.put((worker, won))


def test_two_processes_race_to_commit_on_s3(s3_store_url: str) -> None:
    shards = 15
    RunStore(s3_store_url, "race").ensure(run_info(), lambda: manifest(shards))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(s3_store_url, w, shards, barrier, results))
        for w in ("pa", "pb")
    ]
    for p in procs:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sorted(outcome["pa"] + outcome["pb"]) == [f"s{i:05d}" for i in range(shards)]
    markers = fresh_process_view(s3_store_url, "race").markers()
    assert {sid: m.worker for sid, m in markers.items()} == {
        sid: w for w, won in outcome.items() for sid in won
    }


def test_claims_heartbeats_and_events_on_s3(s3_store_url: str) -> None:
    store = RunStore(s3_store_url, "run-1")
    store.ensure(run_info(), lambda: manifest(3))
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    assert store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 1) is None
    renewed = store.renew(lease, ttl_s=TTL, now=T0 + 30)
    assert renewed is not None
    assert store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 31) is None  # renewed: seen anew
    taken = store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 31 + TTL)
    assert taken is not None and taken.attempt == 2
    assert store.renew(renewed, ttl_s=TTL, now=T0 + 100) is None
    store.release(taken, error="OOM")
    assert store.claims()["s00000"].failures == 1
    store.heartbeat("w1", {"usd_per_hour": 1.5, "rows_done": 7})
    store.log_event("scale", "added 1 worker", workers=2)
    other = fresh_process_view(s3_store_url, "run-1")
    assert other.workers()["w1"].rows_done == 7
    assert [e["message"] for e in other.events()] == ["added 1 worker"]


def test_listings_and_reads_stay_fresh_across_processes(s3_store_url: str) -> None:
    """s3fs caches directory listings per filesystem instance; a worker that listed
    ``done/`` must still see a marker another worker committed after that listing,
    or it re-runs a finished shard (wasted work) and reads stale claims."""
    a = RunStore(s3_store_url, "run-1")
    a.ensure(run_info(), lambda: manifest(4))
    la = a.claim("s00002", "wa", ttl_s=TTL, now=T0)
    assert la is not None and a.commit(mark(a, la)) is True
    assert a.claim("s00003", "wa", ttl_s=TTL, now=T0) is not None
    a.heartbeat("wa", {"rows_done": 10})
    b = fresh_process_view(s3_store_url, "run-1")
    # a lists done/, claims/ and workers/: s3fs now holds those listings in its cache.
    assert a.done_shards() == ["s00002"] and sorted(a.claims()) == ["s00003"]
    assert sorted(a.workers()) == ["wa"]
    lb = b.claim("s00000", "wb", ttl_s=TTL, now=T0)
    assert lb is not None
    assert b.commit(mark(b, lb)) is True
    lb1 = b.claim("s00001", "wb", ttl_s=TTL, now=T0)
    assert lb1 is not None
    b.heartbeat("wb", {"rows_done": 10})

    assert a.is_done("s00000") is True
    assert a.claim("s00000", "wa", ttl_s=TTL, now=T0 + 1) is None
    assert a.read_marker("s00000") is not None
    assert a.read_claim("s00001") is not None
    assert a.claim("s00001", "wa", ttl_s=TTL, now=T0 + 1) is None  # b's live lease
    assert a.done_shards() == ["s00000", "s00002"]
    assert sorted(a.claims()) == ["s00001", "s00003"]
    assert sorted(a.workers()) == ["wa", "wb"]


def test_read_status_on_s3(s3_store_url: str) -> None:
    store = RunStore(s3_store_url, "run-1")
    store.ensure(run_info(), lambda: manifest(4))
    for sid in ("s00000", "s00001"):
        lease = store.claim(sid, "w1", ttl_s=TTL, now=T0)
        assert lease is not None
        assert store.commit(mark(store, lease))
    assert store.claim("s00002", "w1", ttl_s=TTL, now=T0) is not None
    status = read_status(fresh_process_view(s3_store_url, "run-1"), now=T0 + 1)
    assert (status.shards_total, status.shards_done, status.shards_claimed) == (4, 2, 1)
    assert (status.rows_total, status.rows_done, status.rows_out) == (40, 20, 20)
    assert status.shard_states == [
        ShardState.DONE,
        ShardState.DONE,
        ShardState.CLAIMED,
        ShardState.PENDING,
    ]
    assert status.state is RunState.STOPPED  # work done, none left running, no heartbeat
    assert status.balanced


def test_bulk_reads_on_s3_skip_torn_and_empty_documents(s3_store_url: str) -> None:
    store = RunStore(s3_store_url, "run-1")
    store.ensure(run_info(), lambda: manifest(25))
    for i in range(25):
        lease = store.claim(f"s{i:05d}", f"w{i % 3}", ttl_s=TTL, now=T0)
        assert lease is not None and store.commit(mark(store, lease))
    for i in range(3):
        store.heartbeat(f"w{i}", {"rows_done": i})
        store.log_event("note", f"event {i}")
    assert store.claim("s00000", "w9", ttl_s=TTL, now=T0) is None
    store.fs.pipe_file(store.path("claims/torn.json"), b'{"worker": "w1", "exp')
    store.fs.pipe_file(store.path("claims/empty.json"), b"")
    store.fs.pipe_file(store.path("claims/live.json"), b'{"worker": "w2", "expires_at": 1}')
    reader = fresh_process_view(s3_store_url, "run-1")
    markers = reader.markers()
    assert sorted(markers) == [f"s{i:05d}" for i in range(25)]
    assert {sid: m.worker for sid, m in markers.items()} == {
        f"s{i:05d}": f"w{i % 3}" for i in range(25)
    }
    assert {s: (c.worker, c.expires_at) for s, c in reader.claims().items()} == {"live": ("w2", 1)}
    assert {w: d.rows_done for w, d in reader.workers().items()} == {"w0": 0, "w1": 1, "w2": 2}
    assert [e["message"] for e in reader.events(limit=2)] == ["event 1", "event 2"]
    status = read_status(reader, now=T0)
    assert status.shards_done == 25 and status.rows_done == 250
