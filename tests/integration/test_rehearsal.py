"""``launch --rehearse``: each worker's exact task played here, on sandboxed "VMs".

The whole launch flow (plan, store, scaler, guard, watch, spend) runs with the rehearsal
session in SkyPilot's place. Every VM is a fresh folder with a fresh virtual environment:
the task's ``file_mounts`` copied in, its ``setup`` installing the shipped wheel and the
worker's requirements (from PyPI, through pip's cache), ``run`` with SkyPilot's
environment and ``PYTHONPATH`` cleared, so nothing of this checkout helps the worker. The
store and the input are in S3 (moto on loopback). Stand-ins, printed by the rehearsal:
torch linked from this environment, MiniLM's weights from its package.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.backends.rehearsal import RehearsalSession
from scheduler.launch import LaunchRequest, LaunchResult, launch
from scheduler.store import RunStore, digest_ids

ROWS = 960
CLI_ONLY = ("skypilot", "textual", "duckdb", "fastapi", "uvicorn", "plotext")


@pytest.fixture(autouse=True)
def _pip_cache(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keep pip's download cache across runs (each test has its own HOME): a VM's setup
    downloads its packages; a repeated rehearsal need not. Without pytest's cache plugin
    (``-p no:cacheprovider``) the cache lasts the session."""
    cache = getattr(pytestconfig, "cache", None)
    where = cache.mkdir("rehearsal-pip") if cache is not None else None
    if where is None:
        where = tmp_path_factory.getbasetemp() / "rehearsal-pip"
        where.mkdir(exist_ok=True)
    monkeypatch.setenv("PIP_CACHE_DIR", str(where))


def _put_input(store_url: str, rows: int) -> str:
    import s3fs

    bucket = store_url.split("/")[2]
    path = f"s3://{bucket}/in/rows.jsonl"
    with s3fs.S3FileSystem().open(path, "wb") as f:
        for i in range(rows):
            line = {"id": f"id-{i:04d}", "text": f"sentence number {i} about spot GPUs"}
            f.write((json.dumps(line) + "\n").encode())
    return path


def _recipe(tmp_path: Path, store_url: str, input_url: str, model: dict[str, Any]) -> Path:
    doc = {
        "name": "rehearse",
        "input": {"path": input_url, "format": "jsonl", "id_column": "id", "text_column": "text"},
        "task": "embed",
        "model": model,
        "shards": {"rows_per_shard": 20},
        "store": store_url,
        "schedule": {"clouds": ["aws", "gcp"]},
        # short leases: a lost worker's shard is taken over within seconds
        "limits": {"lease_ttl": "8s", "retries": 2, "max_error_rate": 0.0},
    }
    path = tmp_path / "rehearse.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _wait_for(cond: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _mid_shard_pid(store: RunStore, session: RehearsalSession, worker: str) -> int | None:
    """The pid of ``worker``'s process while it holds a shard's lease (mid-shard)."""
    if session.pid(worker) is None:
        return None
    beat = store.workers().get(worker)
    held = [c for c in store.claims().values() if c.worker == worker]
    if beat is not None and beat.state == "running" and held and beat.pid:
        return beat.pid
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rehearsal_recovers_lost_and_noticed_workers_and_reconciles_exactly(
    tmp_path: Path, s3_store_url: str
) -> None:
    input_url = _put_input(s3_store_url, ROWS)
    model = {"engine": "torch", "name": "sentence-transformers/all-MiniLM-L6-v2",
             "batch_size": 4, "revision": None}  # fmt: skip
    recipe = _recipe(tmp_path, s3_store_url, input_url, model)
    lines: list[str] = []
    box: dict[str, Any] = {}
    session = RehearsalSession(root=tmp_path / "vms", echo=lines.append, clouds=["aws", "gcp"])
    req = LaunchRequest(recipe_path=str(recipe), gpu="L4", workers=2, yes=True, wait=True,
                        guard=False, poll_s=0.5)  # fmt: skip

    def run() -> None:
        try:
            box["result"] = launch(req, echo=lines.append, confirm=lambda q: True,
                                   session_factory=lambda: session)  # fmt: skip
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    try:
        store = _wait_for(lambda: box.get("store") or _store_of(lines, s3_store_url), 120, "run")
        both = _wait_for(
            lambda: (
                (a := _mid_shard_pid(store, session, "w0"))
                and (b := _mid_shard_pid(store, session, "w1"))
                and (a, b)
            ),
            600,
            "both workers mid-shard",
        )
        os.kill(both[0], signal.SIGKILL)  # a lost VM: no goodbye
        os.kill(both[1], signal.SIGTERM)  # the spot notice: the shard is released
    finally:
        t.join(800)
    assert "error" not in box, box.get("error")
    result: LaunchResult = box["result"]
    print("\n" + "\n".join(ln for ln in lines if ln.startswith("rehearsal")))
    assert result.outcome is not None and result.outcome.exit_code == 0, lines[-5:]
    # exact reconciliation: every input id once, rows in = out + dead
    manifest, markers = store.read_manifest(), store.markers()
    assert len(markers) == len(manifest)
    ids: list[str] = []
    for marker in markers.values():
        shard_ids = [str(v) for v in store.read_output(marker).column("id").to_pylist()]
        assert digest_ids(shard_ids) == marker.ids_digest
        assert marker.rows_in == marker.rows_out + marker.rows_dead
        ids.extend(shard_ids)
    assert len(ids) == len(set(ids)) == ROWS
    # each worker was recovered once, on a new VM in the next candidate region, and set up
    # again there from the task alone
    jobs = {j["worker_id"]: j for j in session.jobs()}
    for worker in ("w0", "w1"):
        job = jobs[worker]
        assert job["status"] == "SUCCEEDED" and job["recovery_count"] >= 1, job
        first, second = job["lives"][0], job["lives"][1]
        assert (first["cloud"], first["region"]) != (second["cloud"], second["region"])
        assert first["setup_exit"] == second["setup_exit"] == 0
        assert not set(first["installed"]) & set(CLI_ONLY), first["installed"]
    assert jobs["w0"]["lives"][0]["run_exit"] in (-9, 137)  # the VM was lost
    assert jobs["w1"]["lives"][0]["run_exit"] == 3  # released its shard on the notice
    assert any("stand-in: torch" in ln for ln in lines)
    assert result.outcome.spend_usd > 0  # priced from the offerings the workers landed on
    setups = [life["setup_s"] for j in jobs.values() for life in j["lives"]]
    counts = {life["packages"] for j in jobs.values() for life in j["lives"]}
    print(f"rehearsal setup: {setups} s; packages installed on the VM: {sorted(counts)}")


def _store_of(lines: list[str], store_url: str) -> RunStore | None:
    for ln in lines:
        if ln.startswith("run "):
            return RunStore(store_url, ln.split()[1])
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_that_cannot_load_its_engine_is_not_restarted(
    tmp_path: Path, s3_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scheduler.cli import main

    input_url = _put_input(s3_store_url, 40)
    model = {"engine": "python", "name": "skybatch_rehearsal_no_such_module:work"}
    recipe = _recipe(tmp_path, s3_store_url, input_url, model)
    with pytest.raises(SystemExit) as exc:
        main(["launch", str(recipe), "--gpu", "L4", "-w", "1", "--rehearse", "--no-guard"])
    out = "".join(capsys.readouterr())
    print(out)
    assert exc.value.code == 1, out
    assert "rehearsal: no cloud account is used" in out
    assert "w0 FAILED: run exited 2" in out and "skybatch_rehearsal_no_such_module" in out
    assert "recovering" not in out and "VM 2" not in out  # never a second GPU
    # the VM's install is whole: pip finds no requirement of skybatch's missing (its core
    # metadata asks for the worker set only) and the setup's pip check says so
    (setup_log,) = (Path(os.environ["SKYBATCH_HOME"]) / "rehearsals").rglob("setup.log")
    setup = setup_log.read_text()
    assert "skybatch: pip check: the worker's packages are consistent" in setup, setup
    assert "which is not installed" not in setup and "requires" not in setup, setup
