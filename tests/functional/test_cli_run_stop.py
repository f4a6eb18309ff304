"""`skybatch run` as a new user meets it: Ctrl-C at any moment of start-up stops every
worker, and a run whose workers cannot load says failed, and why."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.store import Heartbeat, RunStore, iter_runs


def _recipe(tmp: Path, *, fn: str, rows: int = 40) -> Path:
    (tmp / "fn.py").write_text(fn)
    with (tmp / "rows.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": f"r{i}", "text": f"text {i}"}) + "\n")
    path = tmp / "recipe.yaml"
    path.write_text(
        "name: stopme\ninput: {path: rows.jsonl, id_column: id}\ntask: score\n"
        'model: {engine: python, name: "fn.py:f", batch_size: 2}\n'
        "shards: {rows_per_shard: 4}\nstore: ./runs\n"
    )
    return path


# Module-level code is where a model loads: this one takes 60 s unless interrupted.
SLOW_LOAD = "import time\ntime.sleep(60)\n\ndef f(rows):\n    return [{'n': 1} for r in rows]\n"
SLOW_ROWS = (
    "import time\n\ndef f(rows):\n    time.sleep(0.5)\n    return [{'n': 1} for r in rows]\n"
)


def _store(tmp: Path) -> RunStore | None:
    runs = tmp / "runs"
    ids = list(iter_runs(str(runs))) if runs.exists() else []
    return RunStore(str(runs), ids[0]) if ids else None


def _beats(tmp: Path) -> dict[str, Heartbeat]:
    store = _store(tmp)
    return store.workers() if store else {}


def _wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not reaped by its parent yet) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["spawning", "loading", "running"])
def test_ctrl_c_at_any_moment_of_start_up_stops_every_worker(tmp_path: Path, moment: str) -> None:
    _recipe(tmp_path, fn=SLOW_ROWS if moment == "running" else SLOW_LOAD)
    driver = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "-w", "2", "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy(), start_new_session=True,  # its own group, as a terminal's job
    )  # fmt: skip
    if moment == "spawning":
        _wait(lambda: any((tmp_path / "runs").glob("*/manifest.parquet")), 60, "the manifest")
    elif moment == "loading":
        _wait(lambda: len(_beats(tmp_path)) == 2, 60, "both workers loading")
        assert {b.state for b in _beats(tmp_path).values()} == {"starting"}
    else:
        _wait(lambda: any(b.state == "running" for b in _beats(tmp_path).values()), 60,
              "a worker running")  # fmt: skip
    interrupted_at = time.monotonic()
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    out, err = driver.communicate(timeout=60)
    took_s = time.monotonic() - interrupted_at
    assert driver.returncode == 130, err
    summary = json.loads(out)
    assert summary["state"] == "stopped", summary
    assert took_s < 15, f"stopping took {took_s:.1f} s"
    beats = _beats(tmp_path)
    for worker_id, beat in beats.items():
        assert beat.pid is not None and not _alive(beat.pid), f"{worker_id} outlived the driver"
        assert beat.state == "stopped", beat
    store = _store(tmp_path)
    assert store is not None
    status = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", store.run_id, "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    assert json.loads(status.stdout)["state"] == "stopped"


@pytest.mark.slow
def test_a_run_whose_workers_cannot_load_says_failed_and_why(tmp_path: Path) -> None:
    _recipe(tmp_path, fn="raise RuntimeError('CUDA is not available on this machine')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "-w", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "✘ failed: 0 of 40 rows done" in proc.stdout
    assert "why: " in proc.stdout and "CUDA is not available on this machine" in proc.stdout
    store = _store(tmp_path)
    assert store is not None
    status = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", store.run_id, "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    data = json.loads(status.stdout)
    assert data["state"] == "failed"
    assert "CUDA is not available on this machine" in data["failure_reason"]
    human = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", store.run_id],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    assert f"✘ {store.run_id} [failed]" in human.stdout
    assert "  failed  " in human.stdout and "CUDA is not available" in human.stdout


@pytest.mark.slow
def test_status_lists_the_top_dead_row_reasons_and_where_the_files_are(tmp_path: Path) -> None:
    _recipe(
        tmp_path,
        fn=(
            "def f(rows):\n"
            "    out = []\n"
            "    for r in rows:\n"
            "        n = int(r['id'][1:])\n"
            "        if n % 4 == 0:\n"
            "            out.append({'__error__': 'ValueError: too short'})\n"
            "        elif n % 10 == 1:\n"
            "            out.append({'__error__': 'KeyError: title'})\n"
            "        else:\n"
            "            out.append({'n': n})\n"
            "    return out\n"
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["rows_dead"] == 14, summary  # 10 multiples of 4, 4 ending in 1
    status = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", summary["run_id"]],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    lines = status.stdout.splitlines()
    dead = [line for line in lines if line.startswith("  dead  ")]
    assert dead == ["  dead         10 × ValueError", "  dead          4 × KeyError"], status.stdout
    assert (
        f"  dead rows: {tmp_path / 'runs' / summary['run_id']}/dead/<shard>.<attempt>.jsonl"
        in lines
    )


@pytest.mark.slow
def test_a_new_runs_model_load_shows_a_sign_of_life(tmp_path: Path) -> None:
    _recipe(
        tmp_path,
        fn="import time\ntime.sleep(3)\n\ndef f(rows):\n    return [{'n': 1} for r in rows]\n",
        rows=8,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # No terminal here, so no bar: one line per phase, on stderr.
    assert re.search(r"^skybatch: loading \S*fn\.py:f …$", proc.stderr, re.M), proc.stderr
    phases = [ln for ln in proc.stderr.splitlines() if ln.endswith(" …")]
    assert phases[-1].startswith("skybatch: loading"), phases  # no "starting" after the run
    assert re.search(r"✔ done: 8 rows in → 8 out, 0 dead · \d+s · ", proc.stdout), proc.stdout


@pytest.mark.slow
def test_after_a_resume_the_rate_counts_this_sessions_rows(tmp_path: Path) -> None:
    _recipe(tmp_path, fn=SLOW_ROWS, rows=40)  # 10 shards of 4 rows, 1 s a shard
    first = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip
    _wait(lambda: len(list((tmp_path / "runs").glob("*/done/*.json"))) >= 4, 120, "4 shards")
    os.killpg(first.pid, signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    before = json.loads(out)["rows_done"]
    assert 16 <= before < 40
    again = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    summary = json.loads(again.stdout)
    assert summary["state"] == "done" and summary["rows_done"] == 40
    # This command's rows over this command's time; not all 40 rows over it.
    assert summary["rows_per_s"] * summary["wall_s"] == pytest.approx(40 - before, abs=0.5)
    status = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", summary["run_id"], "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    assert json.loads(status.stdout)["session_rows_done"] == 40 - before
