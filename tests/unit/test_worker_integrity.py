"""Worker-side findings of the red-team pass (issue 13): rows that cannot be stored, worker
ids that would write outside the store, and worker ids unique per driver."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import StoreError
from scheduler.store import read_status, validate_run_id, validate_worker_id
from scheduler.worker import Worker, default_worker_id, main
from tests.unit.test_worker import FakeEngine, _run, _work


def _write_rows(tmp_path: Path, rows: list[str]) -> None:
    (tmp_path / "rows.jsonl").write_text("".join(line + "\n" for line in rows))


def test_a_lone_surrogate_id_costs_its_row_not_the_shard(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=10, rows_per_shard=10)
    lines = [json.dumps({"id": f"r{i:03d}", "text": "x" * i}) for i in range(10)]
    bad = '{"id": "\\udc80x", "text": "'  # valid JSON, not storable as UTF-8
    lines[4] = bad + "x" * (len(lines[4]) - len(bad) - 2) + '"}'  # same length: same offsets
    _write_rows(tmp_path, lines)
    _work(store, FakeEngine())
    (marker,) = store.markers().values()
    assert (marker.rows_in, marker.rows_out, marker.rows_dead) == (10, 9, 1)
    (dead,) = store.read_dead(marker)
    assert dead["id"] == "\udc80x" and dead["stage"] == "store"
    assert dead["reason"].startswith("cannot store the row: UnicodeEncodeError")
    assert read_status(store).balanced


def test_a_value_that_cannot_be_stored_costs_its_row(tmp_path: Path) -> None:
    store = _run(tmp_path, rows=6, rows_per_shard=6)

    class Surrogates(FakeEngine):
        def infer(self, rows: list[Any]) -> list[Any]:
            return [{"label": "bad\ud800" if r["id"] == "r002" else "ok"} for r in rows]

    _work(store, Surrogates())
    (marker,) = store.markers().values()
    assert (marker.rows_out, marker.rows_dead) == (5, 1)
    assert store.read_dead(marker)[0]["id"] == "r002"


@pytest.mark.parametrize("bad", ["../../x", "a/b", "..", "a..b", "w\n", "w\x00", "-w", ""])
def test_worker_ids_that_would_leave_the_store_are_refused(tmp_path: Path, bad: str) -> None:
    store = _run(tmp_path, rows=5, rows_per_shard=5)
    with pytest.raises(StoreError, match=r"worker id .* is not valid"):
        Worker(store, worker_id=bad, engine_factory=lambda _: FakeEngine())
    with pytest.raises(StoreError, match=r"worker id .* is not valid"):
        store.heartbeat(bad, {})
    with pytest.raises(StoreError, match=r"worker id .* is not valid"):
        store.claim("00000", bad, ttl_s=60)
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs" / "x.json").exists()


def test_the_worker_entry_point_refuses_a_bad_worker_id_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _run(tmp_path, rows=5, rows_per_shard=5)
    monkeypatch.setenv("SKYBATCH_WORKER_ID", "../../escape")
    assert main(["--store", store.url, "--run-id", store.run_id]) == 2
    assert "worker id '../../escape' is not valid" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escape*"))


def test_ids_are_anchored_at_the_true_end() -> None:
    with pytest.raises(StoreError, match="run id 'run\\\\n' is not valid"):
        validate_run_id("run\n")
    with pytest.raises(StoreError, match="worker id 'w\\\\n' is not valid"):
        validate_worker_id("w\n")
    assert validate_worker_id("host-1.b_2") == "host-1.b_2"


def test_default_worker_ids_name_host_pid_and_index() -> None:
    a, b = default_worker_id(0), default_worker_id(1)
    assert a != b and a.endswith(f"-{os.getpid()}-0")
    assert validate_worker_id(a) == a and validate_worker_id(default_worker_id()) is not None


def test_two_drivers_on_one_run_never_share_a_worker_id(tmp_path: Path) -> None:
    from scheduler.backends.local import LocalPool

    store = _run(tmp_path, rows=60, rows_per_shard=20)
    pools = [LocalPool(store), LocalPool(store)]
    spawned: list[str] = []
    for pool in pools:
        pool._spawn = lambda worker_id, price: spawned.append(worker_id)  # type: ignore[method-assign,assignment,return-value]
        pool.start(3)
    assert len(set(spawned)) == 6
    # One worker of each driver works; the others report in: six workers, none overwritten.
    _work(store, FakeEngine(), worker_id=spawned[0])
    _work(store, FakeEngine(), worker_id=spawned[3])
    for worker_id in spawned[1:3] + spawned[4:]:
        store.heartbeat(worker_id, {"state": "exited"})
    status = read_status(store)
    assert len(status.workers) == 6
    assert sum(w.shards_done for w in status.workers) == status.shards_done == 3
