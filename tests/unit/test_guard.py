"""The deadline guard's decisions and the CI outcome (exit codes, markdown), without I/O."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scheduler.launch import GuardConfig, Outcome, decide, write_summary
from scheduler.store import RunState, RunStatus, read_status

NOW = 1_000_000.0


def _status(**kw: object) -> RunStatus:
    base = RunStatus(
        run_id="r", recipe_name="x", store="/s", backend="local", state=RunState.RUNNING,
        created_at=None, rows_total=1000, rows_done=100, rows_out=100, rows_dead=0,
        shards_total=10, shards_done=1, shards_claimed=1, shards_failed=0, rows_per_s=1.0,
        eta_s=None, elapsed_s=100.0, deadline_at=None, budget_usd=None, spend_usd=0.0,
        usd_per_hour=1.0, max_error_rate=0.0, tokens_in=0, tokens_out=0,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def _cfg(**kw: object) -> GuardConfig:
    base = GuardConfig(deadline_at=NOW + 600, spot_usd_per_hour=1.0, ondemand_usd_per_hour=3.0,
                       startup_s=10.0, last_stretch_s=120.0, max_workers=16)  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_on_track_when_projected_finish_is_before_the_deadline() -> None:
    d = decide(_status(rows_per_s=10.0), _cfg(), now=NOW, alive=1)
    assert d.action == "on_track" and "within the deadline" in d.reason


def test_adds_enough_spot_workers_when_late() -> None:
    # 900 rows left at 1 row/s/worker, 600 s left (540 s usable): needs ~2 workers in all.
    d = decide(_status(), _cfg(), now=NOW, alive=1)
    assert d.action == "add" and d.spot
    assert d.add_workers == 1
    assert d.projected_finish_at is not None and d.projected_finish_at <= NOW + 600
    assert "adding 1 spot worker" in d.reason


def test_last_stretch_adds_on_demand() -> None:
    d = decide(_status(rows_total=300), _cfg(deadline_at=NOW + 100, startup_s=5), now=NOW, alive=1)
    assert d.action == "add" and not d.spot and "on-demand" in d.reason


def test_capped_at_max_workers_and_holds_when_full() -> None:
    d = decide(_status(rows_total=100_000), _cfg(max_workers=4), now=NOW, alive=1)
    assert d.action == "add" and d.add_workers == 3 and "capped" in d.reason
    d = decide(_status(rows_total=100_000), _cfg(max_workers=4), now=NOW, alive=4)
    assert d.action == "hold" and "max_workers=4" in d.reason


def test_never_passes_the_budget() -> None:
    d = decide(_status(spend_usd=0.5), _cfg(budget_usd=0.6), now=NOW, alive=1)
    assert d.action == "over_budget" and "over the $0.60 budget" in d.reason
    # a budget that fits some but not all of the wanted workers: as many as fit
    want = decide(_status(rows_total=5000), _cfg(), now=NOW, alive=1)
    assert want.projected_cost_usd is not None
    # each new worker pays its own start-up, so fewer workers cost a little less
    budget = want.projected_cost_usd - 0.001
    some = decide(_status(rows_total=5000), _cfg(budget_usd=budget), now=NOW, alive=1)
    assert some.action == "add" and 0 < some.add_workers < want.add_workers
    assert some.projected_cost_usd is not None and some.projected_cost_usd <= budget
    # once stopped for budget, never adds again
    later = decide(_status(), _cfg(), now=NOW, alive=1, budget_stopped=True)
    assert later.action == "over_budget" and later.add_workers == 0


def test_holds_without_a_measurement_or_when_too_late() -> None:
    assert decide(_status(rows_per_s=0.0), _cfg(), now=NOW, alive=1).action == "hold"
    d = decide(_status(), _cfg(deadline_at=NOW + 5), now=NOW, alive=1)
    assert d.action == "hold" and "too late" in d.reason
    assert decide(_status(rows_done=1000), _cfg(), now=NOW, alive=1).action == "done"


def _outcome(state: str = "done", **kw: object) -> Outcome:
    summary = {"run_id": "nightly-1", "state": state, "rows_in": 1000, "rows_out": 998,
               "rows_dead": 2, "wall_s": 3700.0, "rows_per_s": 0.27, "spend_usd": 12.5,
               "shards_done": 10, "shards_total": 10, "location": "s3://b/runs/nightly-1"}  # fmt: skip
    args: dict[str, object] = {"summary": summary, "finished_at": NOW, "deadline_at": NOW + 60,
                               "budget_usd": 20.0, "planned_cost_usd": 10.0, "planned_hours": 1.0}  # fmt: skip
    args.update(kw)
    return Outcome(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({}, 0),
        ({"state": "failed"}, 1),
        ({"state": "stopped"}, 1),
        ({"budget_usd": 10.0}, 6),
        ({"deadline_at": NOW - 1}, 7),
        ({"budget_usd": 10.0, "deadline_at": NOW - 1}, 6),
        ({"budget_usd": None, "deadline_at": None}, 0),
    ],
)
def test_exit_codes(kw: dict[str, object], code: int) -> None:
    assert _outcome(**kw).exit_code == code


def test_markdown_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    out = _outcome(deadline_at=NOW - 90, events=["12:00:00 add: adding 2 spot worker(s)"])
    written = write_summary(out, str(tmp_path / "sum" / "s.md"))
    text = (tmp_path / "sum" / "s.md").read_text()
    assert written == [str(tmp_path / "sum" / "s.md"), str(step)]
    assert step.read_text() == "earlier step\n" + text  # appended, never overwritten
    assert "## ⚠️ skybatch run `nightly-1`: done, but after the deadline" in text
    assert "| rows in / out / dead | 1,000 / 998 / 2 (0.200 %) |" in text
    assert "| cost | $12.50 (plan $10.00, budget $20.00) |" in text
    assert "(1m30s late)" in text and "exit code 7" in text
    assert "adding 2 spot worker(s)" in text


def test_workers_still_starting_count_as_capacity() -> None:
    # 1 worker measured at 1 row/s; 2 just added and not reporting yet: no second add.
    status = _status(rows_total=1000, rows_done=100)
    first = decide(status, _cfg(deadline_at=NOW + 700), now=NOW, alive=1)
    assert first.action == "add"
    after = decide(status, _cfg(deadline_at=NOW + 700), now=NOW, alive=1 + first.add_workers,
                   reporting=1)  # fmt: skip
    assert after.action == "on_track", after.reason


def test_a_failed_scale_up_is_logged_and_the_watch_goes_on(tmp_path: Path) -> None:
    from scheduler.backends.skypilot import SkyPilotBackend
    from scheduler.errors import LaunchError
    from scheduler.launch import DeadlineGuard
    from scheduler.recipe import recipe_from_dict
    from scheduler.store import LaunchOption, RunStore

    store = RunStore(str(tmp_path / "runs"), "r-1")
    store.create({"recipe": {"name": "x"}}, [{"shard_id": "s0", "file": "f", "row_offset": 0,
                                              "row_count": 1000}])  # fmt: skip
    store.write_meta("jobs", {"backend": "skypilot", "workers": {"w0": {"job_id": 1}}})
    recipe = recipe_from_dict({"name": "x", "input": {"path": "s3://b/in.jsonl"},
                               "task": "score", "model": {"engine": "python", "name": "m:f"}})  # fmt: skip

    class Session:  # SkyPilot took the first job, then failed on the second
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def launch(self, jobs: list[Any], secrets: Any) -> dict[str, int]:
            self.calls.append([j.worker_id for j in jobs])
            raise LaunchError(
                "SkyPilot could not launch the workers: quota", launched={jobs[0].worker_id: 7}
            )

    session = Session()
    scaler = SkyPilotBackend(store, recipe, LaunchOption("L4", spot=True), session)
    scaler.states = {"w0": "RUNNING"}
    guard = DeadlineGuard(store, scaler, _cfg(), clock=lambda: NOW)
    from scheduler.store import WorkerStatus

    w0 = WorkerStatus(worker_id="w0", state="running", alive=True, accelerator="L4", cloud=None,
                      region=None, spot=True, usd_per_hour=1.0, rows_done=100, rows_per_s=1.0,
                      shards_done=0, preemptions=0, started_at=NOW - 100, last_seen=NOW,
                      current_shard="s0")  # fmt: skip
    d = guard.step(_status(rows_total=3000, workers=(w0,)))  # late: wants more workers
    assert d.action == "add" and d.add_workers >= 2
    (event,) = [e for e in store.events() if e["kind"] == "guard"]
    assert event["action"] == "add_failed" and event["level"] == "warning"
    assert event["started"] == 1 and "quota" in event["message"]
    jobs = store.read_meta("jobs")["workers"]
    assert jobs["w1"]["job_id"] == 7  # the job that did start is on record
    assert session.calls[0][0] == "w1"
    # the next try never reuses an index that may be running
    scaler.job_ids.pop("w1")
    scaler.job_ids["w5"] = 9
    with pytest.raises(LaunchError):
        scaler.add(1, spot=True)
    assert session.calls[-1] == ["w6"]


class _CountingScaler:
    """The Scaler seam: one live worker; records every add."""

    def __init__(self) -> None:
        self.adds: list[tuple[int, bool]] = []

    def alive(self) -> int:
        return 1

    def add(self, k: int, *, spot: bool) -> int:
        self.adds.append((k, spot))
        return k


def _beat(store: Any, worker: str, *, started_at: float, last_seen: float, **doc: Any) -> None:
    """Write a heartbeat as it stood at ``last_seen`` (``store.heartbeat`` stamps now)."""
    import json
    from datetime import datetime, timezone

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()

    doc = {"worker": worker, "started_at": iso(started_at), "last_seen": iso(last_seen), **doc}
    path = Path(store.path(f"workers/{worker}.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _guarded_store(tmp_path: Path) -> Any:
    from scheduler.store import RunStore

    store = RunStore(str(tmp_path / "runs"), "r-1")
    store.create({"recipe": {"name": "x"}}, [{"shard_id": f"s{i}", "file": "f", "row_offset": 0,
                                              "row_count": 100} for i in range(10)])  # fmt: skip
    return store


def test_a_worker_that_exited_2_stops_the_guard_adding_workers(tmp_path: Path) -> None:
    import time

    from scheduler.launch import DeadlineGuard

    t0 = time.time()  # heartbeats are judged against real time: the fake clock starts here
    clock = [t0]
    store = _guarded_store(tmp_path)
    running = {"state": "running", "rows_per_s": 1.0, "rows_done": 100}
    _beat(store, "w0", started_at=t0 - 100, last_seen=t0, **running)
    scaler = _CountingScaler()
    cfg = _cfg(deadline_at=t0 + 600, interval_s=60.0)
    guard = DeadlineGuard(store, scaler, cfg, clock=lambda: clock[0])
    assert guard.step().action == "add"  # 1,000 rows at 1 row/s, 10 min left: late
    assert scaler.adds == [(1, True)]

    # the added worker cannot load the model: exit 2, in its last heartbeat
    _beat(store, "w1", started_at=t0 + 5, last_seen=t0 + 20, state="failed", exit_code=2,
          error="cannot load m:f: ModuleNotFoundError: No module named 'm'")  # fmt: skip
    clock[0] += cfg.interval_s
    _beat(store, "w0", started_at=t0 - 100, last_seen=clock[0], **running)
    assert guard.due()
    d = guard.step()
    assert d.action == "refused" and d.add_workers == 0
    assert scaler.adds == [(1, True)]  # nothing more was added
    refused = [e for e in store.events() if e["kind"] == "guard" and e["action"] == "refused"]
    (event,) = refused
    assert event["level"] == "warning"
    assert re.search(
        r"not adding workers: worker w1 exited with code 2 \(permanent failure\): cannot load "
        r"m:f: ModuleNotFoundError: No module named 'm'; a new worker would fail the same way",
        event["message"],
    )
    assert event["permanent_failure"].startswith("worker w1 exited with code 2")

    # once refused, always refused: even a status without the failed worker adds nothing
    clock[0] += cfg.interval_s
    _beat(store, "w0", started_at=t0 - 100, last_seen=clock[0], **running)
    status = replace(read_status(store, now=clock[0]), permanent_failure=None)
    assert guard.step(status).action == "refused"
    assert scaler.adds == [(1, True)]
    last = [e for e in store.events() if e["kind"] == "guard"][-1]
    assert last["action"] == "refused" and last["level"] == "info"  # warned once


def test_a_failure_that_a_restart_may_fix_does_not_stop_the_guard(tmp_path: Path) -> None:
    import time

    from scheduler.launch import DeadlineGuard

    t0 = time.time()
    store = _guarded_store(tmp_path)
    _beat(store, "w0", started_at=t0 - 100, last_seen=t0, state="running", rows_per_s=1.0)
    # exit 4 (the store was unreachable) and exit 2 of an earlier session (since fixed)
    _beat(store, "w1", started_at=t0 - 90, last_seen=t0 - 50, state="failed", exit_code=4,
          error="store unreachable")  # fmt: skip
    _beat(store, "w9", started_at=t0 - 9000, last_seen=t0 - 8000, state="failed", exit_code=2,
          error="cannot load m:f")  # fmt: skip
    assert read_status(store, now=t0).permanent_failure is None
    scaler = _CountingScaler()
    d = DeadlineGuard(store, scaler, _cfg(deadline_at=t0 + 600), clock=lambda: t0).step()
    assert d.action == "add" and scaler.adds == [(1, True)]


def test_decide_refuses_to_add_after_a_permanent_failure() -> None:
    why = "worker w3 exited with code 2 (permanent failure): cannot read the input"
    d = decide(_status(permanent_failure=why), _cfg(), now=NOW, alive=1)
    assert d.action == "refused" and d.add_workers == 0
    assert d.reason.startswith("projected finish is ") and why in d.reason
    # on track: nothing to add anyway, and nothing to refuse
    assert decide(_status(rows_per_s=10.0, permanent_failure=why), _cfg(), now=NOW,
                  alive=1).action == "on_track"  # fmt: skip
