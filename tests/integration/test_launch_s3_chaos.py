"""Eight workers on one run in S3 (moto on loopback), killed at random and restarted.

What a cloud run goes through — spot workers vanishing mid-shard, recovered workers
taking over expired leases — compressed into a minute: worker processes share a run whose
store is a real S3 API, and a chaos loop SIGKILLs (no goodbye: a preemption) or SIGTERMs
(the spot notice: release and exit) a random worker every second while
:class:`~scheduler.backends.local.LocalPool` restarts them. At the end the committed
outputs hold every input id exactly once, and every commit marker's id digest matches the
ids in its output file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from scheduler.backends.local import LocalPool
from scheduler.recipe import recipe_from_dict
from scheduler.runs import prepare_run
from scheduler.store import digest_ids, read_status

ROWS = 240
FN = """\
import time

def work(rows, delay_s=0.0):
    time.sleep(delay_s * len(rows))
    return [{"n": len(r["text"])} for r in rows]
"""


@pytest.mark.slow
def test_eight_workers_killed_at_random_commit_every_row_exactly_once(
    tmp_path: Path, s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # a client cached by an earlier test has no keys
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fn.py").write_text(FN)
    with (tmp_path / "rows.jsonl").open("w") as f:
        for i in range(ROWS):
            f.write(json.dumps({"id": f"id-{i:04d}", "text": "x" * (i % 17)}) + "\n")
    recipe = recipe_from_dict(
        {
            "name": "chaos",
            "input": {"path": str(tmp_path / "rows.jsonl"), "id_column": "id"},
            "task": "score",
            "model": {
                "engine": "python",
                "name": f"{tmp_path / 'fn.py'}:work",
                "batch_size": 5,
                "options": {"delay_s": 0.05},
            },
            "shards": {"rows_per_shard": 10},
            "store": s3_store_url,
            # Short leases: a killed worker's shard is taken over within seconds.
            "limits": {"lease_ttl": "6s", "retries": 50, "max_error_rate": 0.0},
        },
        source=str(tmp_path / "chaos.yaml"),
    )
    store = prepare_run(recipe, store_url=s3_store_url, backend="local")
    assert not store.local
    pool = LocalPool(store, max_restarts=10_000, heartbeat_s=1.0)
    rng = random.Random(20261123)
    kills = Counter[str]()
    pool.start(8)
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            pool.poll()
            if len(store.done_shards()) == len(store.read_manifest()):
                break
            pids = pool.pids()
            if pids:
                worker = rng.choice(sorted(pids))
                sig = signal.SIGKILL if rng.random() < 0.7 else signal.SIGTERM
                try:
                    os.kill(pids[worker], sig)
                    kills[sig.name] += 1
                except ProcessLookupError:
                    pass
            if pool.alive() < 8:
                pool.restart_idle()  # SIGTERMed workers exit cleanly: start them again
    finally:
        pool.stop(timeout_s=10)
    manifest = store.read_manifest()
    markers = store.markers()
    assert len(markers) == len(manifest), f"{len(markers)}/{len(manifest)} shards committed"
    assert kills["SIGKILL"] >= 5 and kills["SIGTERM"] >= 1, kills
    ids: list[str] = []
    for shard_id, marker in markers.items():
        shard_ids = [str(v) for v in store.read_output(marker).column("id").to_pylist()]
        assert digest_ids(shard_ids) == marker.ids_digest, shard_id
        assert marker.rows_in == marker.rows_out + marker.rows_dead
        ids.extend(shard_ids)
    assert len(ids) == len(set(ids)) == ROWS
    assert set(ids) == {f"id-{i:04d}" for i in range(ROWS)}
    status = read_status(store)
    assert status.rows_done == status.rows_out == ROWS and status.rows_dead == 0
    retried = sum(1 for m in markers.values() if m.attempt > 1)
    print(f"\nchaos: {dict(kills)} kills, {pool.restarts} restarts, {retried} shards retried")
