"""``skybatch launch --backend local``: the whole launch flow on this machine.

Plan → store → worker processes → watch with the deadline guard → summary and exit code,
through the real CLI. Workers run the python engine with a function that sleeps per row,
so a run is slow on purpose and the guard has something to fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.store import RunStore

FN = """\
import time

def slow(rows, delay_s=0.0):
    out = []
    for r in rows:
        if "poison" in r["text"]:
            out.append({"__error__": "poisoned row " + r["id"]})
        else:
            out.append({"length": len(r["text"])})
    time.sleep(delay_s * len(rows))
    return out
"""


def _rows(path: Path, ids: range, *, poison: int = 0) -> None:
    with path.open("a") as f:
        for i in ids:
            text = f"row {i} poison" if i < poison else f"row number {i}"
            f.write(json.dumps({"id": f"r{i:05d}", "text": text}) + "\n")


def _recipe(tmp: Path, *, rows: int, delay_s: float, rows_per_shard: int = 4,
            schedule: str = "", max_error_rate: float = 0.5, poison: int = 0) -> Path:  # fmt: skip
    (tmp / "fn.py").write_text(FN)
    _rows(tmp / "rows.jsonl", range(rows), poison=poison)
    recipe = tmp / "recipe.yaml"
    recipe.write_text(
        f"""\
name: slowjob
input: {{path: rows.jsonl, id_column: id}}
task: score
model: {{engine: python, name: "fn.py:slow", batch_size: 2, options: {{delay_s: {delay_s}}}}}
shards: {{rows_per_shard: {rows_per_shard}}}
store: ./runs
schedule: {{{schedule}}}
limits: {{max_error_rate: {max_error_rate}, lease_ttl: 60s}}
"""
    )
    return recipe


def _launch(tmp: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "launch", "recipe.yaml", "--backend", "local",
         "--yes", "--json", *args],
        cwd=tmp, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )  # fmt: skip


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    data: dict[str, Any] = json.loads(lines[0])
    return data


def _guard_events(tmp: Path, run_id: str) -> list[dict[str, Any]]:
    store = RunStore(str(tmp / "runs"), run_id)
    return [e for e in store.events() if e.get("kind") == "guard"]


@pytest.mark.slow
def test_guard_adds_workers_and_the_run_finishes_by_its_deadline(tmp_path: Path) -> None:
    # One worker needs 64 rows × 0.6 s ≈ 38 s plus start-up; the deadline is 34 s away.
    _recipe(tmp_path, rows=64, delay_s=0.6, schedule="deadline: 34s, max_workers: 6")
    started = time.monotonic()
    proc = _launch(tmp_path, "--workers", "1", "--guard-interval", "2s", "--summary-md", "s.md")
    data = _json(proc)
    assert proc.returncode == 0, proc.stderr
    assert data["state"] == "done" and data["rows_out"] == 64 and data["exit_code"] == 0
    assert data["late"] is False and data["workers"] > 1
    events = _guard_events(tmp_path, data["run_id"])
    adds = [e for e in events if e["action"] == "add"]
    assert adds and sum(e["started"] for e in adds) == data["workers"] - 1
    assert all("past the deadline" in e["message"] for e in adds)
    assert all(e["spend_usd"] == 0.0 for e in events)  # local workers are free by default
    assert "guard: projected finish" in proc.stderr
    assert "## ✅ skybatch run" in (tmp_path / "s.md").read_text()
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_guard_never_passes_the_budget(tmp_path: Path) -> None:
    # A notional $3600/h per local worker: one worker alone costs ~$40 by the end.
    _recipe(
        tmp_path, rows=48, delay_s=0.6, schedule="deadline: 20s, budget_usd: 25, max_workers: 6"
    )
    proc = _launch(tmp_path, "--workers", "1", "--guard-interval", "2s", "--usd-per-hour", "3600")
    data = _json(proc)
    events = _guard_events(tmp_path, data["run_id"])
    assert not [e for e in events if e["action"] == "add"]
    over = [e for e in events if e["action"] == "over_budget"]
    assert over and over[0]["level"] == "warning"
    assert "over the $25.00 budget: not adding workers" in over[0]["message"]
    assert all(e["level"] == "info" for e in over[1:])  # warned once, then quiet
    assert data["state"] == "done" and data["over_budget"] is True
    assert proc.returncode == 6 and data["exit_code"] == 6
    assert "not adding workers" in proc.stderr


@pytest.mark.slow
def test_exit_codes_and_markdown_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "github-step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    # late: no guard, a deadline far too short
    _recipe(tmp_path, rows=12, delay_s=0.4, schedule="deadline: 2s")
    proc = _launch(tmp_path, "--no-guard", "--run-id", "late-{date}", "--summary-md", "late.md")
    data = _json(proc)
    assert proc.returncode == 7 and data["late"] is True and data["state"] == "done"
    assert data["run_id"].startswith("late-20")
    text = (tmp_path / "late.md").read_text()
    assert "done, but after the deadline" in text and "exit code 7" in text
    assert step.read_text() == text
    # on time: the same input under another id, no deadline
    (tmp_path / "recipe.yaml").write_text(
        (tmp_path / "recipe.yaml").read_text().replace("deadline: 2s", "")
    )
    proc = _launch(tmp_path, "--workers", "2", "--run-id", "ok-%Y%m%d")
    assert proc.returncode == 0 and _json(proc)["rows_out"] == 12
    assert step.read_text().count("## ") == 2  # appended
    # failed: poisoned rows above max_error_rate
    bad = tmp_path / "bad"
    bad.mkdir()
    _recipe(bad, rows=8, delay_s=0.0, poison=2, max_error_rate=0.0)
    proc = _launch(bad)
    data = _json(proc)
    assert proc.returncode == 1 and data["state"] == "failed" and data["rows_dead"] == 2


@pytest.mark.slow
def test_incremental_processes_only_new_rows(tmp_path: Path) -> None:
    _recipe(tmp_path, rows=20, delay_s=0.0)
    first = _json(_launch(tmp_path, "--run-id", "day1", "--workers", "2"))
    assert first["rows_in"] == 20 and first["state"] == "done"
    _rows(tmp_path / "rows.jsonl", range(20, 27))
    proc = _launch(tmp_path, "--run-id", "day2", "--incremental")
    second = _json(proc)
    assert proc.returncode == 0, proc.stderr
    assert second["rows_in"] == 7 and second["rows_out"] == 7
    assert "incremental: 20 row(s) already done in 1 earlier run(s); 7 new" in proc.stderr
    store = RunStore(str(tmp_path / "runs"), "day2")
    ids = sorted(
        i for m in store.markers().values() for i in store.read_output(m).column("id").to_pylist()
    )
    assert ids == [f"r{i:05d}" for i in range(20, 27)]
    info = store.read_run_info()["incremental"]
    assert info["previous_runs"] == ["day1"] and info["rows_reused"] == 20
    # re-triggered with the same new rows: resumes the same run, nothing redone
    again = _json(_launch(tmp_path, "--run-id", "day2", "--incremental"))
    assert again["rows_in"] == 7 and again["run_id"] == "day2"
    # nothing new on a later day: exit 0 at once
    proc = _launch(tmp_path, "--run-id", "day3", "--incremental")
    third = _json(proc)
    assert proc.returncode == 0 and third["rows_in"] == 0 and third["rows_reused"] == 27


@pytest.mark.slow
def test_incremental_without_run_id_resumes_an_unfinished_run(tmp_path: Path) -> None:
    _recipe(tmp_path, rows=20, delay_s=0.0)
    assert _json(_launch(tmp_path, "--run-id", "day1"))["state"] == "done"
    _rows(tmp_path / "rows.jsonl", range(20, 32))
    first = _json(_launch(tmp_path, "--incremental"))
    assert first["rows_in"] == 12 and first["state"] == "done"
    store = RunStore(str(tmp_path / "runs"), first["run_id"])
    # As if the job had been cut off: two of its shards never committed.
    done = sorted(store.markers())
    assert len(done) >= 3
    for shard in done[:2]:
        Path(store.path(f"done/{shard}.json")).unlink()
    proc = _launch(tmp_path, "--incremental")
    again = _json(proc)
    assert proc.returncode == 0, proc.stderr
    assert f"incremental: resuming the unfinished run {first['run_id']}" in proc.stderr
    assert again["run_id"] == first["run_id"] and again["state"] == "done"
    fresh = RunStore(str(tmp_path / "runs"), first["run_id"])
    ids = [
        i for m in fresh.markers().values() for i in fresh.read_output(m).column("id").to_pylist()
    ]
    assert sorted(ids) == [f"r{i:05d}" for i in range(20, 32)]  # each new row once
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith("_"))
    assert runs == sorted(["day1", first["run_id"]])  # no third run


def test_the_run_id_does_not_depend_on_the_directory_or_on_dry_run(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """generate-tiny names its model by a path relative to the recipe: the id that
    ``launch --dry-run`` prints is the id ``run`` makes, from the repo root or recipes/."""
    from scheduler.launch import LaunchRequest
    from scheduler.launch._flow import _dry_run_id
    from scheduler.recipe import load_recipe
    from scheduler.runs import open_recipe_input, prepare_run

    path = repo / "recipes" / "generate-tiny.yaml"
    ids = set()
    revisions = set()
    for cwd in (repo, repo / "recipes"):
        monkeypatch.chdir(cwd)
        recipe = load_recipe(str(path))
        store = prepare_run(recipe, store_url=str(tmp_path / "runs"))
        ids.add(store.run_id)
        revisions.add(store.read_run_info()["model_revision"])
        req = LaunchRequest(recipe_path=str(path), dry_run=True)
        source = open_recipe_input(recipe)
        derived, problem = _dry_run_id(recipe, req, lambda s=source: s)  # type: ignore[misc]
        assert problem is None
        ids.add(derived)
    assert len(ids) == 1, ids
    (revision,) = revisions
    assert revision and revision.startswith("local-")  # the weights' hash, from either cwd
