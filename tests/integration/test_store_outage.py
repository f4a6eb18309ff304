"""Store outages (issue 13, finding 6), through a fault-injecting proxy in front of moto.

Transient faults (503s, dropped connections) mid-run are retried in the store layer and
the run reconciles exactly; a persistent outage ends workers and commands with one line
naming the store and the reason, exit 3 (the worker's own code 4), no traceback.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import StoreUnavailable
from scheduler.recipe import recipe_from_dict
from scheduler.runs import prepare_run
from scheduler.store import RunStore, read_status
from scheduler.worker import EXIT_STORE, Worker, main
from tests.integration.conftest import S3Server
from tests.integration.faultproxy import FaultProxy


class SlowEcho:
    """An engine at the engine seam: a little time per batch so outages land mid-run."""

    whole_shard = False

    def infer(self, rows: list[Any]) -> list[Any]:
        time.sleep(0.05)
        return [{"n": len(r["text"])} for r in rows]

    def describe(self) -> dict[str, Any]:
        return {"engine": "echo", "revision": "r1", "accelerator": "cpu"}

    def close(self) -> None:
        pass


@pytest.fixture
def proxy(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    import s3fs

    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    fp = FaultProxy(port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fp.endpoint)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield fp
    finally:
        fp.close()
        s3fs.S3FileSystem.clear_instance_cache()


def _run(tmp_path: Path, url: str, rows: int = 60) -> RunStore:
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"r{i:03d}", "text": "x" * i}) + "\n" for i in range(rows))
    )
    recipe = recipe_from_dict(
        {
            "name": "outage",
            "input": {"path": str(data), "id_column": "id"},
            "task": "score",
            "model": {"engine": "python", "name": "m:f", "batch_size": 5},
            "shards": {"rows_per_shard": 10},
            "limits": {"retries": 2},
        },
        source=str(tmp_path / "o.yaml"),
    )
    return prepare_run(recipe, store_url=url)


def _ids(store: RunStore) -> list[str]:
    fresh = RunStore(store.url, store.run_id)
    return sorted(
        str(i)
        for m in fresh.markers().values()
        for i in fresh.read_output(m).column("id").to_pylist()
    )


@pytest.mark.slow
def test_transient_faults_mid_run_are_retried_and_the_run_reconciles_exactly(
    tmp_path: Path, s3_server: S3Server, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYBATCH_STORE_RETRY_S", "60")
    store = _run(tmp_path, f"s3://{s3_server.new_bucket()}/runs")

    def weather() -> None:
        time.sleep(0.5)
        proxy.outage("503")
        time.sleep(2.5)
        proxy.outage("drop")
        time.sleep(2.0)
        proxy.recover()
        proxy.flaky = 0.2  # then a flaky network: one connection in five faulted
        time.sleep(3.0)
        proxy.flaky = 0.0

    storm = threading.Thread(target=weather)
    storm.start()
    worker = Worker(store, worker_id="w0", engine_factory=lambda _: SlowEcho(), heartbeat_s=0.5)
    assert worker.run() == 0
    storm.join()
    assert proxy.counts["503"] > 0 and proxy.counts["drop"] > 0, proxy.counts
    assert _ids(store) == [f"r{i:03d}" for i in range(60)]  # each once
    status = read_status(RunStore(store.url, store.run_id))
    assert (status.state.value, status.rows_out, status.rows_dead) == ("done", 60, 0)


@pytest.mark.slow
def test_a_persistent_outage_is_one_line_and_exit_3(
    tmp_path: Path,
    s3_server: S3Server,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SKYBATCH_STORE_RETRY_S", "2")
    store = _run(tmp_path, f"s3://{s3_server.new_bucket()}/runs", rows=40)
    # Mid-run: the store goes away for good while the worker holds a shard.
    started = threading.Event()

    class Marked(SlowEcho):
        def infer(self, rows: list[Any]) -> list[Any]:
            if not started.is_set():
                started.set()
                proxy.outage("503")
            return super().infer(rows)

    worker = Worker(store, worker_id="w0", engine_factory=lambda _: Marked(), heartbeat_s=0.5)
    assert worker.run() == EXIT_STORE
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert f"skybatch worker w0: store {store.url} unreachable: HTTP 503" in err
    # A new worker process, and the commands, say the same in one line.
    assert main(["--store", store.url, "--run-id", store.run_id, "--worker-id", "w1"]) == 4
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "unreachable" in err and "Traceback" not in err
    with pytest.raises(StoreUnavailable, match=r"store s3://\S+ unreachable: HTTP 503 .* attempt"):
        read_status(RunStore(store.url, store.run_id))
    from scheduler.cli import _register, cli
    from scheduler.cli._edge import run_edge

    _register()
    assert run_edge(cli, ["status", store.run_id, "--store", store.url]) == 3
    err = capfd.readouterr().err
    assert err.startswith("skybatch: error: ") and "unreachable" in err
    assert "Traceback" not in err
    # Back again: the run resumes and reconciles exactly.
    proxy.recover()
    monkeypatch.setenv("SKYBATCH_STORE_RETRY_S", "30")
    again = Worker(
        RunStore(store.url, store.run_id), worker_id="w0", engine_factory=lambda _: SlowEcho()
    )
    assert again.run() == 0
    assert _ids(store) == [f"r{i:03d}" for i in range(40)]
