"""Exactly-once under damage: corruption, clock skew and store outages, rows accounted for.

Each scenario runs real workers (in threads, each with its own ``RunStore`` view, as
separate processes have; a tiny echo engine that dead-letters every 37th row) on a real
store, does damage, recovers the way a user would, and then counts, from the committed
outputs and dead rows alone: rows in, out, dead, lost (input ids in neither) and
duplicated (ids committed more than once). The contract says lost = duplicated = 0.

    python benchmarks/bench_chaos.py                  # 1,200 rows, 24 shards, 3 workers
    python benchmarks/bench_chaos.py --rows 4000 --json

Scenarios: ``baseline`` and ``s3-baseline`` (no damage, for the wall-time ratios);
``corruption`` (a flipped byte, another shard's output
copied over one, a truncated output, a deleted dead-row file; ``results`` must refuse,
``verify --repair`` quarantines, a resume redoes them); ``clock-skew`` (two workers an hour
fast and an hour slow die holding shards; the run must finish within about one lease, not
an hour); ``s3-transient`` (moto behind a fault-injecting proxy: 503s, then dropped
connections, then 20% flaky connections, mid-run); ``s3-outage`` (the store gone past the
retry budget: workers exit 4, then it comes back and the run resumes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.engines.base import Result, Row, RowFailure
from scheduler.errors import StoreError
from scheduler.recipe import recipe_from_dict
from scheduler.results import query_results
from scheduler.runs import prepare_run
from scheduler.store import RunStore, quarantine, verify_run
from scheduler.worker import Worker

TTL_S = 3.0


class Echo:
    """The engine: a length per row; every 37th row is rejected (a dead row)."""

    whole_shard = False

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def infer(self, rows: list[Row]) -> list[Result]:
        time.sleep(self.delay_s)
        return [
            RowFailure("rejected") if int(r["id"][1:]) % 37 == 0 else {"n": len(r["text"])}
            for r in rows
        ]

    def describe(self) -> dict[str, Any]:
        return {"engine": "echo", "revision": "bench", "accelerator": "cpu"}

    def close(self) -> None:
        pass


def make_run(work: Path, url: str, rows: int, per_shard: int) -> RunStore:
    data = work / "rows.jsonl"
    if not data.exists():
        data.write_text(
            "".join(
                json.dumps({"id": f"r{i:06d}", "text": "x" * (i % 50)}) + "\n" for i in range(rows)
            )
        )
    recipe = recipe_from_dict(
        {
            "name": "chaos",
            "input": {"path": str(data), "id_column": "id"},
            "task": "score",
            "model": {"engine": "python", "name": "m:f", "batch_size": 20},
            "shards": {"rows_per_shard": per_shard},
            "limits": {"retries": 3, "lease_ttl": f"{TTL_S}s", "max_error_rate": 0.5},
        },
        source=str(work / "chaos.yaml"),
    )
    return prepare_run(recipe, store_url=url)


def work_until_done(store: RunStore, workers: int, *, delay_s: float = 0.002) -> list[int]:
    """Run ``workers`` workers to the end (restarting any that exit early); exit codes."""
    codes: list[int] = []

    def one(i: int) -> None:
        view = RunStore(store.url, store.run_id)
        w = Worker(view, worker_id=f"bench-{os.getpid()}-{i}",
                   engine_factory=lambda _: Echo(delay_s), heartbeat_s=0.5)  # fmt: skip
        codes.append(w.run())

    deadline = time.monotonic() + 300
    while True:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        manifest = store.read_manifest()
        if len(RunStore(store.url, store.run_id).done_shards()) == len(manifest):
            return codes
        if time.monotonic() > deadline:
            raise RuntimeError("the run did not finish in 300 s")
        time.sleep(0.5)  # leases of dead workers: try again


def account(store: RunStore, rows: int) -> dict[str, int]:
    """Rows in / out / dead / lost / duplicated, from the committed files alone."""
    fresh = RunStore(store.url, store.run_id)
    seen: Counter[str] = Counter()
    out = dead = 0
    for marker in fresh.markers().values():
        ids = [str(i) for i in fresh.read_output(marker).column("id").to_pylist()]
        dead_ids = [str(d["id"]) for d in fresh.read_dead(marker)]
        out, dead = out + len(ids), dead + len(dead_ids)
        seen.update(ids + dead_ids)
    expected = {f"r{i:06d}" for i in range(rows)}
    return {
        "rows_in": rows,
        "out": out,
        "dead": dead,
        "lost": len(expected - set(seen)),
        "duplicated": sum(c - 1 for c in seen.values() if c > 1),
    }


def corrupt(store: RunStore) -> str:
    markers = sorted(store.markers().items())
    ma, mb, mc = markers[0][1], markers[1][1], markers[2][1]
    path = Path(store.path(ma.out_file))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    shutil.copyfile(store.path(mb.out_file), store.path(mc.out_file))
    t = Path(store.path(markers[3][1].out_file))
    t.write_bytes(t.read_bytes()[:64])
    with_dead = next(m for _, m in markers if m.dead_file)
    Path(store.path(with_dead.dead_file or "")).unlink()
    try:
        query_results(RunStore(store.url, store.run_id), "select count(*) from results")
        served = "served!"
    except StoreError:
        served = "refused"
    report = verify_run(RunStore(store.url, store.run_id))
    quarantine(store, report)
    damaged = {ma.shard_id, mc.shard_id, markers[3][0], with_dead.shard_id}
    return (
        f"flip, copy-over, truncate, dead file deleted ({len(damaged)} shards): results "
        f"{served}; {len(report.quarantined)} quarantined"
    )


def scenario_local(
    work: Path, name: str, rows: int, per_shard: int, workers: int
) -> dict[str, Any]:
    store = make_run(work, str(work / name), rows, per_shard)
    began = time.monotonic()
    note = ""
    if name == "clock-skew":
        shards = [s["shard_id"] for s in store.read_manifest()]
        # Two workers die holding shards: one an hour fast, one an hour slow.
        store.claim(shards[0], "fast", ttl_s=TTL_S, now=time.time() + 3600)
        store.claim(shards[1], "slow", ttl_s=TTL_S, now=time.time() - 3600)
        note = "holders ±1 h off, lease 3 s"
    work_until_done(store, workers)
    if name == "corruption":
        note = corrupt(store)
        make_run(work, store.url, rows, per_shard)  # the resume: checks pass again
        work_until_done(store, workers)
        note += "; resumed, verify ok" if verify_run(RunStore(store.url, store.run_id)).ok else ""
    return {"scenario": name, "store": "local", "wall_s": time.monotonic() - began, "note": note,
            **account(store, rows)}  # fmt: skip


def scenario_s3(work: Path, name: str, rows: int, per_shard: int, workers: int) -> dict[str, Any]:
    import boto3
    import s3fs

    from benchmarks.bench_store import moto_server
    from tests.integration.faultproxy import FaultProxy

    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                          AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
        proxy = FaultProxy(int(endpoint.rsplit(":", 1)[1]))
        os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            store = make_run(work, f"s3://{name}/runs", rows, per_shard)
            began = time.monotonic()
            if name == "s3-baseline":
                codes = work_until_done(store, workers, delay_s=0.02)
            elif name == "s3-transient":
                os.environ["SKYBATCH_STORE_RETRY_S"] = "60"
                storm = threading.Thread(target=_weather, args=(proxy,))
                storm.start()
                codes = work_until_done(store, workers, delay_s=0.02)
                storm.join()
            else:
                os.environ["SKYBATCH_STORE_RETRY_S"] = "2"
                threading.Timer(1.0, proxy.outage).start()
                codes = _run_once(store, workers)
                proxy.recover()
                os.environ["SKYBATCH_STORE_RETRY_S"] = "60"
                codes += work_until_done(store, workers)
            faults = {k: v for k, v in proxy.counts.items() if k != "pass"}
            note = f"faults {faults}; worker exits {dict(Counter(codes))}"
            return {"scenario": name, "store": "s3 (moto)", "wall_s": time.monotonic() - began,
                    "note": note, **account(store, rows)}  # fmt: skip
        finally:
            proxy.close()
            os.environ.pop("SKYBATCH_STORE_RETRY_S", None)
            s3fs.S3FileSystem.clear_instance_cache()


def _weather(proxy: Any) -> None:
    time.sleep(1.0)
    proxy.outage("503")
    time.sleep(4.0)
    proxy.outage("drop")
    time.sleep(2.0)
    proxy.recover()
    proxy.flaky = 0.2
    time.sleep(4.0)
    proxy.flaky = 0.0


def _run_once(store: RunStore, workers: int) -> list[int]:
    codes: list[int] = []

    def one(i: int) -> None:
        view = RunStore(store.url, store.run_id)
        w = Worker(
            view, worker_id=f"once-{i}", engine_factory=lambda _: Echo(0.02), heartbeat_s=0.5
        )
        codes.append(w.run())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1200)
    p.add_argument("--rows-per-shard", type=int, default=50)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--no-s3", action="store_true", help="skip the moto scenarios")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # as the worker's entry point
    work = Path(tempfile.mkdtemp(prefix="skybatch-chaos-"))
    runs: list[Callable[[], dict[str, Any]]] = [
        lambda n=n: scenario_local(work, n, args.rows, args.rows_per_shard, args.workers)  # type: ignore[misc]
        for n in ("baseline", "corruption", "clock-skew")
    ]
    if not args.no_s3:
        runs += [
            lambda n=n: scenario_s3(work, n, args.rows, args.rows_per_shard, args.workers)  # type: ignore[misc]
            for n in ("s3-baseline", "s3-transient", "s3-outage")
        ]
    try:
        results = [run() for run in runs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    head = f"{'scenario':<13} {'store':<10} {'in':>6} {'out':>6} {'dead':>5} {'lost':>5} {'dup':>4} {'wall s':>7}  note"
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['scenario']:<13} {r['store']:<10} {r['rows_in']:>6} {r['out']:>6} {r['dead']:>5} "
            f"{r['lost']:>5} {r['duplicated']:>4} {r['wall_s']:>7.1f}  {r['note']}"
        )
    base = {r["store"]: r["wall_s"] for r in results if r["scenario"].endswith("baseline")}
    ratios = [
        f"{r['scenario']} ×{r['wall_s'] / base[r['store']]:.1f}"
        for r in results
        if not r["scenario"].endswith("baseline") and base.get(r["store"])
    ]
    print("\nwall time against the baseline on the same store: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
