"""The worker's failure handling, in process, with fake engines at the engine seam."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines.base import Result, Row, RowFailure
from scheduler.recipe import Recipe, recipe_from_dict
from scheduler.runs import prepare_run
from scheduler.store import RunStore
from scheduler.worker import Worker


class FakeEngine:
    """Echoes the text length; behaviour per test through the constructor."""

    whole_shard = False

    def __init__(
        self,
        *,
        max_batch: int | None = None,
        bad: set[str] = frozenset(),
        reject: set[str] = frozenset(),
        short: bool = False,
    ) -> None:
        self.max_batch, self.bad, self.reject, self.short = max_batch, bad, reject, short
        self.batches: list[int] = []

    def infer(self, rows: list[Row]) -> list[Result]:
        self.batches.append(len(rows))
        if self.max_batch is not None and len(rows) > self.max_batch:
            raise MemoryError("out of memory")
        if any(r["id"] in self.bad for r in rows):
            raise ValueError("poisoned row in batch")
        out: list[Result] = [
            RowFailure("rejected") if r["id"] in self.reject else {"n": len(r["text"])}
            for r in rows
        ]
        return out[:-1] if self.short else out

    def describe(self) -> dict[str, Any]:
        return {"engine": "fake", "revision": "r1", "accelerator": "cpu"}

    def close(self) -> None:
        pass


def _run(tmp_path: Path, rows: int = 40, rows_per_shard: int = 20, **limits: Any) -> RunStore:
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"r{i:03d}", "text": "x" * i}) + "\n" for i in range(rows))
    )
    recipe: Recipe = recipe_from_dict(
        {
            "name": "w",
            "input": {"path": str(data), "id_column": "id"},
            "task": "score",
            "model": {"engine": "python", "name": "m:f", "batch_size": 16},
            "shards": {"rows_per_shard": rows_per_shard},
            "limits": {"retries": 1, **limits},
        },
        source=str(tmp_path / "w.yaml"),
    )
    return prepare_run(recipe, store_url=str(tmp_path / "runs"))


def _work(store: RunStore, engine: FakeEngine, worker_id: str = "w0") -> Worker:
    worker = Worker(store, worker_id=worker_id, engine_factory=lambda _: engine, heartbeat_s=60)
    assert worker.run() == 0
    return worker


def _dead(store: RunStore) -> list[dict[str, Any]]:
    return [d for m in store.markers().values() for d in store.read_dead(m)]


def test_out_of_memory_halves_the_batch_and_loses_nothing(tmp_path: Path) -> None:
    store = _run(tmp_path)
    engine = FakeEngine(max_batch=5)
    worker = _work(store, engine)
    assert worker.batch_size == 4  # 16 → 8 → 4
    assert sum(m.rows_out for m in store.markers().values()) == 40
    assert any(e["kind"] == "batch_halved" for e in store.events())


def test_a_failing_batch_is_retried_row_by_row(tmp_path: Path) -> None:
    store = _run(tmp_path)
    _work(store, FakeEngine(bad={"r003", "r025"}, reject={"r010"}))
    dead = {d["id"]: d["reason"] for d in _dead(store)}
    assert dead == {
        "r003": "ValueError: poisoned row in batch",
        "r025": "ValueError: poisoned row in batch",
        "r010": "rejected",
    }
    assert sum(m.rows_out for m in store.markers().values()) == 37
    assert all(m.rows_in == m.rows_out + m.rows_dead for m in store.markers().values())


def test_an_engine_returning_too_few_results_fails_the_attempt(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=10, rows_per_shard=10)
    worker = Worker(
        store, worker_id="w0", engine_factory=lambda _: FakeEngine(short=True), heartbeat_s=60
    )
    lease = store.claim("00000", "w0", ttl_s=60)
    assert lease is not None
    worker.engine = FakeEngine(short=True)
    worker._process(lease, worker.shards[0])
    claim = store.read_claim("00000")
    assert claim is not None and claim.failures == 1
    assert "engine returned" in claim.last_error
    assert store.done_shards() == []


def test_a_shard_claimed_too_often_is_committed_dead(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=20, rows_per_shard=20)
    # Seven earlier claims that never committed: workers killed mid-shard each time.
    store._write_bytes(
        "claims/00000.json",
        json.dumps(
            {
                "shard_id": "00000",
                "worker": "gone",
                "attempt": 7,
                "token": "t",
                "expires_at": 0,
                "failures": 0,
                "last_error": None,
            }
        ).encode(),
    )
    _work(store, FakeEngine())
    (marker,) = store.markers().values()
    assert (marker.rows_out, marker.rows_dead) == (0, 20)
    reasons = {d["reason"] for d in _dead(store)}
    assert len(reasons) == 1 and "7 claims" in reasons.pop()


def test_a_restarted_worker_keeps_billed_time_and_counts_the_lost_life(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=5, rows_per_shard=5)
    store.heartbeat(
        "w0",
        {
            "state": "running",
            "started_at": "2026-01-01T00:00:00+00:00",
            "usd_per_hour": 3.6,
            "preemptions": 1,
        },
    )
    doc = json.loads(store._read_bytes("workers/w0.json") or b"{}")
    doc["last_seen"] = "2026-01-01T00:10:00+00:00"
    store._write_bytes("workers/w0.json", json.dumps(doc).encode())
    _work(store, FakeEngine())
    beat = store.workers()["w0"]
    assert beat.prior_s == pytest.approx(600.0)
    assert beat.preemptions == 2
    from scheduler.store import read_status

    (w,) = read_status(store).workers
    assert w.uptime_s >= 600.0 and w.spend_usd >= 0.6


def test_stop_between_batches_releases_the_lease(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=40, rows_per_shard=40)
    stop = threading.Event()

    class Slow(FakeEngine):
        def infer(self, rows: list[Row]) -> list[Result]:
            stop.set()  # the signal arrives while the first batch runs
            time.sleep(0.05)
            return super().infer(rows)

    worker = Worker(
        store, worker_id="w0", engine_factory=lambda _: Slow(), stop=stop, heartbeat_s=60
    )
    assert worker.run() == 3
    assert store.done_shards() == []
    claim = store.read_claim("00000")
    assert claim is not None and claim.released and claim.failures == 0


def test_an_input_changed_after_sharding_stops_the_worker_instead_of_spinning(
    tmp_path: Path,
) -> None:
    store = _run(tmp_path, rows=40, rows_per_shard=20)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:25]))  # truncated
    worker = Worker(store, worker_id="w0", engine_factory=lambda _: FakeEngine(), heartbeat_s=60)
    started = time.monotonic()
    assert worker.run() == 2  # EXIT_ENGINE: the pool reports it and stops
    assert time.monotonic() - started < 60
    assert worker.error is not None and worker.error.startswith("cannot read the input: ")
    failed = [e for e in store.events() if e["kind"] == "shard_failed"]
    assert len(failed) == 1  # one attempt, not a loop
    assert store.workers()["w0"].state == "failed"
    assert len(store.done_shards()) <= 1  # the intact first shard may have committed
    (claim,) = store.claims().values()  # the broken shard's lease was released, with why
    assert claim.expires_at == 0 and "changed since it was sharded" in (claim.last_error or "")


def test_a_model_the_launch_shipped_replaces_the_launching_machines_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.worker import MODEL_ENV

    store = _run(tmp_path)  # run.json names model "m:f", from the launching machine
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(MODEL_ENV, "~/.skybatch/model/abc/fn.py:f")
    worker = Worker(store, worker_id="w0", engine_factory=lambda _: FakeEngine(), heartbeat_s=60)
    assert worker.recipe.model.name == f"{tmp_path}/.skybatch/model/abc/fn.py:f"


def test_a_worker_that_cannot_load_its_engine_records_exit_2(tmp_path: Path) -> None:
    from scheduler.store import read_status

    store = _run(tmp_path)

    def broken(_: Recipe) -> FakeEngine:
        raise ModuleNotFoundError("No module named 'm'")

    assert Worker(store, worker_id="w0", engine_factory=broken, heartbeat_s=60).run() == 2
    assert store.workers()["w0"].exit_code == 2
    why = read_status(store).permanent_failure
    assert why == (
        "worker w0 exited with code 2 (permanent failure): "
        "cannot load m:f: ModuleNotFoundError: No module named 'm'"
    )
    _work(store, FakeEngine(), worker_id="w1")  # a clean exit records 0, nothing permanent
    assert store.workers()["w1"].exit_code == 0


def test_a_worker_that_cannot_start_records_exit_2(tmp_path: Path) -> None:
    import signal

    from scheduler import worker
    from scheduler.store import read_status

    store = _run(tmp_path)
    (tmp_path / "rows.jsonl").unlink()  # the input is gone: Worker() itself fails
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        argv = ["--store", store.url, "--run-id", store.run_id, "--worker-id", "w4"]
        assert worker.main(argv) == 2
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    beat = store.workers()["w4"]
    assert beat.state == "failed" and beat.exit_code == 2 and beat.started_at is not None
    assert re.search(r"worker w4 exited with code 2 \(permanent failure\): .*rows\.jsonl",
                     read_status(store).permanent_failure or "")  # fmt: skip
