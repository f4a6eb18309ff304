"""End-to-end local runs through the real CLI, worker processes and store.

The python engine with a function written by the test keeps these fast; the torch engine
is covered by test_run_minilm.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scheduler.store import Heartbeat, RunStore

FN = """\
import time

def slow(rows, delay_s=0.0, fail_word="boom"):
    out = []
    for r in rows:
        if fail_word in r["text"]:
            raise ValueError("cannot handle " + r["id"])
        out.append({"length": len(r["text"])})
    time.sleep(delay_s * len(rows))
    return out
"""


def _write_run(
    tmp: Path,
    *,
    rows: int,
    delay_s: float = 0.0,
    bad_json: int = 0,
    boom: int = 0,
    rows_per_shard: int = 50,
    batch: int = 10,
) -> Path:
    (tmp / "fn.py").write_text(FN)
    with (tmp / "rows.jsonl").open("w") as f:
        for i in range(rows):
            text = f"row {i} boom" if i < boom else f"row number {i}"
            f.write(json.dumps({"id": f"r{i:05d}", "text": text}) + "\n")
        for j in range(bad_json):
            f.write('{"id": "broken' + str(j) + '", "text": \n')
    recipe = tmp / "recipe.yaml"
    recipe.write_text(
        f"""\
name: slow
input: {{path: rows.jsonl, id_column: id}}
task: score
model: {{engine: python, name: "fn.py:slow", batch_size: {batch}, options: {{delay_s: {delay_s}}}}}
shards: {{rows_per_shard: {rows_per_shard}}}
store: ./runs
limits: {{max_error_rate: 0.5, lease_ttl: 60s}}
"""
    )
    return recipe


def _cli(tmp: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _committed_ids(store: RunStore) -> Counter[str]:
    ids: Counter[str] = Counter()
    for marker in store.markers().values():
        ids.update(str(i) for i in store.read_output(marker).column("id").to_pylist())
        ids.update(str(d["id"]) for d in store.read_dead(marker))
    return ids


def _only_store(tmp: Path) -> RunStore:
    (run_dir,) = [p for p in (tmp / "runs").iterdir() if p.is_dir()]
    return RunStore(str(tmp / "runs"), run_dir.name)


def test_run_end_to_end_balances_rows(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=400, bad_json=3, boom=5)
    proc = _cli(tmp_path, "run", str(recipe), "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["state"] == "done"
    assert summary["rows_in"] == 403
    assert summary["rows_out"] == 395
    assert summary["rows_dead"] == 8
    store = _only_store(tmp_path)
    ids = _committed_ids(store)
    assert max(ids.values()) == 1
    assert len(ids) == 403
    reasons = [d["reason"] for m in store.markers().values() for d in store.read_dead(m)]
    assert sum("ValueError: cannot handle" in r for r in reasons) == 5
    assert sum("JSON" in r for r in reasons) == 3


@pytest.mark.slow
def test_second_run_resumes_and_skips_committed_shards(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=200)
    first = _cli(tmp_path, "run", str(recipe), "--json")
    again = _cli(tmp_path, "run", str(recipe), "--json")
    assert first.returncode == again.returncode == 0
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["run_id"] == b["run_id"]
    store = _only_store(tmp_path)
    assert {m.attempt for m in store.markers().values()} == {1}


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_sigkill_mid_shard_then_resume_is_exactly_once(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=600, delay_s=0.004, rows_per_shard=40)
    driver = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "--workers", "2", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    runs = tmp_path / "runs"
    _wait_for(lambda: runs.exists() and any(runs.glob("*/done/*.json")), 60, "a commit")
    store = _only_store(tmp_path)
    _wait_for(lambda: len(store.claims()) >= 1, 30, "a claimed shard")
    # Kill the driver and every worker at once, mid-shard: no chance to clean up.
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(10)
    done_before = len(store.done_shards())
    assert 0 < done_before < len(store.read_manifest())

    resumed = _cli(tmp_path, "run", str(recipe), "--workers", "2", "--json")
    assert resumed.returncode == 0, resumed.stderr
    ids = _committed_ids(RunStore(store.url, store.run_id))
    assert set(ids) == {f"r{i:05d}" for i in range(600)}
    assert max(ids.values()) == 1


@pytest.mark.slow
def test_worker_killed_is_restarted_by_the_pool(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=400, delay_s=0.01, rows_per_shard=40)
    driver = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "--workers", "2", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "runs"
    _wait_for(lambda: runs.exists() and any(runs.glob("*/workers/*.json")), 60, "worker")
    store = _only_store(tmp_path)

    def running() -> Heartbeat | None:
        return next((w for w in store.workers().values() if w.state == "running"), None)

    _wait_for(lambda: running() is not None, 60, "run")
    beat = running()
    assert beat is not None
    os.kill(int(beat.pid or 0), signal.SIGKILL)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    assert json.loads(out)["rows_out"] == 400
    ids = _committed_ids(store)
    assert len(ids) == 400 and max(ids.values()) == 1
    assert any(e["kind"] == "worker_restarted" for e in store.events())


def test_sigterm_stops_within_30s_and_commits_nothing_partial(tmp_path: Path) -> None:
    from scheduler.recipe import load_recipe
    from scheduler.runs import prepare_run

    recipe_path = _write_run(tmp_path, rows=200, delay_s=0.05, rows_per_shard=100, batch=5)
    os.chdir(tmp_path)
    store = prepare_run(load_recipe(recipe_path))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler.worker",
            "--store",
            store.url,
            "--run-id",
            store.run_id,
            "--worker-id",
            "w-term",
            "--heartbeat-s",
            "0.5",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    _wait_for(lambda: len(store.claims()) == 1, 60, "a claim")
    time.sleep(0.5)  # now in the middle of a 5 s shard
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)
    assert time.monotonic() - sent < 30
    assert code == 3
    assert store.done_shards() == []  # the shard in flight was not committed
    (claim,) = store.claims().values()
    assert claim.released is True and claim.failures == 0
    assert store.workers()["w-term"].state == "stopped"


@pytest.mark.slow
def test_resume_refused_after_input_changes(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=100)
    first = _cli(tmp_path, "run", str(recipe), "--run-id", "fixed", "--json")
    assert first.returncode == 0, first.stderr
    with (tmp_path / "rows.jsonl").open("a") as f:
        f.write(json.dumps({"id": "new", "text": "a late row"}) + "\n")
    again = _cli(tmp_path, "run", str(recipe), "--run-id", "fixed", "--json")
    assert again.returncode == 2
    assert json.loads(again.stdout)["exit_code"] == 2  # --json always answers
    (line,) = again.stderr.strip().splitlines()
    assert "run fixed" in line and "different input" in line and "--run-id" in line
    # Without a fixed id, the changed input simply gets a run of its own.
    fresh = _cli(tmp_path, "run", str(recipe), "--json")
    assert fresh.returncode == 0
    assert json.loads(fresh.stdout)["run_id"] != "fixed"


def test_engine_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=10)
    recipe.write_text(recipe.read_text().replace("fn.py:slow", "fn.py:missing"))
    proc = _cli(tmp_path, "run", str(recipe), "--json")
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)  # the run's summary says failed, and why
    assert summary["state"] == "failed" and "missing" in summary["failure_reason"]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("rows", [1, 7])
def test_tiny_inputs(tmp_path: Path, rows: int) -> None:
    recipe = _write_run(tmp_path, rows=rows)
    proc = _cli(tmp_path, "run", str(recipe), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_out"] == rows


def test_a_burst_of_signals_still_stops_the_worker(tmp_path: Path) -> None:
    """Ctrl-C reaches every worker and then the driver sends SIGTERM: no deadlock."""
    from scheduler.recipe import load_recipe
    from scheduler.runs import prepare_run

    recipe_path = _write_run(tmp_path, rows=200, delay_s=0.05, rows_per_shard=100, batch=5)
    os.chdir(tmp_path)
    store = prepare_run(load_recipe(recipe_path))
    worker = subprocess.Popen(
        [sys.executable, "-m", "scheduler.worker", "--store", store.url, "--run-id",
         store.run_id, "--worker-id", "w-burst", "--heartbeat-s", "0.5"],
        cwd=tmp_path, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_for(lambda: len(store.claims()) == 1, 60, "a claim")
    for _ in range(3000):
        if worker.poll() is not None:
            break
        worker.send_signal(signal.SIGINT)
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 3
    assert store.done_shards() == []


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_exits_130_and_resumes(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, rows=400, delay_s=0.01, rows_per_shard=40)
    driver = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "--workers", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    runs = tmp_path / "runs"
    _wait_for(lambda: runs.exists() and any(runs.glob("*/done/*.json")), 60, "a commit")
    os.killpg(driver.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    out, _ = driver.communicate(timeout=60)
    assert driver.returncode == 130
    assert "run the same command again to resume" in out
    store = _only_store(tmp_path)
    assert all(c.released for c in store.claims().values())
    resumed = _cli(tmp_path, "run", str(recipe), "--json")
    assert resumed.returncode == 0, resumed.stderr
    ids = _committed_ids(store)
    assert len(ids) == 400 and max(ids.values()) == 1


@pytest.mark.slow
def test_a_finished_run_goes_into_the_run_history(tmp_path: Path) -> None:
    import pricing

    recipe = _write_run(tmp_path, rows=120)
    proc = _cli(tmp_path, "run", str(recipe), "--run-id", "hist", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "run history not recorded" not in proc.stderr
    with pricing.connect(read_only=True) as con:
        row = con.execute(
            "SELECT rows, workers, accelerator FROM run_history WHERE run_id = 'hist'"
        ).fetchone()
    assert row == (120, 1, "cpu")
