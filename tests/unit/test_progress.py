"""read_status on handcrafted local stores, at a frozen ``now``.

Each store is written the way the contract lays it out (run.json + manifest through the
store, markers through ``commit``, claim and heartbeat documents as JSON files), so these
tests pin how progress reads a store, not how a worker writes one.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from scheduler.store import DoneMarker, RunState, RunStore, ShardState, read_status

NOW = 1_700_003_600.0  # frozen clock
HOUR = 3600.0
ROWS = 100


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def make_store(
    tmp_path: Path, shards: int = 4, *, max_error_rate: float = 0.01, budget: float | None = 50
) -> RunStore:
    store = RunStore(str(tmp_path / "runs"), "run-p")
    info = {
        "input_fingerprint": "f",
        "model_revision": None,
        "recipe_digest": "d",
        "created_at": iso(NOW - 2 * HOUR),
        "backend": "local",
        "deadline_at": iso(NOW + HOUR),
        "recipe": {
            "name": "prog",
            "limits": {"max_error_rate": max_error_rate},
            "schedule": {"budget_usd": budget},
        },
    }
    rows = [
        {"shard_id": f"s{i}", "file": "f", "offset": i * ROWS, "row_count": ROWS}
        for i in range(shards)
    ]
    store.ensure(info, lambda: rows)
    return store


def commit(
    store: RunStore,
    shard: str,
    *,
    dead: int = 0,
    rows_in: int = ROWS,
    tokens: int = 0,
    lost: int = 0,
) -> None:
    marker = DoneMarker(
        shard_id=shard,
        attempt=1,
        attempt_id="1-abc",
        worker="w1",
        out_file=f"out/{shard}.1-abc.parquet",
        out_size=1,
        out_sha256="0" * 64,
        dead_file=None,
        rows_in=rows_in,
        rows_out=ROWS - dead - lost,
        rows_dead=dead,
        ids_digest="0" * 32,
        tokens_in=tokens,
        tokens_out=tokens // 2,
    )
    assert store.commit(marker)


def put(store: RunStore, rel: str, doc: dict[str, Any]) -> None:
    path = Path(store.path(rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def claim(store: RunStore, shard: str, *, expires_at: float, failures: int = 0) -> None:
    put(
        store,
        f"claims/{shard}.json",
        {"shard_id": shard, "worker": "w1", "attempt": 1 + failures, "token": "t",
         "expires_at": expires_at, "failures": failures, "released": False},
    )  # fmt: skip


def worker(
    store: RunStore,
    name: str,
    *,
    started: float,
    last_seen: float,
    usd_per_hour: float = 0.0,
    rows_per_s: float = 0.0,
    state: str = "running",
    rows_done: int = 0,
    error: str | None = None,
) -> None:
    put(
        store,
        f"workers/{name}.json",
        {"worker": name, "state": state, "started_at": started, "last_seen": iso(last_seen),
         "usd_per_hour": usd_per_hour, "rows_per_s": rows_per_s, "spot": True,
         "accelerator": "L4", "rows_done": rows_done, "shards_done": 0, "preemptions": 1,
         "error": error},
    )  # fmt: skip


def test_new_run_is_pending(tmp_path: Path) -> None:
    status = read_status(make_store(tmp_path), now=NOW)
    assert status.state is RunState.PENDING and not status.state.is_terminal()
    assert (status.shards_total, status.shards_done, status.shards_pending) == (4, 0, 4)
    assert status.rows_total == 4 * ROWS and status.rows_done == 0
    assert status.eta_s is None and status.spend_usd == 0.0 and status.workers == []
    assert status.shard_states == [ShardState.PENDING] * 4
    assert status.recipe_name == "prog" and status.budget_usd == 50
    assert status.deadline_at == pytest.approx(NOW + HOUR)


def test_running_run_rates_eta_spend_and_shard_map(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    commit(store, "s0", tokens=1000)
    claim(store, "s1", expires_at=NOW + 30)  # live lease
    claim(store, "s2", expires_at=NOW - 30, failures=2)  # lapsed, failed before
    claim(store, "s3", expires_at=NOW - 30)  # lapsed, no failure: plain pending
    worker(store, "w1", started=NOW - HOUR, last_seen=NOW - 5, usd_per_hour=2.0, rows_per_s=4)
    worker(store, "w2", started=NOW - HOUR / 2, last_seen=NOW - 2, usd_per_hour=1.0, rows_per_s=1)
    status = read_status(store, now=NOW)
    assert status.state is RunState.RUNNING
    assert status.shard_states == [
        ShardState.DONE,
        ShardState.CLAIMED,
        ShardState.FAILED,
        ShardState.PENDING,
    ]
    assert (status.shards_done, status.shards_claimed, status.shards_failed) == (1, 1, 1)
    assert status.shards_pending == 2
    assert status.rows_per_s == pytest.approx(5.0)  # live rates of the workers alive
    assert status.eta_s == pytest.approx(3 * ROWS / 5.0)
    # $/h × uptime (start to last heartbeat), summed over workers.
    expected = 2.0 * (HOUR - 5) / HOUR + 1.0 * (HOUR / 2 - 2) / HOUR
    assert status.spend_usd == pytest.approx(expected)
    assert status.usd_per_hour == pytest.approx(3.0)
    assert status.elapsed_s == pytest.approx(HOUR)  # from the first worker's start
    assert status.tokens_in == 1000 and status.tokens_out == 500
    assert [w.alive for w in status.workers] == [True, True]
    assert status.fraction_done == pytest.approx(0.25)
    data = status.to_json()
    assert json.loads(json.dumps(data))["shards_pending"] == 2
    assert data["workers"][0]["spend_usd"] == pytest.approx(2.0 * (HOUR - 5) / HOUR)


def test_eta_falls_back_to_the_average_rate(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    commit(store, "s0")
    commit(store, "s1")
    worker(store, "w1", started=NOW - 100, last_seen=NOW - 1, rows_per_s=0.0, rows_done=2 * ROWS)
    status = read_status(store, now=NOW)
    assert status.rows_per_s == pytest.approx(2 * ROWS / 100)
    assert status.eta_s == pytest.approx(2 * ROWS / (2 * ROWS / 100))


def test_after_a_resume_rates_count_this_sessions_rows_only(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    for shard in ("s0", "s1", "s2"):  # two by an earlier session, one by this one
        commit(store, shard)
    worker(store, "old-0", started=NOW - HOUR, last_seen=NOW - HOUR + 60, state="stopped",
           rows_done=2 * ROWS)  # fmt: skip
    worker(store, "new-0", started=NOW - 50, last_seen=NOW - 1, rows_per_s=0.0, rows_done=ROWS)
    status = read_status(store, now=NOW)
    assert status.rows_per_s == pytest.approx(ROWS / 50)  # not 3 * ROWS / 50
    assert status.elapsed_s == pytest.approx(50)
    assert status.session_rows_done == ROWS
    assert status.eta_s == pytest.approx(ROWS / (ROWS / 50))
    # The recent rate, when the workers report one, drives the ETA.
    worker(store, "new-0", started=NOW - 50, last_seen=NOW - 1, rows_per_s=4.0, rows_done=ROWS)
    assert read_status(store, now=NOW).eta_s == pytest.approx(ROWS / 4.0)


def test_workers_that_could_not_load_fail_the_run_with_their_last_error_line(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    trace = "Traceback (most recent call last):\n  ...\nOSError: no model named 'nope' in the cache"
    worker(store, "w1", started=NOW - 20, last_seen=NOW - 10, state="failed", error=trace)
    worker(store, "w2", started=NOW - 20, last_seen=NOW - 9, state="failed", error="cannot load")
    status = read_status(store, now=NOW)
    assert status.state is RunState.FAILED and not status.finished
    assert status.failure_reason == "cannot load"  # the most recent worker's last line
    assert status.to_json()["failure_reason"] == "cannot load"
    worker(store, "w2", started=NOW - 20, last_seen=NOW - 9, state="stopped")
    assert read_status(store, now=NOW).state is RunState.STOPPED  # not every worker failed
    store.write_meta("failure", {"reason": "workers keep exiting\nsee logs/local-0.log"})
    status = read_status(store, now=NOW)
    assert status.state is RunState.FAILED
    assert status.failure_reason == "see logs/local-0.log"


def test_workers_gone_means_stopped_and_no_eta(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    commit(store, "s0")
    worker(store, "w1", started=NOW - HOUR, last_seen=NOW - 600, usd_per_hour=3.0, rows_per_s=9)
    worker(store, "w2", started=NOW - HOUR, last_seen=NOW - 10, state="exited")
    status = read_status(store, now=NOW)
    assert status.state is RunState.STOPPED
    assert [(w.worker_id, w.state, w.alive) for w in status.workers] == [
        ("w1", "lost", False),
        ("w2", "exited", False),
    ]
    assert status.eta_s is None and status.usd_per_hour == 0.0
    assert status.spend_usd == pytest.approx(3.0 * (HOUR - 600) / HOUR)
    assert status.elapsed_s == pytest.approx(HOUR - 10)  # up to the last heartbeat


def test_cancelled_run(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    commit(store, "s0")
    store.write_meta("cancel", {"at": NOW - 60})
    assert read_status(store, now=NOW).state is RunState.CANCELLED
    # Workers still finishing their shard keep it running until they go.
    worker(store, "w1", started=NOW - 60, last_seen=NOW - 1)
    assert read_status(store, now=NOW).state is RunState.RUNNING


def test_done_and_failed_depend_on_the_error_budget(tmp_path: Path) -> None:
    store = make_store(tmp_path, shards=2, max_error_rate=0.01)
    commit(store, "s0", dead=1)
    commit(store, "s1")
    worker(store, "w1", started=NOW - 100, last_seen=NOW - 1, rows_per_s=3)
    status = read_status(store, now=NOW)
    assert status.state is RunState.DONE and status.state.is_terminal()
    assert status.eta_s == 0.0 and status.rows_dead == 1 and status.balanced
    assert status.error_rate == pytest.approx(1 / 200)

    strict = make_store(tmp_path / "strict", shards=2, max_error_rate=0.001)
    commit(strict, "s0", dead=1)
    commit(strict, "s1")
    status = read_status(strict, now=NOW)
    assert status.state is RunState.FAILED and status.state.is_terminal()


def test_unbalanced_run_is_not_done(tmp_path: Path) -> None:
    """Input rows must equal output + dead rows; a run that cannot show it is not done."""
    store = make_store(tmp_path, shards=2)
    commit(store, "s0")
    commit(store, "s1", lost=3)  # three rows neither output nor dead
    status = read_status(store, now=NOW)
    assert not status.balanced
    assert status.state is RunState.FAILED

    # Balanced within itself, but the shard read fewer rows than the manifest holds.
    short = make_store(tmp_path / "short", shards=2)
    commit(short, "s0")
    commit(short, "s1", rows_in=ROWS - 3, lost=3)
    status = read_status(short, now=NOW)
    assert status.balanced and status.rows_done == 2 * ROWS - 3
    assert status.state is RunState.FAILED


def test_glyphs_and_terminal_states() -> None:
    assert {s.glyph for s in RunState} == {"○", "▶", "⏸", "■", "✔", "✘"}
    assert [s for s in RunState if s.is_terminal()] == [RunState.DONE, RunState.FAILED]
