"""SkyPilot's queue and what a run's jobs cost: every field asked for, every life priced."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.backends import skypilot as sp
from scheduler.backends.skypilot import _jobs
from scheduler.store import Heartbeat, LaunchOption, Offering, RunStore

T0 = 1_800_000_000.0
OPTION = LaunchOption(
    "L40S",
    spot=True,
    offerings=(
        Offering("aws", "us-east-1", "g6e.xlarge", 1.0),
        Offering("aws", "us-east-1", "g6e.4xlarge", 1.51),
        Offering("aws", "us-west-2", "g6e.xlarge", 1.2),
    ),
)


def test_the_queue_is_asked_for_every_field_the_jobs_module_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sky
    from sky.client import sdk

    asked: dict[str, Any] = {}

    def queue_v2(**kwargs: Any) -> str:
        asked.update(kwargs)
        return "request-1"

    record = {"job_id": 7, "status": "FAILED_SETUP", "recovery_count": 1, "cloud": "AWS",
              "region": "us-east-1", "submitted_at": T0, "start_at": T0 + 60,
              "end_at": T0 + 90, "job_duration": 30.0, "failure_reason": "setup exited 1",
              "cluster_resources_full": "1x(gpus=L40S:1, cpus=4, mem=32, g6e.xlarge, disk=256)"}  # fmt: skip
    monkeypatch.setattr(sky.jobs, "queue_v2", queue_v2)
    monkeypatch.setattr(sdk, "get", lambda request: ([record], 1, {}, 1))
    (got,) = sp.SkyPilotSession().queue([7])
    assert set(asked["fields"]) == set(sp.QUEUE_FIELDS) and asked["job_ids"] == [7]
    only_asked = {k: v for k, v in got.items() if k in asked["fields"]}
    state = _jobs._job_state("w0", only_asked)
    assert (state.cloud, state.region, state.started_at, state.instance_type) == (
        "aws", "us-east-1", T0 + 60, "g6e.xlarge",
    )  # fmt: skip
    assert state.failure_reason == "setup exited 1"
    assert "setup exited 1" in sp.describe_job(state.to_json())


def _state(**kw: Any) -> sp.JobState:
    base: dict[str, Any] = {"worker_id": "w0", "job_id": 1, "status": "RUNNING",
                            "cloud": "aws", "region": "us-east-1", "submitted_at": T0,
                            "started_at": T0 + 300, "instance_type": "g6e.xlarge"}  # fmt: skip
    base.update(kw)
    return sp.JobState(**base)


def test_each_life_is_priced_where_it_ran_plus_provisioning_per_launch() -> None:
    # Life 1: 1 h in us-west-2 at $1.20 (the heartbeat priced it then); preempted. Life 2:
    # 1 h so far in us-east-1 on a g6e.xlarge ($1.00, not the g6e.4xlarge's $1.51).
    beat = Heartbeat("w0", state="running", usd_per_hour=1.51, started_at=T0 + 4000,
                     last_seen=T0 + 7600, prior_s=3600.0, prior_usd=1.2)  # fmt: skip
    state = _state(recovery_count=1)
    seconds, usd = sp.job_spend(state, [beat], OPTION, now=T0 + 7600, startup_s=300.0)
    assert usd == pytest.approx(1.2 + 1.0 + 2 * 300 / 3600 * 1.0)
    assert seconds == pytest.approx(3600 + 3600 + 600)
    # The old figure: the last heartbeat's $/h over all the time since submission.
    assert usd < 1.51 * 7600 / 3600


def test_a_job_without_a_heartbeat_is_billed_at_its_planned_price() -> None:
    unplaced = _state(cloud=None, region=None, instance_type=None, started_at=T0 + 60)
    _, usd = sp.job_spend(unplaced, [], OPTION, now=T0 + 3660, startup_s=300.0)
    assert usd == pytest.approx(1.51)  # the dearest planned candidate, for the hour it ran
    pending = _state(status="PENDING", started_at=None)
    assert sp.job_spend(pending, [], OPTION, now=T0 + 3660, startup_s=300.0) == (0.0, 0.0)


def _run(tmp_path: Path) -> RunStore:
    store = RunStore(str(tmp_path / "runs"), "r-1")
    store.create(
        {"recipe": {"name": "x"}, "backend": "skypilot", "launch": {"option": OPTION.to_json()}},
        [{"shard_id": "s0", "file": "f", "row_offset": 0, "row_count": 10}],
    )
    return store


def test_outcome_keeps_the_backends_bill_even_when_heartbeats_say_more(tmp_path: Path) -> None:
    from scheduler.launch import outcome_of

    store = _run(tmp_path)
    beat = {"state": "exited", "usd_per_hour": 9.9, "started_at": "2026-01-01T00:00:00+00:00",
            "last_seen": "2026-01-01T01:00:00+00:00"}  # fmt: skip
    store._write_bytes("workers/w0.json", json.dumps(beat).encode())
    outcome = outcome_of(store, started=time.time(), option=OPTION, workers=1, spend_usd=5.5)
    assert outcome.summary["spend_usd"] == 5.5


class _Session:
    def __init__(self, status: str) -> None:
        self.status = status

    def queue(self, job_ids: list[int]) -> list[dict[str, Any]]:
        return [{"job_id": j, "status": self.status, "failure_reason": "CUDA driver missing"}
                for j in job_ids]  # fmt: skip


def test_a_failed_job_is_logged_once_with_skypilots_reason(tmp_path: Path) -> None:
    store = _run(tmp_path)
    store.write_meta("jobs", {"backend": "skypilot", "workers": {"w0": {"job_id": 4}}})
    for _ in range(2):  # two commands (two processes) read the same failure
        backend = sp.SkyPilotBackend(store, None, OPTION, _Session("FAILED"))
        assert backend.ended()
    (event,) = [e for e in store.events() if e["kind"] == "job_failed"]
    assert event["message"] == "w0: job 4 FAILED: CUDA driver missing"
    assert store.read_jobs().workers["w0"].failure_reason == "CUDA driver missing"
